"""The inbound filter end to end: the real handler, DynamoDB Local, moto S3 and SES, the sample events."""

from __future__ import annotations

import pytest

from mailfilter.inbound.hold import InboundHold
from mailfilter_testkit.inbound_stack import FILTER_FROM, InboundStack, inbound_stack, sample


@pytest.fixture
def stack(monkeypatch, dynamodb_local, directory_table, decisions_table):
    yield from inbound_stack(monkeypatch, dynamodb_local, directory_table, decisions_table)


def run(stack: InboundStack, name: str) -> tuple[dict, dict, bytes]:
    event, raw = sample(name)
    stack.store(event["Records"][0]["ses"]["mail"]["messageId"], raw)
    return stack.invoke(event), event, raw


def message_id(event: dict) -> str:
    return event["Records"][0]["ses"]["mail"]["messageId"]


def test_r2_csp_customer_writing_to_billing_is_forwarded_to_its_partner_and_not_delivered(stack):
    response, event, raw = run(stack, "csp-customer-to-billing")
    assert response == {"disposition": "STOP_RULE"}
    ((envelope, sent, sent_raw),) = stack.sent()
    assert envelope == ["csp-desk@fabrikam.example"]
    assert FILTER_FROM in sent["From"]
    assert sent["Reply-To"] == "cfo@tailspintoys.com"
    assert sent["To"] == "csp-desk@fabrikam.example"
    assert sent["X-Original-From"] == "Sample Sender <cfo@tailspintoys.com>"
    assert sent["X-Original-To"] == "billing@vendor.example"
    for removed in ("DKIM-Signature", "Return-Path", "Sender", "Message-ID", "Delivered-To", "Received"):
        assert sent[removed] is None, removed
    notice, original = sent.get_payload()
    text = notice.get_payload(decode=True).decode()
    assert "cfo@tailspintoys.com" in text
    assert "billing@vendor.example" in text
    assert "Fabrikam Ltd" in text
    # the customer's body and attachment arrive byte for byte
    body = raw.split(b"\r\n\r\n", 1)[1]
    assert body in sent_raw
    attachment = original.get_payload()[1]
    assert attachment.get_filename() == "invoice.pdf"
    assert attachment.get_payload(decode=True).startswith(b"%PDF-1.4")
    (record,) = stack.recorded(message_id(event))
    assert (record["effective"], record["rule"]) == ("reroute", "subscription-owned-by-partner")
    assert stack.quarantined() == []


def test_r3_csp_customer_writing_to_support_continues_to_the_desk(stack):
    response, event, _ = run(stack, "csp-customer-to-support")
    assert response == {"disposition": "CONTINUE"}
    assert stack.sent() == []
    (record,) = stack.recorded(message_id(event))
    assert (record["effective"], record["category"]) == ("allow", "operational")


@pytest.mark.parametrize("name", ["direct-customer-to-sales", "unknown-sender"])
def test_customer_without_partner_or_not_in_directory_continues(stack, name):
    response, event, _ = run(stack, name)
    assert response == {"disposition": "CONTINUE"}
    assert stack.sent() == []
    assert [r["effective"] for r in stack.recorded(message_id(event))] == ["allow"]


@pytest.mark.parametrize(
    ("name", "rule"),
    [("spam", "spam-detected"), ("dmarc-fail", "dmarc-failed"), ("spoofed-csp-domain", "unauthenticated-sender")],
)
def test_security_blocks_are_quarantined_never_forwarded(stack, name, rule):
    response, event, _ = run(stack, name)
    assert response == {"disposition": "STOP_RULE"}
    assert stack.sent() == []
    (item,) = stack.quarantined()
    assert item["direction"] == "inbound"
    assert item["request"]["kind"] == "blocked"
    assert item["request"]["ses_message_id"] == message_id(event)
    assert item["verdict"]["decisions"][0]["rule"] == rule
    assert stack.quarantined_raw() == [f"quarantine/raw/{message_id(event)}.eml"]
    (record,) = stack.recorded(message_id(event))
    assert (record["effective"], record["rule"]) == ("block", rule)


