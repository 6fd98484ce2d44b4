"""The generated mail: send requests for the outbound gateway and SES receipt events for the inbound filter.

Send requests have 1 to `max_recipients` recipients (To, Cc and Bcc) and every category, product
and cloud; receipt events every desk, product and SES verdict. Each carries what the oracle
expects for each of its recipients or desks.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from mailfilter_testkit.load_run.directory import CLOUDS, Customer, customer_of
from mailfilter_testkit.load_run.oracle import Expected, heard_category, inbound_oracle, oracle
from mailfilter_testkit.sample_events import VERDICTS, receipt_event

VENDOR_SENDERS = ("notices@vendor.example", "billing@vendor.example", "status@vendor.example", "news@vendor.example")
CATEGORIES = ("subscription", "service-incident", "operational", "product", "general")
PRODUCTS = (None, "azure", "microsoft-365", "dynamics-365")


@dataclass
class Outbound:
    message_id: str
    request: dict[str, Any]
    expected: dict[str, Expected]  # per recipient

    @property
    def allowed(self) -> set[str]:
        return {r for r, e in self.expected.items() if e.action == "allow"}

    @property
    def blocked(self) -> set[str]:
        return {r for r, e in self.expected.items() if e.action == "block"}

    def groups(self) -> dict[tuple[str | None, frozenset[str]], set[str]]:
        found: dict[tuple[str | None, frozenset[str]], set[str]] = defaultdict(set)
        for recipient, e in self.expected.items():
            if e.action == "reroute":
                found[e.tenant, frozenset(e.contacts)].add(recipient)
        return found


def _address_pool(rng: random.Random, customers_per_cloud: int) -> list[str]:
    pool = [f"user{k}@c{i}.example" for i in range(customers_per_cloud) for k in range(3)]
    pool += [f"user{k}@eu.c{i}.example" for i in range(customers_per_cloud) for k in range(1)]  # subdomains are covered
    pool += [f"user{k}@nobody{j}.example" for j in range(max(4, customers_per_cloud // 3)) for k in range(2)]
    rng.shuffle(pool)
    return pool


def generate_outbound(
    count: int, seed: int, customers: dict[tuple[str, str], Customer], customers_per_cloud: int, max_recipients: int = 50
) -> list[Outbound]:
    rng = random.Random(seed)
    pool = _address_pool(rng, customers_per_cloud)
    messages = []
    for n in range(count):
        cloud, category, product = rng.choice(CLOUDS), rng.choice(CATEGORIES), rng.choice(PRODUCTS)
        recipients = rng.sample(pool, min(len(pool), rng.randint(1, max_recipients)))
        to, cc, bcc = [], [], []
        for recipient in recipients:
            rng.choice((to, to, cc, bcc)).append(recipient)
        message_id = f"lout-{n:06d}"
        sender = rng.choice(VENDOR_SENDERS)
        request: dict[str, Any] = {
            "message_id": message_id,
            "from": sender,
            "to": to,
            "cc": cc,
            "bcc": bcc,
            "subject": f"{message_id} about {category}",
            "text": f"Body of {message_id}.\n",
            "category": category,
            "cloud": cloud,
        }
        if product:
            request["product"] = product
        effective = heard_category(category, sender)
        expected = {r: oracle(customer_of(customers, cloud, r), effective, product) for r in recipients}
        messages.append(Outbound(message_id, request, expected))
    return messages


DESKS = {
    "subscription": ("billing@vendor.example", "licensing@vendor.example"),
    "operational": ("support@vendor.example", "status@vendor.example"),
    "product": ("sales@vendor.example",),
}
PRODUCT_WORDS = {None: "our account", "azure": "Azure", "microsoft-365": "Microsoft 365", "dynamics-365": "Dynamics 365"}


@dataclass
class Inbound:
    message_id: str
    event: dict[str, Any]
    raw: bytes
    expected: dict[str, Expected]  # per desk


def generate_inbound(count: int, seed: int, customers: dict[tuple[str, str], Customer], customers_per_cloud: int) -> list[Inbound]:
    rng = random.Random(seed + 1)
    pool = _address_pool(rng, customers_per_cloud)
    events = []
    for n in range(count):
        category = rng.choice(tuple(DESKS))
        desks = rng.sample(DESKS[category], rng.randint(1, len(DESKS[category])))
        product = rng.choice(PRODUCTS)
        verdict = rng.choices(tuple(VERDICTS), weights=(6, 2, 1, 1))[0]
        sender = rng.choice(pool)
        message_id = f"lin-{n:06d}"
        subject = f"{message_id} question about {PRODUCT_WORDS[product]}"
        raw = (
            f"From: Someone <{sender}>\r\nTo: {', '.join(desks)}\r\nSubject: {subject}\r\n"
            f"Message-ID: <{message_id}@mail.example>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nBody of {message_id}.\r\n"
        ).encode()
        event = receipt_event(
            message_id, sender, desks, subject, VERDICTS[verdict], dmarc_policy="reject" if verdict == "dmarc-reject" else None
        )
        customer = customer_of(customers, "commercial", sender)  # the default policy's desks are in the default cloud
        expected = {d: inbound_oracle(customer, category, product, verdict) for d in desks}
        events.append(Inbound(message_id, event, raw, expected))
    return events
