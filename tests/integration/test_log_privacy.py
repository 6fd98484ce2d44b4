"""Logs at the default level carry no customer address and no message body in the clear.

Each function runs for real (DynamoDB Local, moto S3 and SES) on mail whose addresses and
body are unique markers, with every log line captured: the function's own JSON lines
(through its formatter, as CloudWatch receives them), every other logger at the template's
POWERTOOLS_LOG_LEVEL, and whatever reaches stdout and stderr (EMF metrics included).
"""

from __future__ import annotations

import io
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from mailfilter_cli.sam_template import load_template
from mailfilter_testkit.inbound_stack import InboundStack, inbound_stack
from mailfilter_testkit.outbound_support import Harness, LambdaContext, load_function, sample_event, sqs_event
from mailfilter_testkit.sample_events import VERDICTS, receipt_event

DEFAULT_LEVEL = load_template()["Globals"]["Function"]["Environment"]["Variables"]["POWERTOOLS_LOG_LEVEL"]


class Captured:
    def __init__(self, logger: Any, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> None:
        self.buffer = io.StringIO()
        handler = logging.StreamHandler(self.buffer)
        handler.setFormatter(logger.registered_formatter)
        logger.addHandler(handler)
        logger.setLevel(DEFAULT_LEVEL)
        caplog.set_level(DEFAULT_LEVEL)
        self.caplog, self.capfd = caplog, capfd

    def text(self) -> str:
        out, err = self.capfd.readouterr()
        return "\n".join([self.buffer.getvalue(), self.caplog.text, out, err])


def assert_private(text: str, addresses: list[str], body: str) -> None:
    assert text.strip(), "nothing was logged: the check would prove nothing"
    leaked = [a for a in addresses if a.lower() in text.lower()]
    assert leaked == []
    assert body not in text


def receipt_for(message_id: str, sender: str, desks: list[str], subject: str, body: str, *, verdict: str) -> tuple[dict[str, Any], bytes]:
    """An SES receipt event and the raw message the receipt rule stored for it."""
    verdicts = {"PASS": VERDICTS["pass"], "FAIL": VERDICTS["spam"], "GRAY": VERDICTS["unauthenticated"]}[verdict]
    raw = (
        f"From: Person <{sender}>\r\nTo: {', '.join(desks)}\r\nSubject: {subject}\r\nMessage-ID: <{message_id}@mail.example>\r\n"
        f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    ).encode()
    return receipt_event(message_id, sender, desks, subject, verdicts), raw


def marker() -> str:
    return uuid.uuid4().hex[:10]


# ---------------------------------------------------------------- outbound gateway


@pytest.fixture
def gateway(outbound: Harness) -> Any:
    return load_function("outbound_gateway")


def test_outbound_gateway_logs_no_recipient_and_no_body_for_allowed_rerouted_and_blocked_mail(outbound, gateway, caplog, capfd):
    captured = Captured(gateway.logger, caplog, capfd)
    tag, body = marker(), f"Confidential body {marker()}"
    # allowed (no CSP partner), rerouted (CSP customer, subscription), blocked (product mail to CSP-only)
    people = [f"cfo.{tag}@woodgrovebank.com", f"it.{tag}@contoso.com", f"buyer.{tag}@tailspintoys.com", f"eve.{tag}@example.org"]
    requests = [
        {"message_id": f"priv-{tag}-1", "from": "billing@vendor.example", "to": people[:2], "cc": [people[3]], "bcc": [people[2]],
         "reply_to": [people[3]], "subject": "Your invoice", "text": body, "category": "subscription", "product": "azure"},
        {"message_id": f"priv-{tag}-2", "from": "news@vendor.example", "to": [people[2]], "subject": "Announcing", "html": f"<p>{body}</p>",
         "category": "product", "product": "azure"},
    ]  # fmt: skip
    response = gateway.lambda_handler(sqs_event(*requests), LambdaContext())
    assert response == {"batchItemFailures": []}
    assert outbound.sent(), "mail went out"
    assert_private(captured.text(), people, body)


def test_outbound_gateway_logs_no_address_when_it_rejects_a_request(outbound, gateway, caplog, capfd):
    captured = Captured(gateway.logger, caplog, capfd)
    tag, body = marker(), f"Confidential body {marker()}"
    people = [f"ann.{tag}@contoso.com", f"bob.{tag}@tailspintoys.com"]
    rejected = [
        {
            "message_id": f"bad-{tag}-1",
            "from": f"spoof.{tag}@contoso.com",
            "to": people,
            "subject": "x",
            "text": body,
        },  # not a vendor identity
        {"message_id": f"bad-{tag}-2", "from": "billing@vendor.example", "to": [f"{people[0]}\r\nBcc: {people[1]}"], "text": body},
        {"message_id": f"bad-{tag}-3", "from": "billing@vendor.example", "to": people, "text": body, "surprise": people[1]},
        {"message_id": f"bad-{tag}-4", "from": "billing@vendor.example", "to": [f"not-an-address-{tag}", people[0]], "text": body},
    ]
    response = gateway.lambda_handler(sqs_event(*rejected), LambdaContext())
    assert response == {"batchItemFailures": []}
    assert outbound.sent() == []
    assert_private(captured.text(), [*people, f"spoof.{tag}@contoso.com"], body)


# ---------------------------------------------------------------- outbound audit


def test_outbound_audit_logs_no_recipient_of_a_violation(outbound, caplog, capfd):
    audit = load_function("outbound_audit")
    captured = Captured(audit.logger, caplog, capfd)
    event = sample_event("email-sent-bypass.json")
    audit.lambda_handler(event, LambdaContext(function_name="outbound-audit"))
    assert_private(captured.text(), event["detail"]["mail"]["destination"], "no body in this event")


# ---------------------------------------------------------------- inbound filter


@pytest.fixture
def stack(monkeypatch, dynamodb_local, directory_table, decisions_table) -> Iterator[InboundStack]:
    yield from inbound_stack(monkeypatch, dynamodb_local, directory_table, decisions_table)


@pytest.mark.parametrize(
    ("sender_domain", "desk", "verdict"),
    [
        ("tailspintoys.com", "billing@vendor.example", "PASS"),  # rerouted to the partner
        ("contoso.com", "support@vendor.example", "PASS"),  # allowed
        ("tailspintoys.com", "sales@vendor.example", "FAIL"),  # spam: blocked and quarantined
        ("tailspintoys.com", "billing@vendor.example", "GRAY"),  # unauthenticated: blocked
    ],
    ids=["rerouted", "allowed", "spam", "unauthenticated"],
)
def test_inbound_filter_logs_no_sender_and_no_body(stack, caplog, capfd, sender_domain, desk, verdict):
    captured = Captured(stack.handler.logger, caplog, capfd)
    tag, body = marker(), f"Confidential body {marker()}"
    sender = f"person.{tag}@{sender_domain}"
    event, raw = receipt_for(f"priv{tag}", sender, [desk], "About our invoice", body, verdict=verdict)
    stack.store(f"priv{tag}", raw)
    response = stack.invoke(event)
    assert response["disposition"] in ("CONTINUE", "STOP_RULE", "STOP_RULE_SET")
    assert_private(captured.text(), [sender], body)


def test_inbound_filter_logs_no_sender_when_it_defers(stack, caplog, capfd):
    captured = Captured(stack.handler.logger, caplog, capfd)
    tag = marker()
    sender = f"person.{tag}@tailspintoys.com"
    event, _ = receipt_for(f"priv{tag}", sender, ["billing@vendor.example"], "Invoice", "never stored", verdict="PASS")
    stack.invoke(event)  # the raw message is not in the bucket: deferred
    assert [r["kind"] for r in stack.recorded(f"priv{tag}")] == ["decision", "deferred"]
    assert_private(captured.text(), [sender], "never stored")


def spellings(address: str) -> list[str]:
    """The address as a log line may carry it: raw, and with its quotes and backslashes escaped as JSON escapes them."""
    return [address, address.replace("\\", "\\\\").replace('"', '\\"')]


# Local parts the filter refuses, so the deferral's error echoes them: quoted with a space and an
# escaped quote, quoted around an at-sign, UTF-8 (with a UTF-8 domain too), and quoted before an IP literal.
UNUSUAL_LOCAL_PARTS = {
    "quoted": lambda secret: f'"desk {secret}"@vendor.example',
    "quoted-escaped-quote": lambda secret: f'"desk\\"{secret}"@vendor.example',
    "quoted-at-sign": lambda secret: f'"desk@{secret}"@vendor.example',
    "utf8": lambda secret: f"jürgen.{secret}@vendor.example",
    "utf8-domain": lambda secret: f"用户{secret}@例子.广告",
    "ip-literal": lambda secret: f'"desk {secret}"@[192.0.2.1]',
}


@pytest.mark.parametrize("form", list(UNUSUAL_LOCAL_PARTS))
def test_inbound_filter_logs_no_quoted_or_utf8_recipient_when_it_defers(stack, caplog, capfd, form):
    captured = Captured(stack.handler.logger, caplog, capfd)
    tag, secret = marker(), marker()
    desk = UNUSUAL_LOCAL_PARTS[form](secret)
    event, raw = receipt_for(f"priv{tag}", f"person.{tag}@tailspintoys.com", [desk], "Invoice", "never sent", verdict="PASS")
    stack.store(f"priv{tag}", raw)
    response = stack.invoke(event)  # the recipient is not an address the filter accepts: deferred, and the error says why
    assert response == {"disposition": "STOP_RULE"}
    assert "deferred" in [r["kind"] for r in stack.recorded(f"priv{tag}")]
    text = captured.text()
    assert "inbound message deferred" in text
    assert "***@" in text, "the deferral's error names the masked address"
    assert secret not in text
    assert_private(text, spellings(desk), "never sent")


@pytest.mark.parametrize("form", ["quoted", "utf8"])
def test_inbound_filter_logs_no_quoted_or_utf8_sender_when_it_defers(stack, caplog, capfd, form):
    captured = Captured(stack.handler.logger, caplog, capfd)
    tag, secret = marker(), marker()
    sender = f'"person {secret}"@tailspintoys.com' if form == "quoted" else f"jürgen.{secret}@tailspintoys.com"
    event, _ = receipt_for(f"priv{tag}", sender, ["billing@vendor.example"], "Invoice", "never stored", verdict="PASS")
    stack.invoke(event)  # the raw message is not in the bucket: deferred
    assert "deferred" in [r["kind"] for r in stack.recorded(f"priv{tag}")]
    text = captured.text()
    assert '"error":' in text, "the outcome's log line says why nothing was delivered"
    assert secret not in text
    assert_private(text, spellings(sender), "never stored")


def test_the_privacy_check_sees_an_echoed_address_when_addresses_are_logged(stack, caplog, capfd, monkeypatch):
    monkeypatch.setenv("LOG_ADDRESSES", "true")  # the operator's switch: the same deferral now names the address
    captured = Captured(stack.handler.logger, caplog, capfd)
    tag, secret = marker(), marker()
    desk = f'"desk {secret}"@vendor.example'
    event, raw = receipt_for(f"priv{tag}", f"person.{tag}@tailspintoys.com", [desk], "Invoice", "never sent", verdict="PASS")
    stack.store(f"priv{tag}", raw)
    stack.invoke(event)
    text = captured.text()
    assert secret in text
    with pytest.raises(AssertionError):
        assert_private(text, spellings(desk), "never sent")


def test_the_privacy_check_sees_an_address_that_is_logged(stack, caplog, capfd):
    captured = Captured(stack.handler.logger, caplog, capfd)
    stack.handler.logger.info("oops", extra={"sender": "leak@tailspintoys.com"})
    with pytest.raises(AssertionError):
        assert_private(captured.text(), ["leak@tailspintoys.com"], "body")