def test_mixed_desks_continue_for_support_and_forward_once_for_billing_and_sales(stack):
    response, event, _ = run(stack, "mixed-desks")
    assert response == {"disposition": "CONTINUE"}
    ((envelope, sent, _),) = stack.sent()
    assert envelope == ["csp-desk@fabrikam.example"]
    assert sent["X-Mailfilter-Original-Recipients"] == "billing@vendor.example, sales@vendor.example"
    effective = {r["recipient"]: r["effective"] for r in stack.recorded(message_id(event))}
    assert effective == {"billing@vendor.example": "reroute", "support@vendor.example": "allow", "sales@vendor.example": "reroute"}


def test_the_same_ses_message_processed_twice_sends_nothing_twice(stack):
    event, raw = sample("csp-customer-to-billing")
    stack.store(message_id(event), raw)
    first = stack.invoke(event)
    second = stack.invoke(event)
    assert first == second == {"disposition": "STOP_RULE"}
    assert len(stack.sent()) == 1


def test_missing_s3_object_defers_with_a_record_and_release_redrives_it(stack):
    event, raw = sample("csp-customer-to-billing")  # not stored
    assert stack.invoke(event) == {"disposition": "STOP_RULE"}
    assert stack.sent() == []
    kinds = {r["kind"] for r in stack.recorded(message_id(event))}
    assert kinds == {"decision", "deferred"}
    (item,) = stack.quarantined()
    assert item["request"]["kind"] == "deferred"
    assert item["request"]["raw"]["key"] == f"inbound/{message_id(event)}"
    assert item["request"]["ses_message_id"] == message_id(event)
    # once the object is there, the deferred item re-drives through the same filter
    stack.store(message_id(event), raw)
    outcome = stack.handler.build().redrive(InboundHold.model_validate(item["request"]))
    assert outcome.deferred is None
    assert [envelope for envelope, _, _ in stack.sent()] == [["csp-desk@fabrikam.example"]]


def test_unreadable_directory_defers_and_never_continues(stack, monkeypatch):
    monkeypatch.setenv("DIRECTORY_TABLE", "no-such-table")
    stack.handler.build.cache_clear()
    response, event, _ = run(stack, "csp-customer-to-support")
    assert response == {"disposition": "STOP_RULE"}
    (record,) = stack.recorded(message_id(event))
    assert record["kind"] == "deferred"
    assert "no-such-table" in record["error"]
    (item,) = stack.quarantined()
    assert item["request"]["kind"] == "deferred"


def test_event_with_missing_fields_is_deferred_with_a_record(stack):
    event, _ = sample("csp-customer-to-support")
    del event["Records"][0]["ses"]["receipt"]["spamVerdict"]
    assert stack.invoke(event) == {"disposition": "STOP_RULE"}
    (record,) = stack.recorded(message_id(event))
    assert record["kind"] == "deferred"
    assert "spamVerdict" in record["error"]


def test_truncated_headers_still_get_a_decision_from_the_event(stack):
    event, raw = sample("csp-customer-to-support")
    event["Records"][0]["ses"]["mail"]["headersTruncated"] = True
    event["Records"][0]["ses"]["mail"]["headers"] = event["Records"][0]["ses"]["mail"]["headers"][:2]
    stack.store(message_id(event), raw)
    assert stack.invoke(event) == {"disposition": "CONTINUE"}
    assert [r["effective"] for r in stack.recorded(message_id(event))] == ["allow"]


def test_an_event_that_is_not_an_ses_receipt_is_a_clear_error(stack):
    from mailfilter.vocabulary.errors import EventError  # noqa: PLC0415

    with pytest.raises(EventError, match="not a valid SES receipt event"):
        stack.invoke({"Records": [{"eventSource": "aws:sqs"}]})
