"""The outbound gateway beside aws-lambda-ses-forwarder and the I/O floor, in one interleaved run (issue 13).

Usage: make bench-gateway
       .venv/bin/python bench/gateway.py [--rounds 5] [--messages 200] [--body raw|raw_key] [--json FILE]

Starts DynamoDB Local (moto's DynamoDB if it cannot) and moto's server in a process of its
own (S3, SES, SESv2), creates what template.yaml declares and imports events/directory.jsonl,
as `mailfilter local up` does. A 21 KB message with a 15 KB PDF then goes, one message at a
time, through each variant; warm processes, variants interleaved round by round:

- the gateway, as deployed: functions/outbound_gateway/app.py imported with the environment
  template.yaml gives it, its `lambda_handler` invoked with one SQS record per message and a
  fresh message id (tracing off, as with `sam local`): one recipient rerouted, one allowed,
  one blocked, and a 10-recipient mixed message;
- aws-lambda-ses-forwarder (npm, pinned in bench/forwarder/package-lock.json) as shipped,
  driven by bench/forwarder/run.js: S3 copy and get of the stored message, SESv2 raw send;
- the floor: boto3 S3 get_object of the stored message and one SESv2 send_email (Content.Raw).

Prints per variant the median of the rounds' medians (ms per message), p90 over every
message, CPU ms per message (this process's CPU time; the Node process's own for the
forwarder, from process.cpuUsage()), AWS calls per message by API, and sequential round
trips (calls that do not overlap in time, counted per message); then the ratios the issue
sets targets for, with their spread across rounds (min-max of the per-round ratios).
Moto and DynamoDB Local run in processes of their own, so their CPU is not counted.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import cProfile
import io
import json
import os
import platform
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import policy as email_policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import boto3
from botocore.client import BaseClient

from mailfilter.aws import clients
from mailfilter_cli.dynamodb_local import DynamoDBLocalError, die_with_parent, dynamodb_local_process, free_port
from mailfilter_cli.local_events import GATEWAY
from mailfilter_cli.local_files import env_vars_document
from mailfilter_cli.local_lambda import LambdaContext, LocalFunction, environment
from mailfilter_cli.local_services import Services
from mailfilter_cli.local_stack import create_resources
from mailfilter_cli.sam_template import LOCAL_REGION, function_spec

ROOT = Path(__file__).resolve().parent.parent
FORWARDER = ROOT / "bench" / "forwarder"
SENDER = "news@vendor.example"
REROUTED = "it@tailspintoys.com"  # Tailspin Toys: CSP only, Fabrikam owns all its products
PARTNER_DESK = "csp-desk@fabrikam.example"
ALLOWED = "cto@woodgrovebank.com"  # Woodgrove Bank: direct, no CSP partner
MIXED = (
    # allowed: direct customers and an address in no directory
    "cto@woodgrovebank.com", "cfo@woodgrovebank.com", "it@woodgrovebank.com", "someone@unlisted.example",
    # rerouted to Fabrikam: Contoso holds Azure through it
    "it@contoso.com", "cio@contoso.com", "admin@contoso.com",
    # blocked: CSP only (Tailspin Toys; Litware, whose Azure Fabrikam owns)
    "ops@tailspintoys.com", "ceo@tailspintoys.com", "it@litwareinc.com",
)  # fmt: skip
INBOUND_PREFIX = "bench-forwarder/"  # where the forwarder and the floor read the stored message
PRODUCT_NEWS = "Introducing new Azure features"
STORED_PREFIX = "outgoing/bench/"  # --body raw_key: where applications store a message for the gateway


Call = tuple[str, float, float, str]  # API, start and end (seconds), the table or bucket


@dataclass(frozen=True)
class Variant:
    name: str
    label: str
    kind: str  # "gateway", "forwarder" or "floor"
    recipients: tuple[str, ...] = ()
    category: str = "subscription"
    subject: str = "Your Azure subscription renews on 1 February"


VARIANTS = (
    Variant("rerouted", "gateway, one recipient rerouted", "gateway", (REROUTED,), "subscription"),
    Variant("allowed", "gateway, one recipient allowed", "gateway", (ALLOWED,), "subscription"),
    Variant("blocked", "gateway, one recipient blocked", "gateway", (REROUTED,), "product", PRODUCT_NEWS),
    Variant("mixed10", "gateway, 10 recipients mixed", "gateway", MIXED, "product", PRODUCT_NEWS),
    Variant("forwarder", "aws-lambda-ses-forwarder (npm), as shipped", "forwarder"),
    Variant("floor", "floor: boto3 S3 get + SESv2 raw send", "floor"),
)
RATIOS = (("rerouted", "forwarder", 1.0), ("rerouted", "floor", 1.5), ("allowed", "floor", 1.3))


def raw_message(recipients: tuple[str, ...], subject: str) -> bytes:
    """About 21 KB: a text part, a 15 KB PDF and a DKIM-Signature, as bench/mime_copies.py sends."""
    message = EmailMessage()
    message["From"] = SENDER
    message["To"] = ", ".join(recipients)
    message["Subject"] = subject
    message["Message-ID"] = f"<{uuid.uuid4()}@vendor.example>"
    message["DKIM-Signature"] = "v=1; a=rsa-sha256; d=vendor.example; s=s1; b=" + "A" * 300
    message.set_content("Hello\n" * 50)
    message.add_attachment(os.urandom(15000), maintype="application", subtype="pdf", filename="invoice.pdf")
    return message.as_bytes(policy=email_policy.SMTP)


# ---------------------------------------------------------------- AWS calls, counted in this process


class CallLog:
    """Every botocore API call of this process, with its start and end, under the label being measured.

    Wrapping `BaseClient._make_api_call` sees every client, however the gateway's wiring
    makes them (and retries count once, as one API call).
    """

    def __init__(self) -> None:
        self.current: list[Call] | None = None

    def install(self) -> None:
        original = BaseClient._make_api_call
        log = self

        def _make_api_call(client: BaseClient, operation_name: str, api_params: dict[str, Any]) -> Any:
            start = time.perf_counter()
            try:
                return original(client, operation_name, api_params)
            finally:
                calls = log.current
                if calls is not None:
                    api = f"{client.meta.service_model.service_id}.{operation_name}"
                    calls.append((api, start, time.perf_counter(), target_of(api_params)))

        BaseClient._make_api_call = _make_api_call  # type: ignore[method-assign]


def target_of(params: dict[str, Any]) -> str:
    """The table(s) or bucket a call acts on."""
    if params.get("TableName") or params.get("Bucket"):
        return params.get("TableName") or params.get("Bucket")
    tables = list(params.get("RequestItems", ()))  # BatchGetItem, BatchWriteItem
    for item in params.get("TransactItems", ()):  # TransactWriteItems: {"Put": {"TableName": ...}}, ...
        tables += [action.get("TableName", "") for action in item.values() if isinstance(action, dict)]
    return ", ".join(dict.fromkeys(tables))


def round_trips(calls: list[Call]) -> tuple[int, float]:
    """Sequential round trips (groups of calls overlapping in time) and the time spent in them."""
    trips, busy, end = 0, 0.0, None
    for _, start, stop, _ in sorted(calls, key=lambda call: call[1]):
        if end is None or start >= end:
            trips += 1
            busy += stop - start
            end = stop
        elif stop > end:
            busy += stop - end
            end = stop
    return trips, busy


@dataclass
class Measured:
    """One variant's rounds."""

    variant: Variant
    round_medians: list[float] = field(default_factory=list)  # ms
    all_ms: list[float] = field(default_factory=list)
    round_cpu: list[float] = field(default_factory=list)  # CPU ms per message, per round
    calls: Counter = field(default_factory=Counter)
    trips: list[int] = field(default_factory=list)
    in_calls_ms: list[float] = field(default_factory=list)  # seconds, per message
    messages: int = 0
    errors: int = 0
    sample: list[Call] = field(default_factory=list)  # the last message's calls, in order

    def add_round(self, ms: list[float], cpu_ms: float, calls: list[list[Call]], errors: int) -> None:
        self.round_medians.append(statistics.median(ms))
        self.all_ms += ms
        self.round_cpu.append(cpu_ms / len(ms))
        self.messages += len(ms)
        self.errors += errors
        self.sample = sorted(calls[-1], key=lambda call: call[1])
        for message_calls in calls:
            self.calls.update(call[0] for call in message_calls)
            trips, busy = round_trips(message_calls)
            self.trips.append(trips)
            self.in_calls_ms.append(busy)

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.all_ms)
        return {
            "label": self.variant.label,
            "median_ms": statistics.median(self.round_medians),
            "p90_ms": ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))],
            "cpu_ms_per_message": statistics.median(self.round_cpu),
            "round_medians_ms": self.round_medians,
            "round_cpu_ms": self.round_cpu,
            "calls_per_message": {api: n / self.messages for api, n in sorted(self.calls.items())},
            "calls_total_per_message": sum(self.calls.values()) / self.messages,
            "sequential_round_trips": statistics.median(self.trips) if self.trips else 0,
            "ms_in_aws_calls": statistics.median(self.in_calls_ms) * 1000 if self.in_calls_ms else 0.0,
            "messages": self.messages,
            "errors": self.errors,
            "one_message_calls": [
                {"api": api, "target": target, "start_ms": (start - self.sample[0][1]) * 1000, "ms": (end - start) * 1000}
                for api, start, end, target in self.sample
            ],
        }


