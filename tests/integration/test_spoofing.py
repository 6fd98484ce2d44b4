"""Spoofing and abuse: nothing a sender writes makes the filter relay to a partner, trust a declaration, or inject a header.

Inbound messages are built as SES receipt events and read by the filter's own adapter;
the engine decides on the sample directory (events/directory.jsonl: Tailspin Toys is a CSP
customer of Fabrikam, Contoso buys through Fabrikam and directly). End-to-end tests run the
real handlers and parse what moto's SES received.
"""

from __future__ import annotations

import base64
import json
import uuid
from email import message_from_bytes
from email import policy as email_policy
from email.utils import getaddresses
from typing import Any

import pytest

from mailfilter.delivery.original import header_safe
from mailfilter.directory.memory import InMemoryDirectory
from mailfilter.engine import evaluate
from mailfilter.events.ses_receipt import parse_receipt_event, receipt_message
from mailfilter.policy.config import load_policy
from mailfilter.vocabulary.errors import EventError
from mailfilter.vocabulary.model import Action, Source
from mailfilter_testkit.inbound_stack import InboundStack, inbound_stack
from mailfilter_testkit.outbound_support import Harness, LambdaContext, load_function, sqs_event
from mailfilter_testkit.paths import ROOT
from mailfilter_testkit.sample_events import VERDICTS, receipt_event

DIRECTORY = InMemoryDirectory.from_file(ROOT / "events" / "directory.jsonl")
POLICY = load_policy(None)
FABRIKAM = "csp-desk@fabrikam.example"


def inbound(
    sender: str,
    desk: str = "billing@vendor.example",
    *,
    verdict: str = "pass",
    envelope: str | None = None,
    headers: dict[str, str] | None = None,
    dmarc_policy: str | None = None,
    **overrides: str,
) -> dict[str, Any]:
    verdicts = {**VERDICTS[verdict], **overrides}
    event = receipt_event(
        f"spoof{uuid.uuid4().hex[:12]}", sender, [desk], "Question about our invoice", verdicts, dmarc_policy=dmarc_policy
    )
    mail = event["Records"][0]["ses"]["mail"]
    if envelope is not None:
        mail["source"] = envelope
    for name, value in (headers or {}).items():
        mail["headers"].append({"name": name, "value": value})
    return event


def decide(event: dict[str, Any]):
    message = receipt_message(parse_receipt_event(event))
    return message, evaluate(message, DIRECTORY, POLICY)


# ---------------------------------------------------------------- inbound: declarations are never trusted


@pytest.mark.parametrize(
    ("header", "value"),
    [("X-Communication-Category", "service-incident"), ("X-Communication-Category", "operational"),
     ("x-communication-category", "OPERATIONAL"), ("X-Product", "dynamics-365"), ("X-Cloud-Instance", "usgov")],
)  # fmt: skip
def test_inbound_declaration_headers_are_ignored_whoever_writes_them(header, value):
    # Tailspin writing to sales is product mail from a CSP-only customer: blocked, whatever the headers claim.
    _message, verdict = decide(inbound("cfo@tailspintoys.com", "sales@vendor.example", headers={header: value}))
    (decision,) = verdict.decisions
    assert (decision.action, decision.rule) == (Action.BLOCK, "product-mail-for-csp-customer")
    assert Source.HEADER not in (verdict.classification.category_source, verdict.classification.cloud_source)
    assert verdict.classification.cloud.value == "commercial"


def test_inbound_from_a_vendor_address_is_not_a_trusted_declaration():
    _message, verdict = decide(
        inbound("billing@vendor.example", "sales@vendor.example", headers={"X-Communication-Category": "operational"})
    )
    assert verdict.classification.category_source is not Source.HEADER
    assert verdict.decisions[0].category.value == "product"


# ---------------------------------------------------------------- inbound: no reroute without authentication


