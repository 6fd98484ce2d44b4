"""Faults under load: the outbound gateway and inbound filter under injected faults, checked against an oracle.

    .venv/bin/python bench/reliability.py [--messages 10000] [--inbound 2000] [--fault-rate 0.10] [--seed 7] ...
    make reliability

Starts DynamoDB Local (make dynamodb-local) unless AWS_ENDPOINT_URL_DYNAMODB is
set; S3, SES and SQS are moto's. What a run does and checks is described in
testkit/mailfilter_testkit/load_run/__init__.py; the figures and how to read them are in docs/reliability.md.
Exits 1 when any violation, lost message, duplicate send or unhandled exception
is found, and prints the first few of each.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from dataclasses import fields

from mailfilter_testkit.aws_resources import dynamodb_local
from mailfilter_testkit.load_run import Config, run


def arguments() -> Config:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for item in fields(Config):
        flag = "--" + item.name.replace("_", "-")
        parser.add_argument(flag, type=type(item.default), default=item.default, help=f"default {item.default}")
    return Config(**vars(parser.parse_args()))


def main() -> int:
    config = arguments()
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        os.environ.setdefault(name, value)
    os.environ.pop("AWS_PROFILE", None)
    started = time.monotonic()

    def progress(text: str) -> None:
        print(f"[{time.monotonic() - started:6.0f} s] {text}", file=sys.stderr, flush=True)

    with contextlib.ExitStack() as stack:
        endpoint = os.environ.get("AWS_ENDPOINT_URL_DYNAMODB") or stack.enter_context(dynamodb_local())
        report = run(config, endpoint, progress=progress)
    print(report.table())
    for title, found in (
        ("violations", report.violations),
        ("lost", report.lost),
        ("duplicate sends", report.duplicate_sends),
        ("unhandled exceptions", report.unhandled_exceptions),
        ("sent twice: invocation stopped between SES accepting a send and its marker", report.unsafe_window_duplicates),
    ):
        for line in found[:10]:
            print(f"{title}: {line}")
    return 1 if report.problems() else 0


if __name__ == "__main__":
    sys.exit(main())
