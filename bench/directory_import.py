"""`mailfilter directory import` into DynamoDB Local: customers per second and peak memory, 10,000 vs 100,000 customers.

    .venv/bin/python bench/directory_import.py [--sizes 10000 100000] [--workers 8]

Starts DynamoDB Local (make dynamodb-local) unless AWS_ENDPOINT_URL_DYNAMODB is
set. For each size it generates a directory (200 partners; every customer has
a domain, half also an address, most a CSP partner), then runs the import in a
fresh process, into a fresh table created from template.yaml, and reports that
process's peak resident memory: if the import streams, the peak must not grow
with the file. Each size is imported twice; the second run must write nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mailfilter_testkit.aws_resources import create_tables_from_template, dynamodb_local

PARTNERS = 200


def generate(path: Path, customers: int) -> None:
    with path.open("w", encoding="utf-8") as out:
        for p in range(PARTNERS):
            partner = {
                "kind": "partner",
                "cloud": "commercial",
                "partner_id": f"p{p}",
                "name": f"Partner {p}",
                "contacts": [f"desk@p{p}.example"],
            }
            out.write(json.dumps(partner) + "\n")
        for n in range(customers):
            customer = {
                "kind": "customer",
                "cloud": "commercial",
                "tenant_id": f"tenant-{n:07d}",
                "name": f"Customer {n}",
                "domains": [f"customer{n}.example"],
                "addresses": [f"it@customer{n}-mail.example"] if n % 2 else [],
                "direct_products": ["dynamics-365"] if n % 3 == 0 else [],
                "csp": [{"partner_id": f"p{n % PARTNERS}", "products": ["azure", "microsoft-365"] if n % 5 else []}] if n % 4 else [],
            }
            out.write(json.dumps(customer) + "\n")


def child(path: str, table: str, workers: int) -> None:
    """Run one import and print its figures as JSON (this process's peak memory is the import's)."""
    from mailfilter_cli.directory_import import import_directory  # noqa: PLC0415

    start = time.perf_counter()
    report = import_directory(path, table, workers=workers)
    elapsed = time.perf_counter() - start
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux
    written = report.changed["customers"]
    print(json.dumps({"seconds": elapsed, "customers": report.customers, "written": written, "peak_mib": peak_mib}))


def run_child(path: Path, table: str, workers: int) -> dict:
    output = subprocess.run(
        [sys.executable, __file__, "--child", str(path), table, "--workers", str(workers)], check=True, capture_output=True, text=True
    )
    return json.loads(output.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--child", nargs=2, metavar=("FILE", "TABLE"))
    args = parser.parse_args()
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    if args.child:
        child(*args.child, args.workers)
        return 0
    with contextlib.ExitStack() as stack, tempfile.TemporaryDirectory() as scratch:
        if not os.environ.get("AWS_ENDPOINT_URL_DYNAMODB"):
            os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = stack.enter_context(dynamodb_local())
        print(
            f"{'customers':>10} {'file MiB':>9} {'import s':>9} {'customers/s':>12} {'peak MiB':>9} {'re-import s':>12} {'re-written':>11}"
        )
        for size in args.sizes:
            path = Path(scratch) / f"directory-{size}.jsonl"
            generate(path, size)
            table = create_tables_from_template(["DirectoryTable"])["DirectoryTable"]
            first = run_child(path, table, args.workers)
            again = run_child(path, table, args.workers)
            print(
                f"{size:>10,} {path.stat().st_size / 2**20:>9.1f} {first['seconds']:>9.1f} {size / first['seconds']:>12,.0f} "
                f"{first['peak_mib']:>9.0f} {again['seconds']:>12.1f} {again['written']:>11}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