@pytest.mark.parametrize(
    ("verdict", "envelope", "overrides"),
    [
        ("unauthenticated", None, {}),  # no SPF, DKIM or DMARC pass at all
        ("unauthenticated", "bounce@attacker.example", {"spf": "PASS"}),  # SPF passes, for the attacker's envelope domain
        ("unauthenticated", "cfo@tailspintoys.com", {"dkim": "PASS"}),  # DKIM passes for some domain; the envelope is forged
        ("unauthenticated", "bounce@attacker.example", {"spf": "PASS", "dkim": "PASS"}),
        ("unauthenticated", None, {"spf": "FAIL", "dkim": "FAIL", "dmarc": "FAIL"}),  # DMARC fails, domain policy none
    ],
    ids=["nothing-passes", "spf-for-another-domain", "dkim-with-forged-envelope", "spf-and-dkim-elsewhere", "dmarc-fail-policy-none"],
)
def test_a_from_claiming_a_csp_customer_without_authentication_is_not_rerouted(verdict, envelope, overrides):
    _message, result = decide(inbound("cfo@tailspintoys.com", verdict=verdict, envelope=envelope, **overrides))
    (decision,) = result.decisions
    assert decision.action is Action.BLOCK
    assert decision.deliver_to == ()
    assert decision.rule == "unauthenticated-sender"


def test_the_same_message_authenticated_by_dmarc_is_rerouted():
    (decision,) = decide(inbound("cfo@tailspintoys.com"))[1].decisions
    assert (decision.action, decision.deliver_to) == (Action.REROUTE, (FABRIKAM,))


def test_envelope_sender_and_from_that_disagree_are_judged_by_the_from_and_not_relayed():
    message, result = decide(inbound("cfo@tailspintoys.com", verdict="unauthenticated", envelope="ceo@contoso.com", spf="PASS"))
    assert message.sender == "cfo@tailspintoys.com"
    assert message.authentication.envelope_aligned is False
    assert result.decisions[0].action is Action.BLOCK


@pytest.mark.parametrize(
    "sender",
    [
        "cfo@tailspint0ys.com",  # digit for letter
        "cfo@tаilspintoys.com",  # Cyrillic a
        "cfo@xn--tilspintoys-3ig.com",  # the punycode of a lookalike
        "cfo@tailspintoys.com.attacker.example",  # the customer's domain as a label
        "cfo@eviltailspintoys.com",  # a suffix, not a subdomain
        "cfo@tailspintoys.co",
        "tailspintoys.com@attacker.example",
    ],
)
def test_lookalike_domains_are_not_the_customer_and_never_go_to_its_partner(sender):
    try:
        _message, result = decide(inbound(sender))
    except EventError:  # refused as an address: as safe (the handler defers it with a record)
        return
    (decision,) = result.decisions
    assert decision.customer is None
    assert decision.action is not Action.REROUTE
    assert FABRIKAM not in decision.deliver_to


def test_a_unicode_domain_and_its_punycode_are_the_same_customer():
    unicode_sender = decide(inbound("info@bäckerei-münchen.example", "support@vendor.example"))[1].decisions[0]
    ascii_sender = decide(inbound("info@xn--bckerei-mnchen-5hb60b.example", "support@vendor.example"))[1].decisions[0]
    assert unicode_sender.customer == ascii_sender.customer == "9c4a1f77-munchen"


# ---------------------------------------------------------------- end to end: inbound


@pytest.fixture
def stack(monkeypatch, dynamodb_local, directory_table, decisions_table):
    yield from inbound_stack(monkeypatch, dynamodb_local, directory_table, decisions_table)


def run_inbound(stack: InboundStack, event: dict[str, Any], raw: bytes) -> dict[str, str]:
    stack.store(event["Records"][0]["ses"]["mail"]["messageId"], raw)
    return stack.invoke(event)


