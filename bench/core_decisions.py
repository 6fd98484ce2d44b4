"""Recipient decisions per second of the policy core (classification, in-memory lookup, decision table).

Usage: .venv/bin/python bench/core_decisions.py [--runs 9] [--messages 2000]
Prints the median and spread of several runs, per CPU second of this process (steady on a
busy machine) and per wall second; target (issue 13): >= 150,000 decisions/s on one core, median of 9 runs.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from mailfilter.directory.memory import InMemoryDirectory
from mailfilter.directory.records import CustomerRecord, PartnerRecord
from mailfilter.engine import evaluate
from mailfilter.policy.config import load_policy
from mailfilter.vocabulary.message import Declaration, Message
from mailfilter.vocabulary.model import Category, Cloud, Direction, Source

PRODUCTS = ["azure", "microsoft-365", "dynamics-365", "intune"]


def build_directory(customers: int, rng: random.Random) -> InMemoryDirectory:
    records: list = [
        PartnerRecord(kind="partner", cloud=cloud, partner_id=f"p{i}", name=f"Partner {i}", contacts=[f"desk@p{i}.example"])
        for cloud in Cloud
        for i in range(20)
    ]
    for index in range(customers):
        csp = [{"partner_id": f"p{rng.randrange(20)}", "products": rng.sample(PRODUCTS, rng.randrange(3))}] if rng.random() < 0.7 else []
        records.append(
            CustomerRecord(
                kind="customer",
                cloud=rng.choice(list(Cloud)),
                tenant_id=f"t{index}",
                name=f"Customer {index}",
                domains=[f"c{index}.example"],
                direct_products=rng.sample(PRODUCTS, rng.randrange(2)),
                csp=csp,
            )
        )
    return InMemoryDirectory(records)


def build_messages(count: int, customers: int, rng: random.Random) -> list[Message]:
    messages = []
    for index in range(count):
        recipients = tuple(dict.fromkeys(f"user{rng.randrange(99)}@c{rng.randrange(customers)}.example" for _ in range(rng.randint(1, 50))))
        declaration = Declaration(
            Source.REQUEST, rng.choice(list(Category)).value, rng.choice([None, *PRODUCTS]), rng.choice(list(Cloud)).value
        )
        messages.append(Message(f"m{index}", Direction.OUTBOUND, "apps@vendor.example", recipients, "Subject", (declaration,)))
    return messages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--customers", type=int, default=5000)
    args = parser.parse_args()
    rng = random.Random(7)
    directory, policy = build_directory(args.customers, rng), load_policy()
    messages = build_messages(args.messages, args.customers, rng)
    decisions = sum(len(m.recipients) for m in messages)
    wall, cpu = [], []
    for _ in range(args.runs):
        start_wall, start_cpu = time.perf_counter(), time.process_time()
        for message in messages:
            evaluate(message, directory, policy)
        wall.append(decisions / (time.perf_counter() - start_wall))
        cpu.append(decisions / (time.process_time() - start_cpu))
    print(f"{args.messages} messages, {decisions} recipient decisions per run, {args.runs} runs, one thread")
    print(f"per CPU second: median {statistics.median(cpu):,.0f} decisions/s (min {min(cpu):,.0f}, max {max(cpu):,.0f})")
    print(f"per wall second: median {statistics.median(wall):,.0f} decisions/s (min {min(wall):,.0f}, max {max(wall):,.0f})")
    print("target: >= 150,000 decisions/s on one core (median of 9 runs)")


if __name__ == "__main__":
    main()
