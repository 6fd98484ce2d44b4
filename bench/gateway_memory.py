"""Peak memory and time of the gateway for large stored messages (`raw_key`), as Lambda counts them.

    make bench-memory            # 1, 10 and 35 MB, three runs each
    .venv/bin/python bench/gateway_memory.py --sizes 1 10 35 --runs 3

The AWS services (DynamoDB Local, or moto's when Java is missing, and moto's server for
S3, SES and SQS) run in this process; each measurement is a fresh process that imports
the gateway as deployed (functions/outbound_gateway/app.py through `mailfilter invoke`'s
loader), warms it with a small message, then handles one message of the given size
addressed to a direct customer (allowed: one copy) and a CSP customer (rerouted: one
partner notice with the original attached). It reports the growth of the process's peak
resident set (ru_maxrss) over its idle peak after warm-up, which is what a Lambda
function's memory must hold; and, handling the message again under tracemalloc, the peak
of what Python allocated at once (the RSS peak can hide inside memory freed after start-up);
and the time per MB. Target: both at most 1.5 times the message size.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MB = 1024 * 1024
RECIPIENTS = ["cto@woodgrovebank.com", "it@contoso.com"]  # allowed (no partner), rerouted (Fabrikam owns Azure)


def message(size: int) -> bytes:
    head = (
        b"From: news@vendor.example\r\nTo: cto@woodgrovebank.com, it@contoso.com\r\nSubject: Azure release notes\r\n"
        b"X-Product: azure\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b1\r\n\r\n--b1\r\n"
        b"Content-Type: text/plain\r\n\r\nNotes attached.\r\n--b1\r\nContent-Type: application/pdf\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n"
    )
    line = b"JVBERi0xLjcKJeLjz9MKMSAwIG9iago8PC9UeXBlL0NhdGFsb2cvUGFnZXMgMiAwIFI+PgplbmRvYmoK\r\n"
    return head + line * max((size - len(head) - 8) // len(line), 0) + b"--b1--\r\n"


def event(key: str) -> dict:
    request = {"message_id": f"mem-{uuid.uuid4().hex}", "from": "news@vendor.example", "to": RECIPIENTS, "raw_key": key}
    return {"Records": [{"messageId": str(uuid.uuid4()), "receiptHandle": "r", "body": json.dumps(request), "eventSource": "aws:sqs"}]}


def child(variables: dict[str, str], small_key: str, key: str) -> None:
    """One measurement in a fresh process: warm up, note the idle peak, handle the large message."""
    from mailfilter_cli.local_events import GATEWAY  # noqa: PLC0415
    from mailfilter_cli.local_lambda import LambdaContext, LocalFunction, environment  # noqa: PLC0415
    from mailfilter_cli.sam_template import function_spec  # noqa: PLC0415

    # The handler itself, without `LocalFunction.run`'s observer (which keeps a copy of what SES is sent).
    gateway = LocalFunction(function_spec(GATEWAY, {"Parameters": variables}))
    with environment(gateway.environment):
        for _ in range(2):
            assert gateway.handler(event(small_key), LambdaContext(function_name=GATEWAY)) == {"batchItemFailures": []}
        idle = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        started, cpu = time.perf_counter(), time.process_time()
        answer = gateway.handler(event(key), LambdaContext(function_name=GATEWAY))
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        assert answer == {"batchItemFailures": []}, answer
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        # Then the same message again, counting what Python allocates at once (RSS can hide it in freed memory).
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        assert gateway.handler(event(key), LambdaContext(function_name=GATEWAY)) == {"batchItemFailures": []}
        allocated = tracemalloc.get_traced_memory()[1] - before
        tracemalloc.stop()
    print(json.dumps({"idle": idle, "peak": peak, "allocated": allocated, "seconds": elapsed, "cpu": cpu}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[1, 10, 35], help="Message sizes in MB.")
    parser.add_argument("--runs", type=int, default=3, help="Fresh processes per size (the median is reported).")
    parser.add_argument("--dynamodb", choices=["local", "moto"], default="local")
    parser.add_argument("--json", type=Path, help="Also write the results here.")
    args = parser.parse_args()

    from mailfilter.aws import clients  # noqa: PLC0415
    from mailfilter_cli.local_lambda import environment  # noqa: PLC0415
    from mailfilter_cli.local_services import services  # noqa: PLC0415
    from mailfilter_cli.local_stack import create_resources  # noqa: PLC0415

    results = []
    with services(args.dynamodb) as running, environment(running.environment()):
        made = create_resources(ROOT / "events" / "directory.jsonl", None)
        bucket = made.variables["MAIL_BUCKET"]
        variables = {**made.variables, **running.environment()}

        def stored(data: bytes) -> str:
            key = f"outgoing/bench/{uuid.uuid4().hex}.eml"
            clients.client("s3").put_object(Bucket=bucket, Key=key, Body=data)
            return key

        small = stored(message(20_000))
        print(f"{'size':>8} {'RSS peak growth':>16} {'allocated peak':>15} {'alloc/size':>11} {'ms per MB':>10} {'CPU ms/MB':>10}")
        for size_mb in args.sizes:
            size = int(size_mb * MB)
            key = stored(message(size))
            runs = []
            for _ in range(args.runs):
                out = subprocess.run(
                    [sys.executable, __file__, "--child", json.dumps([variables, small, key])],
                    check=False,
                    capture_output=True,
                    text=True,
                    env={**os.environ, **running.environment(), "POWERTOOLS_TRACE_DISABLED": "true", "POWERTOOLS_LOG_LEVEL": "WARNING"},
                )
                if out.returncode != 0:
                    sys.exit(f"the measuring process failed:\n{out.stderr[-4000:]}")
                runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
            growth = statistics.median(r["peak"] - r["idle"] for r in runs)
            allocated = statistics.median(r["allocated"] for r in runs)
            per_mb = statistics.median(r["seconds"] for r in runs) * 1000 / size_mb
            cpu_per_mb = statistics.median(r["cpu"] for r in runs) * 1000 / size_mb
            shown = f"{growth / MB:>13.1f} MB {allocated / MB:>12.1f} MB {allocated / size:>11.2f}"
            print(f"{size_mb:>6.0f}MB {shown} {per_mb:>10.1f} {cpu_per_mb:>10.1f}")
            ratio = max(growth, allocated) / size
            results.append(
                {"size_mb": size_mb, "rss_growth": growth, "allocated": allocated, "ratio": ratio, "ms_per_mb": per_mb, "runs": runs}
            )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")
    worst = max(r["ratio"] for r in results)
    print(f"medians of {args.runs} fresh processes; worst of RSS growth and allocated peak per message byte: {worst:.2f} (target 1.5)")
    return 0 if worst <= 1.5 else 1


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        child(*json.loads(sys.argv[2]))
    else:
        sys.exit(main())