def test_spoofed_csp_customer_mail_with_forged_headers_reaches_no_partner_and_no_desk(stack):
    event = inbound("cfo@tailspintoys.com", "sales@vendor.example", verdict="unauthenticated", envelope="x@attacker.example", spf="PASS",
                    headers={"X-Communication-Category": "operational"})  # fmt: skip
    response = run_inbound(stack, event, b"From: cfo@tailspintoys.com\r\nSubject: hi\r\n\r\nbody\r\n")
    assert response["disposition"] != "CONTINUE"
    assert stack.sent() == []


def top_level_headers(raw: bytes) -> list[tuple[str, str]]:
    return list(message_from_bytes(raw, policy=email_policy.default).items())


def assert_no_injection(raw: bytes, allowed_recipients: set[str], planted: str) -> None:
    """What the filter wrote at the top level: one line per header, no planted address as a recipient."""
    parsed = message_from_bytes(raw, policy=email_policy.default)
    for name, value in parsed.items():
        assert "\r" not in str(value), name
        assert "\n" not in str(value), name
    for name in ("To", "Cc", "Bcc", "From", "Sender", "Reply-To"):
        assert parsed.get_all(name, []) == [] or planted not in " ".join(str(v) for v in parsed.get_all(name)), name
    for name in ("To", "Cc", "Bcc"):
        found = {a.lower() for _, a in getaddresses([str(v) for v in parsed.get_all(name, [])])}
        assert found <= allowed_recipients, name


HOSTILE_SUBJECTS = [
    "=?utf-8?q?Invoice=0D=0ABcc:_evil@evil.example?=",
    "=?utf-8?b?" + base64.b64encode(b"Invoice\r\nBcc: evil@evil.example\r\nX-Evil: 1").decode() + "?=",
    "=?utf-8?q?=3D=3Futf-8=3Fq=3FInvoice=3D0D=3D0ABcc:_evil@evil.example=3F=3D?=",  # encoded twice
    "Invoice\u2028Bcc: evil@evil.example",
    "Invoice\x85Bcc: evil@evil.example",
]


@pytest.mark.parametrize("subject", HOSTILE_SUBJECTS)
def test_an_inbound_forward_to_the_partner_cannot_be_made_to_inject_headers_or_recipients(stack, subject):
    event = inbound("cfo@tailspintoys.com")
    event["Records"][0]["ses"]["mail"]["commonHeaders"]["subject"] = subject
    raw = (
        f"From: =?utf-8?q?Eve=0D=0ABcc:_evil@evil.example?= <cfo@tailspintoys.com>\r\nTo: billing@vendor.example\r\n"
        f"Subject: {subject}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nbody\r\n"
    ).encode()
    response = run_inbound(stack, event, raw)
    assert response["disposition"] != "CONTINUE"
    ((envelope, _, sent_raw),) = stack.sent()
    assert envelope == [FABRIKAM]
    assert_no_injection(sent_raw, {FABRIKAM}, "evil@evil.example")


# ---------------------------------------------------------------- end to end: outbound


@pytest.fixture
def gateway(outbound: Harness) -> Any:
    return load_function("outbound_gateway")


def send(gateway: Any, *requests: dict[str, Any]) -> dict[str, Any]:
    return gateway.lambda_handler(sqs_event(*requests), LambdaContext())


def request(**fields: Any) -> dict[str, Any]:
    return {"message_id": f"spoof-{uuid.uuid4().hex[:12]}", "from": "billing@vendor.example", "to": ["it@tailspintoys.com"],
            "subject": "Your invoice", "text": "Hello.\n", "category": "subscription", "product": "azure", **fields}  # fmt: skip


@pytest.mark.parametrize(
    "sender",
    ["ceo@contoso.com", "billing@vendor.example.attacker.example", "billing@evilvendor.example", "billing@vendor-example.com",
     "billing@vеndor.example", "billing@xn--vndor-9ve.example", '"billing@vendor.example" <x@attacker.example>',
     "billing@vendor.example\r\nBcc: evil@evil.example", "billing@vendor.example, evil@evil.example"],
)  # fmt: skip
def test_a_send_request_whose_from_is_not_a_vendor_identity_is_refused(outbound, gateway, sender):
    body = request(**{"from": sender})
    assert send(gateway, body) == {"batchItemFailures": []}
    assert outbound.sent() == []
    assert [r["kind"] for r in outbound.records(body["message_id"])] == ["rejected"]