# ---------------------------------------------------------------- services


def progress(text: str) -> None:
    print(f"bench-gateway: {text}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def moto_process(log: io.TextIOBase) -> Iterator[str]:
    """moto's server in a process of its own, so its CPU is not this process's."""
    port = free_port()
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, preexec_fn=die_with_parent())  # noqa: PLW1509
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto's server did not start on {endpoint}") from None
                time.sleep(0.2)
        yield endpoint
    finally:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(10)


@contextlib.contextmanager
def local_services(stack: contextlib.ExitStack, log: io.TextIOBase) -> Iterator[Services]:
    try:
        local = stack.enter_context(dynamodb_local_process(output=log, wait=False))
    except DynamoDBLocalError as error:
        progress(f"DynamoDB Local is not available ({error}); using moto's DynamoDB (run `make dynamodb-local`)")
        local = None
    moto = stack.enter_context(moto_process(log))
    if local is not None:
        local.wait_until_ready()
    yield Services(moto, local.endpoint if local else moto, local.pid if local else None)


# ---------------------------------------------------------------- the variants


class Gateway:
    """The deployed handler module, imported as `mailfilter invoke` does, and invoked through its `lambda_handler`.

    The handler's own wiring runs (`build()` once, then per invocation what it does before
    `handle_batch`), so the bench follows the handler as it changes. Tracing is off, as with
    `sam local`; logs and metrics go where Lambda would send them (standard output), here /dev/null.
    """

    def __init__(self, env_vars: dict[str, Any], stack: contextlib.ExitStack) -> None:
        self.sink = stack.enter_context(open(os.devnull, "w"))  # noqa: SIM115 - the handler's logs and metrics (stdout in Lambda)
        with contextlib.redirect_stdout(self.sink):  # powertools' Logger takes sys.stdout when the module is imported
            self.function = LocalFunction(function_spec(GATEWAY, env_vars))
        self.module = self.function.module
        stack.enter_context(environment(self.function.environment))  # as the runtime sets it, for the whole run

    def event(self, body: dict[str, Any]) -> dict[str, Any]:
        record = {
            "messageId": str(uuid.uuid4()),
            "receiptHandle": "bench",
            "body": json.dumps(body),
            "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": str(int(time.time() * 1000))},
            "messageAttributes": {},
            "md5OfBody": "",
            "eventSource": "aws:sqs",
            "eventSourceARN": f"arn:aws:sqs:{LOCAL_REGION}:123456789012:csp-mail-filter-outbound",
            "awsRegion": LOCAL_REGION,
        }
        return {"Records": [record]}

    def invoke(self, event: dict[str, Any]) -> bool:
        context = LambdaContext(function_name=GATEWAY)
        with contextlib.redirect_stdout(self.sink), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # powertools' "No application metrics to publish"
            response = self.module.lambda_handler(event, context)
        return not response.get("batchItemFailures")


