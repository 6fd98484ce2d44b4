"""The decisions log (DynamoDB Local): one write per message, per-message and per-customer reads, retention."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from mailfilter.aws.decisions import DecisionLog
from mailfilter.vocabulary.model import Action, Category, Classification, Cloud, Decision, Direction, Mode, Source, Verdict

# Real time: DynamoDB Local runs the table's TTL, so a record dated in the past could expire mid-test.
START = datetime.now(UTC).replace(microsecond=0)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def tick(self, seconds: float = 1) -> None:
        self.now += timedelta(seconds=seconds)


def decision(recipient: str, customer: str | None = "tenant-a", action: Action = Action.REROUTE) -> Decision:
    return Decision(
        recipient=recipient,
        action=action,
        effective=action,
        deliver_to=("desk@alpha.example",) if action is Action.REROUTE else (recipient,),
        rule="R2",
        seed_rule=2,
        reason="subscription mail for a CSP customer goes to its partner",
        category=Category.SUBSCRIPTION,
        product="azure",
        customer=customer,
        customer_name="Tenant A" if customer else None,
        matched_by="domain" if customer else None,
        partners=("alpha",) if customer else (),
    )


def verdict(message_id: str, decisions: list[Decision], cloud: Cloud = Cloud.COMMERCIAL) -> Verdict:
    classification = Classification(Category.SUBSCRIPTION, Source.HEADER, "azure", Source.HEADER, cloud, Source.HEADER)
    return Verdict(message_id, Direction.OUTBOUND, classification, Mode.ENFORCE, tuple(decisions))


def counted_log(table: str, clock: Clock, **options: Any) -> tuple[DecisionLog, list[str]]:
    client = boto3.client("dynamodb")
    sent: list[str] = []
    client.meta.events.register("before-send.dynamodb", lambda request, **_: sent.append(request.headers["X-Amz-Target"].decode()))
    return DecisionLog(table, client=client, clock=clock, **options), sent


def test_a_message_is_recorded_in_one_batch_write_with_one_item_per_recipient(decisions_table: str) -> None:
    log, sent = counted_log(decisions_table, Clock())
    log.record(verdict("m1", [decision(f"r{i}@contoso.com") for i in range(25)]))
    assert sent == ["DynamoDB_20120810.BatchWriteItem"]
    assert len(log.for_message("m1")) == 25


def test_more_than_25_recipients_take_one_batch_write_per_25(decisions_table: str) -> None:
    log, sent = counted_log(decisions_table, Clock())
    log.record(verdict("m1", [decision(f"r{i}@contoso.com") for i in range(30)]))
    assert sent.count("DynamoDB_20120810.BatchWriteItem") == 2
    assert len(log.for_message("m1")) == 30


def test_a_record_holds_the_whole_decision_and_expires_after_the_retention(decisions_table: str) -> None:
    clock = Clock()
    log, _ = counted_log(decisions_table, clock, retention_days=30)
    log.record(verdict("m1", [decision("it@contoso.com")]))
    (record,) = log.for_message("m1")
    assert {k: record[k] for k in ("message_id", "recipient", "action", "effective", "rule", "seed_rule", "category", "product")} == {
        "message_id": "m1",
        "recipient": "it@contoso.com",
        "action": "reroute",
        "effective": "reroute",
        "rule": "R2",
        "seed_rule": 2,
        "category": "subscription",
        "product": "azure",
    }
    assert (record["cloud"], record["customer"], record["partners"], record["deliver_to"]) == (
        "commercial",
        "tenant-a",
        ["alpha"],
        ["desk@alpha.example"],
    )
    assert (record["direction"], record["kind"], record["mode"]) == ("outbound", "decision", "enforce")
    assert record["expires_at"] == int((START + timedelta(days=30)).timestamp())


def test_recording_the_same_message_again_overwrites_instead_of_duplicating(decisions_table: str) -> None:
    log, _ = counted_log(decisions_table, Clock())
    message = verdict("m1", [decision("a@contoso.com"), decision("b@contoso.com")])
    log.record(message)
    log.record(message)
    assert len(log.for_message("m1")) == 2


def test_a_release_is_kept_beside_the_original_decision(decisions_table: str) -> None:
    clock = Clock()
    log, _ = counted_log(decisions_table, clock)
    log.record(verdict("m1", [decision("a@contoso.com", action=Action.BLOCK)]))
    clock.tick()
    log.record(verdict("m1", [decision("a@contoso.com", action=Action.ALLOW)]), kind="released")
    assert [(r["kind"], r["action"]) for r in log.for_message("m1")] == [("decision", "block"), ("released", "allow")]


def test_customer_history_is_newest_first_and_limited(decisions_table: str) -> None:
    clock = Clock()
    log, _ = counted_log(decisions_table, clock)
    for n in range(5):
        log.record(verdict(f"m{n}", [decision("it@contoso.com")]))
        clock.tick(60)
    log.record(verdict("other", [decision("it@fabrikam.com", customer="tenant-b")]))
    assert [r["message_id"] for r in log.for_customer("tenant-a", limit=3)] == ["m4", "m3", "m2"]
    assert [r["message_id"] for r in log.for_customer("tenant-b")] == ["other"]


def test_customer_history_can_be_narrowed_to_one_cloud(decisions_table: str) -> None:
    clock = Clock()
    log, _ = counted_log(decisions_table, clock)
    for n in range(4):
        cloud = Cloud.USGOV if n % 2 else Cloud.COMMERCIAL
        log.record(verdict(f"m{n}", [decision("it@contoso.com")], cloud=cloud))
        clock.tick()
    assert [r["message_id"] for r in log.for_customer("tenant-a", Cloud.USGOV, limit=1)] == ["m3"]
    assert [r["message_id"] for r in log.for_customer("tenant-a", Cloud.COMMERCIAL)] == ["m2", "m0"]


def test_deferred_outcomes_are_recorded_per_recipient_without_a_verdict(decisions_table: str) -> None:
    log, _ = counted_log(decisions_table, Clock())
    log.record_outcome(
        "m9", Direction.INBOUND, Cloud.GERMANY, ["a@vendor.example", "b@vendor.example"], kind="deferred", error="directory unavailable"
    )
    records = log.for_message("m9")
    assert [(r["recipient"], r["kind"], r["error"], r["cloud"]) for r in records] == [
        ("a@vendor.example", "deferred", "directory unavailable", "germany"),
        ("b@vendor.example", "deferred", "directory unavailable", "germany"),
    ]


def test_recipients_without_a_customer_stay_out_of_the_customer_index(decisions_table: str) -> None:
    log, _ = counted_log(decisions_table, Clock())
    log.record(verdict("m1", [decision("stranger@elsewhere.example", customer=None, action=Action.ALLOW)]))
    assert "customer" not in log.for_message("m1")[0]


def test_an_unknown_kind_is_refused_before_anything_is_written(decisions_table: str) -> None:
    log, sent = counted_log(decisions_table, Clock())
    with pytest.raises(ValueError, match="unknown record kind 'decided'"):
        log.record(verdict("m1", [decision("a@contoso.com")]), kind="decided")
    assert sent == []


def test_retention_must_be_at_least_a_day() -> None:
    with pytest.raises(ValueError, match="retention_days"):
        DecisionLog("table", retention_days=0)