def test_a_raw_message_whose_from_header_is_not_a_vendor_identity_is_refused(outbound, gateway):
    raw = b"From: CEO <ceo@contoso.com>\r\nTo: it@woodgrovebank.com\r\nSubject: Wire transfer\r\n\r\nPlease pay.\r\n"
    body = request(to=["it@woodgrovebank.com"], raw=base64.b64encode(raw).decode(), text=None)
    del body["text"]
    send(gateway, body)
    assert outbound.sent() == []
    assert [r["kind"] for r in outbound.records(body["message_id"])] == ["rejected"]


@pytest.mark.parametrize(
    "subject", [s for s in HOSTILE_SUBJECTS if "\u2028" not in s and "\x85" not in s] + ["Invoice\u2028Bcc: evil@evil.example"]
)
def test_a_partner_notice_and_an_allowed_copy_cannot_be_made_to_inject_headers_or_recipients(outbound, gateway, subject):
    body = request(to=["it@tailspintoys.com", "cto@woodgrovebank.com"], subject=subject,
                   headers={"X-Campaign": "=?utf-8?q?a=0D=0ABcc:_evil@evil.example?="})  # fmt: skip
    assert send(gateway, body) == {"batchItemFailures": []}
    sent = outbound.sent()
    assert {tuple(s.envelope) for s in sent} == {("cto@woodgrovebank.com",), (FABRIKAM,)}
    for message in sent:
        assert_no_injection(message.message.as_bytes(), {*message.envelope}, "evil@evil.example")


def test_header_safe_leaves_one_line_of_the_same_words():
    assert header_safe("=?utf-8?q?Caf=C3=A9_=0D=0Aopen?=") == "Café open"
    assert header_safe("  Plain\tsubject  ") == "Plain subject"
    assert json.dumps(header_safe("a\r\nb")) == '"a b"'


# ---------------------------------------------------------------- inbound: a From that does not read as one address


@pytest.mark.parametrize(
    "from_value",
    [
        "cfo@tailspintoys.com <attacker@evil.example>",
        "x <cfo@tailspintoys.com>@evil.example",
        "cfo@tailspintoys.com, attacker@evil.example",
        "Customers: cfo@tailspintoys.com;",
        "<cfo@tailspintoys.com",
        "Eve <cfo@tailspintoys.com> <attacker@evil.example>",
    ],
)
def test_a_from_that_is_not_one_clean_address_is_blocked_and_never_relayed(from_value):
    event = inbound("cfo@tailspintoys.com")
    mail = event["Records"][0]["ses"]["mail"]
    mail["commonHeaders"]["from"] = [from_value]
    mail["headers"] = [h for h in mail["headers"] if h["name"].lower() != "from"] + [{"name": "From", "value": from_value}]
    message, result = decide(event)
    assert message.unreadable
    for decision in result.decisions:
        assert (decision.action, decision.rule, decision.deliver_to) == (Action.BLOCK, "unreadable-sender", ())


def test_two_from_headers_are_blocked_and_never_relayed():
    event = inbound("cfo@tailspintoys.com")
    event["Records"][0]["ses"]["mail"]["headers"].append({"name": "From", "value": "ceo@contoso.com"})
    _message, result = decide(event)
    assert [d.rule for d in result.decisions] == ["unreadable-sender"]


def test_a_confusable_full_stop_in_a_sender_domain_is_the_same_customer():
    (decision,) = decide(inbound("cfo@tailspintoys.com\u3002"))[1].decisions
    assert (decision.customer, decision.action) == ("7d1e9b20-tailspin", Action.REROUTE)