class Forwarder:
    """bench/forwarder/run.js, one warm Node process; it answers on a pipe of its own."""

    def __init__(self, endpoint: str, bucket: str, from_address: str, log: io.TextIOBase) -> None:
        if not (FORWARDER / "node_modules" / "aws-lambda-ses-forwarder").is_dir():
            raise SystemExit("aws-lambda-ses-forwarder is not installed: run `make bench-gateway` (npm ci in bench/forwarder)")
        read, write = os.pipe()
        env = {
            **os.environ,
            "BENCH_ENDPOINT": endpoint,
            "BENCH_REGION": LOCAL_REGION,
            "BENCH_BUCKET": bucket,
            "BENCH_PREFIX": INBOUND_PREFIX,
            "BENCH_FROM": from_address,
            "BENCH_RECIPIENT": REROUTED,
            "BENCH_FORWARD_TO": PARTNER_DESK,
            "BENCH_ANSWER_FD": str(write),
        }
        self.process = subprocess.Popen(
            ["node", str(FORWARDER / "run.js")],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,  # the forwarder's console.log, as it logs in Lambda
            stderr=log,
            pass_fds=(write,),
            env=env,
            text=True,
        )
        os.close(write)
        self.answers = os.fdopen(read, "r")

    def run(self, ids: list[str]) -> dict[str, Any]:
        self.process.stdin.write(json.dumps({"ids": ids}) + "\n")
        self.process.stdin.flush()
        line = self.answers.readline()
        if not line:
            raise RuntimeError("the forwarder's Node process ended; see bench-gateway's log")
        return json.loads(line)

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(10)


