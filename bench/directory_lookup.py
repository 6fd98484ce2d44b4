"""Directory lookups against DynamoDB Local: requests per message and latency for 1, 10 and 50 recipients.

    .venv/bin/python bench/directory_lookup.py [--rounds 300]

Starts DynamoDB Local (make dynamodb-local) unless AWS_ENDPOINT_URL_DYNAMODB is
set, creates the DirectoryTable from template.yaml, loads 2,000 customers and
looks up recipients at distinct customers (worst case: nothing shared), each
giving three keys (address, mail.<tenant> domain, <tenant> parent domain).
Requests are counted with botocore's before-send event; the cache is off for
the latency figures, so each lookup is a real round trip.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import statistics
import sys
import time

import boto3

from mailfilter.aws.batch import batch_write
from mailfilter.aws.clients import CONFIG
from mailfilter.aws.directory_items import customer_items, entry_key, partner_item
from mailfilter.aws.directory_table import DynamoDirectory
from mailfilter.directory.matching import keys_for
from mailfilter.directory.records import CustomerRecord, PartnerRecord
from mailfilter.vocabulary.model import Cloud
from mailfilter_testkit.aws_resources import create_tables_from_template, dynamodb_local

CUSTOMERS = 2_000
C = Cloud.COMMERCIAL


def load(client, table: str) -> None:
    partner = PartnerRecord(kind="partner", cloud=C, partner_id="alpha", name="Alpha", contacts=["desk@alpha.example"])
    requests = [{"PutRequest": {"Item": partner_item(partner)}}]
    for n in range(CUSTOMERS):
        record = CustomerRecord(
            kind="customer",
            cloud=C,
            tenant_id=f"t{n}",
            name=f"Tenant {n}",
            domains=[f"tenant{n}.example"],
            csp=[{"partner_id": "alpha", "products": ["azure"]}],
        )
        requests.extend({"PutRequest": {"Item": item}} for item in customer_items(record, {"alpha": partner}))
    batch_write(client, table, requests)


def recipients(count: int) -> list[str]:
    return [f"user@mail.tenant{n}.example" for n in random.sample(range(CUSTOMERS), count)]


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def run(rounds: int) -> int:
    client = boto3.client("dynamodb", config=CONFIG)
    sent: list[str] = []
    client.meta.events.register("before-send.dynamodb", lambda **_: sent.append("request"))
    table = create_tables_from_template(["DirectoryTable"], client=client)["DirectoryTable"]
    load(client, table)

    print(f"DynamoDB requests per message lookup ({CUSTOMERS:,} customers, distinct recipients, 3 keys each):")
    cached = DynamoDirectory(table, client=client, cache_ttl_seconds=60)
    for count in (1, 10, 33, 50):
        batch = recipients(count)
        sent.clear()
        found = cached.lookup(C, batch)
        cold = len(sent)
        sent.clear()
        cached.lookup(C, batch)
        print(f"  {count:>2} recipients: {cold} cold, {len(sent)} warm cache  ({sum(m is not None for m in found.values())} found)")

    uncached = DynamoDirectory(table, client=client, cache_ttl_seconds=0)
    for _ in range(200):  # warm the connection pool and DynamoDB Local's JVM
        uncached.lookup(C, recipients(10))
    sizes = (1, 10, 50)
    timings: dict[int, list[float]] = {count: [] for count in sizes}
    raw: dict[int, list[float]] = {3: [], 150: []}
    for _ in range(rounds):  # sizes interleaved, so a change in machine load touches them alike
        for count in sizes:
            batch = recipients(count)
            start = time.perf_counter()
            uncached.lookup(C, batch)
            timings[count].append((time.perf_counter() - start) * 1000)
        for keys in list(raw):  # the same keys without the filter's code: DynamoDB Local's own cost
            wanted = [entry_key(C, key) for key in keys_for(recipients(keys // 3))]
            start = time.perf_counter()
            for chunk in range(0, keys, 100):
                client.batch_get_item(RequestItems={table: {"Keys": wanted[chunk : chunk + 100]}})
            raw[keys].append((time.perf_counter() - start) * 1000)
    print(f"Lookup latency, cache off, {rounds} rounds (ms):")
    for count in sizes:
        print(f"  {count:>2} recipients: median {statistics.median(timings[count]):6.2f}  p99 {percentile(timings[count], 0.99):6.2f}")
    ratio = statistics.median(timings[50]) / statistics.median(timings[1])
    floor = statistics.median(raw[150]) / statistics.median(raw[3])
    print(
        f"DynamoDB Local alone, plain BatchGetItem (ms): 3 keys {statistics.median(raw[3]):.2f}, "
        f"150 keys in 2 sequential requests {statistics.median(raw[150]):.2f} (ratio {floor:.2f})"
    )
    verdict = "ok" if ratio <= 1.5 else "ABOVE THE 1.5 LIMIT"
    print(f"Median ratio 50/1 recipients: {ratio:.2f} ({verdict})")
    return 0 if ratio <= 1.5 else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args()
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    random.seed(7)
    with contextlib.ExitStack() as stack:
        if not os.environ.get("AWS_ENDPOINT_URL_DYNAMODB"):
            os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = stack.enter_context(dynamodb_local())
        return run(args.rounds)


if __name__ == "__main__":
    sys.exit(main())
