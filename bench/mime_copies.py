"""What the gateway's MIME work costs per message: reading the original, an allowed copy, a partner notice.

Usage: .venv/bin/python bench/mime_copies.py [--rounds 7] [--messages 200]
A 21 KB raw message (text, a 15 KB PDF, a DKIM-Signature) to one direct customer and one CSP
customer; copies are made from the original's bytes (`mailfilter.delivery.raw`) without
re-serialising it. Prints medians of per-round medians, in milliseconds of wall time.
"""

from __future__ import annotations

import argparse
import base64
import os
import statistics
import time
from collections.abc import Callable
from email import policy
from email.message import EmailMessage

from mailfilter.delivery.copies import allowed_copy, partner_notice, reroute_groups
from mailfilter.delivery.original import compose_original
from mailfilter.directory.memory import InMemoryDirectory
from mailfilter.engine import evaluate
from mailfilter.outbound.request import read_send_request
from mailfilter.policy.config import load_policy


def sample_request() -> dict:
    message = EmailMessage()
    message["From"] = "news@vendor.example"
    message["To"] = "it@tailspintoys.com, cto@woodgrovebank.com"
    message["Subject"] = "Your invoice"
    message["DKIM-Signature"] = "v=1; a=rsa-sha256; d=vendor.example; s=s1; b=" + "A" * 300
    message.set_content("Hello\n" * 50)
    message.add_attachment(os.urandom(15000), maintype="application", subtype="pdf", filename="invoice.pdf")
    raw = message.as_bytes(policy=policy.SMTP)
    return {"message_id": "bench", "from": "news@vendor.example", "to": ["it@tailspintoys.com", "cto@woodgrovebank.com"],
            "raw": base64.b64encode(raw).decode()}  # fmt: skip


def median_ms(work: Callable[[], object], count: int) -> float:
    times = []
    for _ in range(count):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--messages", type=int, default=200)
    args = parser.parse_args()
    policy_file = load_policy()
    directory = InMemoryDirectory.from_file(os.path.join(os.path.dirname(__file__), "..", "events", "directory.jsonl"))
    data = sample_request()
    reading = read_send_request(data, policy_file)
    verdict = evaluate(reading.message, directory, policy_file)
    (group,) = reroute_groups(verdict.decisions)
    steps: dict[str, Callable[[], object]] = {
        "read (validate, compose, parse)": lambda: read_send_request(data, policy_file),
        "compose only": lambda: compose_original(reading.request),
        "allowed copy": lambda: allowed_copy(reading.original, reading.request, {"cto@woodgrovebank.com"}),
        "partner notice": lambda: partner_notice(reading.original, reading.request, verdict, group, "mail-filter@vendor.example"),
    }
    for work in steps.values():
        median_ms(work, 20)  # warm up
    rounds = {name: [median_ms(work, args.messages) for _ in range(args.rounds)] for name, work in steps.items()}
    print(
        f"{len(base64.b64decode(data['raw'])):,}-byte message; {args.rounds} rounds of {args.messages}; median of round medians (min-max):"
    )
    for name, values in rounds.items():
        print(f"  {name:34} {statistics.median(values):6.3f} ms  ({min(values):.3f}-{max(values):.3f})")


if __name__ == "__main__":
    main()