class Bench:
    def __init__(
        self, args: argparse.Namespace, env_vars: dict[str, Any], endpoint: str, log: io.TextIOBase, stack: contextlib.ExitStack
    ) -> None:
        self.args = args
        self.variables = env_vars["Parameters"]
        self.bucket = self.variables["MAIL_BUCKET"]
        self.from_address = self.variables.get("FILTER_FROM_ADDRESS") or "mail-filter@vendor.example"
        self.calls = CallLog()
        self.calls.install()
        self.gateway = Gateway(env_vars, stack)
        self.forwarder = Forwarder(endpoint, self.bucket, self.from_address, log)
        session = boto3.session.Session()
        self.s3 = session.client("s3", config=clients.CONFIG)  # the floor: the same client settings as the filter's
        self.sesv2 = session.client("sesv2", config=clients.CONFIG)
        self.raw = {variant.name: raw_message(variant.recipients or (REROUTED,), variant.subject) for variant in VARIANTS}
        self.results = {variant.name: Measured(variant) for variant in VARIANTS}

    # Bodies, events and stored messages are made before each round's clock starts.

    def prepare(self, variant: Variant, count: int) -> list[Any]:
        raw = self.raw[variant.name]
        if variant.kind == "gateway":
            events = []
            for _ in range(count):
                message_id = f"bench-{uuid.uuid4()}"
                body: dict[str, Any] = {"message_id": message_id, "from": SENDER, "to": list(variant.recipients)}
                body |= {"category": variant.category, "product": "azure"}
                if self.args.body == "raw_key":
                    key = f"{STORED_PREFIX}{message_id}.eml"
                    self.s3.put_object(Bucket=self.bucket, Key=key, Body=raw)
                    body["raw_key"] = key
                else:
                    body["raw"] = base64.b64encode(raw).decode()
                events.append(self.gateway.event(body))
            return events
        ids = [f"bench-{uuid.uuid4()}" for _ in range(count)]
        for message_id in ids:
            self.s3.put_object(Bucket=self.bucket, Key=f"{INBOUND_PREFIX}{message_id}", Body=raw)
        return ids

    def floor_one(self, message_id: str) -> None:
        raw = self.s3.get_object(Bucket=self.bucket, Key=f"{INBOUND_PREFIX}{message_id}")["Body"].read()
        self.sesv2.send_email(
            FromEmailAddress=self.from_address, Destination={"ToAddresses": [PARTNER_DESK]}, Content={"Raw": {"Data": raw}}
        )

    def measure(self, variant: Variant, work: list[Any]) -> tuple[list[float], float, list[list[Call]], int]:
        if variant.kind == "forwarder":
            answer = self.forwarder.run(work)
            calls = [[(api, start / 1000, end / 1000, "") for api, start, end in message] for message in answer["calls"]]
            return answer["ms"], answer["cpu_ms"], calls, answer["errors"]
        run: Callable[[Any], bool | None] = self.gateway.invoke if variant.kind == "gateway" else self.floor_one
        times, calls, errors = [], [], 0
        cpu = time.process_time()
        for item in work:
            self.calls.current = message_calls = []
            start = time.perf_counter()
            ok = run(item)
            times.append((time.perf_counter() - start) * 1000)
            self.calls.current = None
            calls.append(message_calls)
            errors += ok is False
        return times, (time.process_time() - cpu) * 1000, calls, errors

    def run(self) -> None:
        args = self.args
        for variant in VARIANTS:  # warm every path (imports, connections, JIT) before measuring
            self.measure(variant, self.prepare(variant, args.warmup))
        for number in range(args.rounds):
            order = VARIANTS[number % len(VARIANTS) :] + VARIANTS[: number % len(VARIANTS)]  # each variant leads once in turn
            for variant in order:
                times, cpu, calls, errors = self.measure(variant, self.prepare(variant, args.messages))
                self.results[variant.name].add_round(times, cpu, calls, errors)
            medians = "  ".join(f"{v.name} {self.results[v.name].round_medians[-1]:.1f}" for v in VARIANTS)
            progress(f"round {number + 1}/{args.rounds}: median ms {medians}")

    def profile(self, name: str) -> dict[str, Any]:
        """Where one variant's CPU goes: cProfile (CPU time) over a round of it, own time grouped by package.

        A C function's time (socket reads, zlib, regular expressions) counts for the package that called it.
        """
        variant = next(v for v in VARIANTS if v.name == name)
        work = self.prepare(variant, self.args.messages)
        profiler = cProfile.Profile(time.process_time)
        profiler.enable()
        self.measure(variant, work)
        profiler.disable()
        stats = pstats.Stats(profiler).stats  # (file, line, function) -> (calls, primitive, own, cumulative, callers)
        by_group: Counter = Counter()
        mailfilter: Counter = Counter()
        others: Counter = Counter()
        for (path, _, function), (_, _, own, _, callers) in stats.items():
            if path == "~" and callers:
                for (caller_path, _, _), (_, _, caller_own, _) in callers.items():
                    by_group[package_of(caller_path)] += caller_own
            else:
                by_group[package_of(path)] += own
            if package_of(path) == "other":
                others[Path(path).name] += own
            if "/mailfilter/" in path:
                mailfilter[f"{Path(path).parent.name}/{Path(path).name}:{function}"] += own
        total = sum(by_group.values())
        return {
            "variant": name,
            "messages": len(work),
            "profiled_cpu_ms_per_message": total * 1000 / len(work),
            "share_by_package": {group: own / total for group, own in by_group.most_common()},
            "mailfilter_functions_ms_per_message": {f: own * 1000 / len(work) for f, own in mailfilter.most_common(8)},
            "other_modules": [name for name, _ in others.most_common(8)],
        }

    def report(self) -> dict[str, Any]:
        variants = {name: measured.summary() for name, measured in self.results.items()}
        ratios = []
        for top, bottom, target in RATIOS:
            per_round = [a / b for a, b in zip(variants[top]["round_medians_ms"], variants[bottom]["round_medians_ms"], strict=True)]
            ratios.append(
                {"ratio": f"{top}/{bottom}", "median": statistics.median(per_round), "min": min(per_round), "max": max(per_round)}
                | {"target": target, "per_round": per_round}
            )
        return {
            "machine": f"{platform.node()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
            "rounds": self.args.rounds,
            "messages_per_round": self.args.messages,
            "message_bytes": len(self.raw["rerouted"]),
            "gateway_body": self.args.body,
            "variants": variants,
            "ratios": ratios,
        }

    def close(self) -> None:
        self.forwarder.close()


