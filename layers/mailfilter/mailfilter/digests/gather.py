"""A period's decision records, grouped per digest: per sending identity (daily), per partner (weekly).

`sender_digests` and `partner_digests` are pure: decision records in, `Digest`s out.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from mailfilter.delivery.original import header_safe
from mailfilter.digests.digest import Digest, PartnerWeek, SenderLine
from mailfilter.digests.render import partner_html, partner_text, sender_html, sender_text
from mailfilter.digests.request import PARTNERS, SENDERS, Period
from mailfilter.policy.config import Policy
from mailfilter.vocabulary.addresses import mask
from mailfilter.vocabulary.holds import quarantine_id

Record = Mapping[str, Any]


def _outcome(record: Record) -> str | None:
    action, effective = record.get("action"), record.get("effective")
    if effective == "block":
        return "blocked"
    if effective == "reroute":
        return "rerouted"
    if effective == "allow" and action in ("block", "reroute"):
        return "audit-blocked" if action == "block" else "audit-rerouted"
    return None


def _customer(record: Record) -> str:
    name, tenant = record.get("customer_name"), record.get("customer")
    if name and tenant:
        return f"{name} ({tenant})"
    return name or tenant or "not in the directory"


def _partner_names(record: Record) -> str:
    view = record.get("customer_view") or {}
    names = {p.get("partner_id"): p.get("name") for p in view.get("partners", [])}
    wanted = [names.get(pid) or pid for pid in record.get("partners") or ()]
    return ", ".join(wanted) or ", ".join(record.get("deliver_to") or ()) or "-"


def _released(records: Iterable[Record]) -> dict[tuple[str, str], str]:
    found: dict[tuple[str, str], str] = {}
    for record in records:
        if record.get("kind") == "released":
            found[(record["message_id"], record["recipient"])] = (
                f"released {record['at'][:16].replace('T', ' ')} UTC as {record['effective']}"
            )
    return found


def sender_digests(records: Iterable[Record], policy: Policy, period: Period) -> list[Digest]:
    """Per sending identity in scope, its blocked and rerouted recipients of `period`; none for an identity with none."""
    settings = policy.digests
    scope = settings.senders.identities
    kept: list[Record] = []
    for record in records:
        if record.get("direction") != "outbound" or record.get("kind") not in ("decision", "released"):
            continue
        if record.get("kind") == "released" or (record.get("sender") and _outcome(record) is not None):
            kept.append(record)
    released = _released(kept)
    by_identity: dict[str, list[SenderLine]] = defaultdict(list)
    for record in kept:
        sender = record.get("sender")
        if record.get("kind") != "decision" or not sender or (scope != "all" and sender not in scope):
            continue
        outcome = _outcome(record)
        assert outcome is not None
        quarantined = None
        if outcome == "blocked":
            quarantined = quarantine_id(record["message_id"], datetime.fromisoformat(record["at"].replace("Z", "+00:00")))
        recipient = record["recipient"]
        by_identity[sender].append(
            SenderLine(
                at=record["at"],
                message_id=record["message_id"],
                subject=record.get("subject") if settings.subjects else None,
                recipient=mask(recipient) if settings.mask_recipients else recipient,
                customer=_customer(record),
                outcome=outcome,
                rule=record.get("rule", "-") + (f" (seed rule {record['seed_rule']})" if record.get("seed_rule") else ""),
                reason=record.get("reason", ""),
                partners=_partner_names(record),
                quarantine=quarantined,
                released=released.get((record["message_id"], recipient)),
            )
        )
    digests = []
    for identity in sorted(by_identity):
        lines = sorted(by_identity[identity], key=lambda line: (line.at, line.message_id, line.recipient))
        to = tuple(settings.senders.send_to.get(identity, [identity]))
        subject = header_safe(f"Mail filter: your blocked and rerouted mail from {identity}, {period.label}")
        digests.append(
            Digest(
                SENDERS,
                identity,
                period,
                to,
                subject,
                sender_text(identity, lines, settings, period),
                sender_html(identity, lines, settings, period),
                len(lines),
            )
        )
    return digests


def partner_digests(records: Iterable[Record], policy: Policy, period: Period) -> list[Digest]:
    """Per partner that mail was rerouted to in `period`: counts per customer, by direction, category and product."""
    settings = policy.digests
    weeks: dict[tuple[str, str], PartnerWeek] = {}
    for record in records:
        if record.get("kind") not in ("decision", "released") or record.get("effective") != "reroute":
            continue  # audit-mode reroutes were delivered to the customer, not the partner
        view = record.get("customer_view") or {}
        known = {p.get("partner_id"): p for p in view.get("partners", [])}
        partner_ids = list(record.get("partners") or ())
        for partner_id in partner_ids:
            week = weeks.setdefault((record.get("cloud", "?"), partner_id), PartnerWeek(record.get("cloud", "?"), partner_id))
            link = known.get(partner_id)
            contacts = tuple(link.get("contacts", ())) if link else (tuple(record.get("deliver_to") or ()) if len(partner_ids) == 1 else ())
            if contacts and record["at"] >= week.contacts_at:  # the contacts the latest decision saw
                week.contacts, week.contacts_at = contacts, record["at"]
            if link and link.get("name"):
                week.name = link["name"]
            direction = record.get("direction", "?") + (" (released)" if record.get("kind") == "released" else "")
            key = (direction, record.get("category", "?"), record.get("product") or "-")
            week.customers[_customer(record)][key].add(record["message_id"])
            if record.get("subject") and settings.subjects:
                week.subjects[record["message_id"]] = record["subject"]
    digests = []
    for (cloud, partner_id), week in sorted(weeks.items()):
        if not week.contacts:
            continue  # a partner without a contact address got no mail either (it was blocked: partner-without-contact)
        name = week.name or partner_id
        messages = sum(len({m for ids in by_kind.values() for m in ids}) for by_kind in week.customers.values())
        subject = header_safe(f"Mail filter: mail rerouted to {name} for your CSP customers, {period.label}")
        digests.append(
            Digest(
                PARTNERS,
                f"{cloud}/{partner_id}",
                period,
                week.contacts,
                subject,
                partner_text(week, name, period),
                partner_html(week, name, period),
                messages,
            )
        )
    return digests