# ---------------------------------------------------------------- output


PACKAGES = (  # path fragment -> the group its functions' own time is counted under
    ("/botocore/", "AWS SDK (botocore, boto3, urllib3)"), ("/boto3/", "AWS SDK (botocore, boto3, urllib3)"),
    ("/urllib3/", "AWS SDK (botocore, boto3, urllib3)"), ("/s3transfer/", "AWS SDK (botocore, boto3, urllib3)"),
    ("/http/", "http, socket, ssl (stdlib)"), ("/socket.py", "http, socket, ssl (stdlib)"), ("/ssl.py", "http, socket, ssl (stdlib)"),
    ("/email/", "email (stdlib)"), ("/aws_lambda_powertools/", "powertools"), ("/pydantic", "pydantic"),
    ("/json/", "json (stdlib)"), ("/logging/", "logging (stdlib)"), ("/mailfilter/", "mailfilter"),
)  # fmt: skip


def package_of(path: str) -> str:
    if path == "~":
        return "builtins (C functions)"
    return next((group for fragment, group in PACKAGES if fragment in path), "other")


def table(result: dict[str, Any], bold: Callable[[str], str]) -> str:
    lines = [
        bold(
            f"{result['message_bytes']:,}-byte message with a PDF; {result['rounds']} rounds of {result['messages_per_round']} "
            f"messages per variant, interleaved; gateway body: {result['gateway_body']}"
        ),
        "",
    ]
    head = f"{'variant':44} {'median ms':>9} {'p90 ms':>7} {'CPU ms/msg':>10} {'AWS calls':>9} {'round trips':>11} {'ms in calls':>11}"
    lines += [bold(head), "-" * len(head)]
    for summary in result["variants"].values():
        errors = f"  ({summary['errors']} failed)" if summary["errors"] else ""
        lines.append(
            f"{summary['label']:44} {summary['median_ms']:9.1f} {summary['p90_ms']:7.1f} {summary['cpu_ms_per_message']:10.1f} "
            f"{summary['calls_total_per_message']:9.2f} {summary['sequential_round_trips']:11g} {summary['ms_in_aws_calls']:11.1f}{errors}"
        )
    lines += ["", bold("ratio of medians (per-round min-max)        target")]
    for ratio in result["ratios"]:
        met = "met" if ratio["median"] <= ratio["target"] else "not met"
        lines.append(
            f"  {ratio['ratio']:20} {ratio['median']:5.2f} ({ratio['min']:.2f}-{ratio['max']:.2f})      <= {ratio['target']:.1f}  {met}"
        )
    lines += ["", bold("AWS calls per message, by API")]
    for summary in result["variants"].values():
        calls = ", ".join(f"{api} {count:g}" for api, count in summary["calls_per_message"].items())
        lines.append(f"  {summary['label']:44} {calls}")
    lines += ["", bold("one message's calls in order: API (table or bucket) start+duration ms; overlapping calls share a start")]
    for summary in result["variants"].values():
        calls = summary["one_message_calls"]
        shown = [f"{c['api']}{' (' + c['target'] + ')' if c['target'] else ''} {c['start_ms']:.0f}+{c['ms']:.0f}" for c in calls]
        lines.append(f"  {summary['label']}:")
        lines += [f"    {text}" for text in shown]
    if "profile" in result:
        profile = result["profile"]
        lines += ["", bold(f"where the {profile['variant']} gateway's CPU goes (cProfile, {profile['messages']} messages; "
                           f"{profile['profiled_cpu_ms_per_message']:.1f} ms per message under the profiler)")]  # fmt: skip
        lines += [f"  {group:40} {share:6.1%}" for group, share in profile["share_by_package"].items() if share >= 0.005]
        lines += [f"  (other: {', '.join(profile['other_modules'])})"]
        lines += [bold("  mailfilter's own time, ms per message:")]
        lines += [f"    {function:60} {ms:6.2f}" for function, ms in profile["mailfilter_functions_ms_per_message"].items()]
    lines += [
        "",
        "CPU: this Python process's for the gateway and the floor, the Node process's for the forwarder; moto and",
        "DynamoDB Local run in processes of their own. Round trips: per message, calls that do not overlap in time (median).",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--messages", type=int, default=200, help="messages per variant per round")
    parser.add_argument("--warmup", type=int, default=20, help="messages per variant before the first round")
    parser.add_argument(
        "--body", choices=["raw", "raw_key"], default="raw", help="the gateway's message: inline (raw) or stored in S3 (raw_key)"
    )
    parser.add_argument("--json", type=Path, help="also save the results as JSON")
    parser.add_argument("--profile", choices=[v.name for v in VARIANTS if v.kind == "gateway"], help="then profile a round of this variant")
    args = parser.parse_args()
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        os.environ.pop(name, None)

    with contextlib.ExitStack() as stack:
        log = stack.enter_context(tempfile.NamedTemporaryFile("w+", prefix="bench-gateway-", suffix=".log", delete=False))
        progress(f"starting DynamoDB Local and moto (their output: {log.name})")
        running = stack.enter_context(local_services(stack, log))
        stack.enter_context(environment(running.environment()))
        made = create_resources(ROOT / "events" / "directory.jsonl", None, say=progress)
        bench = Bench(args, env_vars_document(running, made), running.moto, log, stack)
        stack.callback(bench.close)
        progress(f"{running.database}; moto at {running.moto}; {args.rounds} rounds of {args.messages} per variant")
        bench.run()
        result = bench.report()
        if args.profile:
            progress(f"profiling a round of {args.profile}")
            result["profile"] = bench.profile(args.profile)

    bold = (lambda text: f"\033[1m{text}\033[0m") if sys.stdout.isatty() else (lambda text: text)
    print(table(result, bold))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        print(f"\nsaved {args.json}")
    failed = sum(summary["errors"] for summary in result["variants"].values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
