"""The evasion corpus (mailfilter_testkit.evasion_corpus) through the real handlers: nothing gets past the rules.

One world per module: DynamoDB Local holds the sample directory, the decisions and the
idempotency tables; moto holds S3 and SES. Each attempt goes through the outbound gateway's,
the inbound filter's or the audit's `lambda_handler`, and is judged on what SES actually
sent (the envelope of each SendEmail call and the bytes moto received), what was recorded
in the decisions table and what was kept in quarantine. Besides the attempt's own
expectations, every message SES sent is checked for what no attempt may achieve:

- a header line split, or a header value that decodes to more than one line;
- a hidden-recipient header (Bcc, Resent-Bcc, Delivered-To, ...) in an outbound copy or notice;
- an address in To/Cc/Resent-To/Resent-Cc that the message's reader may not see, and any
  recipient of the request that this reader may not see appearing anywhere in the message;
- a planted address in an envelope or an address header.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from email import message_from_bytes
from email import policy as email_policy
from email.message import EmailMessage
from email.utils import getaddresses
from typing import Any

import pytest
from moto import mock_aws
from moto.backends import get_backend

from mailfilter.aws import clients
from mailfilter.aws.quarantine import Quarantine
from mailfilter.vocabulary.addresses import normalise_address
from mailfilter.vocabulary.errors import InvalidAddressError
from mailfilter_cli.sam_template import function_spec
from mailfilter_testkit.aws_resources import create_tables_from_template, delete_tables
from mailfilter_testkit.evasion_corpus import CORPUS, Attempt, Send
from mailfilter_testkit.inbound_stack import InboundStack, load_handler
from mailfilter_testkit.inbound_stack import LambdaContext as InboundContext
from mailfilter_testkit.outbound_support import (
    ACCOUNT,
    BUCKET,
    FILTER_FROM,
    REGION,
    Harness,
    LambdaContext,
    import_directory,
    load_function,
    sqs_event,
)
from mailfilter_testkit.sample_events import VERDICTS, receipt_event

FILTER_CALLER_IDENTITIES = function_spec("OutboundAuditFunction").environment["FILTER_CALLER_IDENTITIES"]
NARROWED = ("To", "Cc", "Resent-To", "Resent-Cc")
HIDDEN = ("Bcc", "Resent-Bcc", "Delivered-To", "X-Original-To", "Apparently-To", "Envelope-To", "X-Envelope-To")
ADDRESS_HEADERS = ("From", "Sender", "Reply-To", "To", "Cc", "Bcc", "Resent-To", "Resent-Cc", "Resent-Bcc")
FIELD_LINE = re.compile(rb"^[!-9;-~]+:")


def test_the_corpus_holds_at_least_70_distinct_attempts_each_naming_the_rule_it_attacks() -> None:
    assert len(CORPUS) >= 70
    assert len({a.id for a in CORPUS}) == len(CORPUS)
    assert all(a.attacks and a.description for a in CORPUS)
    assert {a.kind for a in CORPUS} == {"outbound", "inbound", "audit"}


# ---------------------------------------------------------------------------------------- the world


@dataclass(frozen=True)
class Sent:
    """One message SES accepted: the envelope of the SendEmail call and the bytes moto received."""

    sender: str
    envelope: frozenset[str]
    raw: bytes

    @property
    def message(self) -> EmailMessage:
        return message_from_bytes(self.raw, policy=email_policy.default)


@dataclass
class World:
    harness: Harness
    gateway: Any
    inbound: InboundStack
    audit: Any

    def sent_count(self) -> int:
        return len(self.harness.calls)

    def sent_since(self, start: int) -> list[Sent]:
        messages = get_backend("ses")[ACCOUNT][REGION].sent_messages
        assert len(messages) == len(self.harness.calls), "every SES call is captured"
        return [
            Sent(call["FromEmailAddress"], frozenset(call["Destination"]["ToAddresses"]), message.raw_data.encode())
            for call, message in zip(self.harness.calls[start:], messages[start:], strict=True)
        ]


@pytest.fixture(scope="module")
def world(dynamodb_local: str) -> Iterator[World]:
    """One set of tables and one moto for the whole corpus; attempts are told apart by their message ids."""
    patch = pytest.MonkeyPatch()
    names = create_tables_from_template(["DirectoryTable", "DecisionsTable", "IdempotencyTable"])
    import_directory(names["DirectoryTable"])
    passthrough = {"core": {"passthrough": {"urls": [re.escape(dynamodb_local) + ".*"], "services": []}}}
    try:
        with mock_aws(config=passthrough):
            clients.reset()
            clients.client("s3").create_bucket(Bucket=BUCKET)
            clients.client("sesv2").create_email_identity(EmailIdentity="vendor.example")
            harness = Harness(names)
            environment = {
                **harness.environment(),
                "FILTER_CALLER_IDENTITIES": FILTER_CALLER_IDENTITIES,
                "AWS_LAMBDA_FUNCTION_NAME": "csp-mail-filter-InboundFilterFunction",
            }
            for name, value in environment.items():
                patch.setenv(name, value)
            yield World(
                harness,
                gateway=load_function("outbound_gateway"),
                inbound=InboundStack(load_handler(), names["DecisionsTable"]),
                audit=load_function("outbound_audit"),
            )
    finally:
        patch.undo()
        clients.reset()
        delete_tables(names.values())


# ---------------------------------------------------------------------------------------- reading what was sent


def readable(raw: bytes) -> str:
    """Everything a reader could see in a message, lower case: the bytes, every header decoded, every part decoded."""
    texts = [raw.decode("utf-8", "replace")]
    for part in message_from_bytes(raw, policy=email_policy.default).walk():
        for name, value in part.items():
            texts.append(f"{name}: {value}")
        if not part.is_multipart():
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                texts.append(payload.decode("utf-8", "replace"))
    return "\n".join(texts).lower()


def addresses(message: EmailMessage, names: tuple[str, ...]) -> set[str]:
    found = set()
    for _, address in getaddresses([str(v) for name in names for v in message.get_all(name, [])]):
        if address:
            try:
                found.add(normalise_address(address))
            except InvalidAddressError:
                found.add(address.lower())
    return found


def attached_originals(message: EmailMessage) -> list[EmailMessage]:
    return [part.get_payload(0) for part in message.walk() if part.get_content_type() == "message/rfc822"]


def assert_header_block_intact(sent: Sent) -> None:
    """Every physical header line is a field or a fold; no header, nor one of an attached original, decodes to two lines."""
    head = sent.raw.replace(b"\r\n", b"\n").split(b"\n\n", 1)[0]
    for line in head.split(b"\n"):
        assert b"\r" not in line, f"a lone CR in a header line: {line[:120]!r}"
        assert line[:1] in (b" ", b"\t") or FIELD_LINE.match(line), f"not a header line: {line[:120]!r}"
    for message in (sent.message, *attached_originals(sent.message)):
        for name, value in message.items():
            text = str(value)
            assert not any(ch in text for ch in "\r\n\x00\u2028\u2029\x85"), f"{name} decodes to more than one line: {text[:160]!r}"


def assert_planted_nowhere(sent: Sent, planted: str | None) -> None:
    if planted is None:
        return
    assert planted not in sent.envelope
    for message in (sent.message, *attached_originals(sent.message)):
        for name in ADDRESS_HEADERS:
            for value in message.get_all(name, []):
                assert planted not in str(value).lower(), f"{planted} in {name}: {value}"


def match_sends(expected: tuple[Send, ...], sent: list[Sent]) -> None:
    """The envelopes are exactly the expected ones; each expected message shows and hides what it says."""
    assert Counter(s.envelope for s in sent) == Counter(e.to for e in expected), [sorted(s.envelope) for s in sent]
    unused = list(sent)
    for want in expected:
        candidates = [s for s in unused if s.envelope == want.to and all(x.lower() in readable(s.raw) for x in want.shows)]
        assert candidates, f"no message to {sorted(want.to)} shows {want.shows}"
        chosen = candidates[0]
        unused.remove(chosen)
        text = readable(chosen.raw)
        for hidden in want.hides:
            assert hidden.lower() not in text, f"the message to {sorted(want.to)} shows {hidden}"


# ---------------------------------------------------------------------------------------- running one attempt


def run_outbound(world: World, attempt: Attempt) -> str:
    message_id = f"ev-{attempt.id}"
    if attempt.body is not None:
        body = attempt.body.replace("MESSAGE_ID", message_id)
    else:
        data = {**(attempt.request or {}), "message_id": message_id}
        if isinstance(data.get("raw"), bytes):
            data["raw"] = base64.b64encode(data["raw"]).decode()
        body = json.dumps(data)
    event = sqs_event({})
    event["Records"][0]["body"] = body
    result = world.gateway.lambda_handler(event, LambdaContext())
    assert result == {"batchItemFailures": []}, "a request is decided or refused, never failed into SQS retries"
    return message_id


def check_outbound(world: World, attempt: Attempt, message_id: str, sent: list[Sent]) -> None:
    records = world.harness.records(message_id)
    if attempt.rejected:
        assert records, "a refused request is recorded"
        assert {r["kind"] for r in records} == {"rejected"}, [(r["kind"], r.get("rule")) for r in records]
        assert sent == []
        return
    decisions = {r["recipient"]: r for r in records if r["kind"] == "decision"}
    assert decisions, [(r["kind"], r.get("error")) for r in records]
    for recipient, rule in attempt.rules.items():
        assert decisions[recipient]["rule"] == rule, (recipient, decisions[recipient]["rule"], decisions[recipient]["reason"])
    held = {r for item in Quarantine(BUCKET).list() if item.message_id == message_id for r in item.recipients}
    assert held == set(attempt.quarantined)
    for message in sent:
        check_outbound_copy(message, decisions)


def check_outbound_copy(sent: Sent, decisions: dict[str, dict[str, Any]]) -> None:
    """An allowed copy names only allowed recipients; a notice's attachment only its customer's; no one else appears."""
    message = sent.message
    if sent.sender == FILTER_FROM:  # a partner notice: one customer's recipients, the original attached
        customer = str(message["X-CSP-Mail-Filter-Customer"] or "")
        visible = {
            r
            for r, d in decisions.items()
            if d["effective"] == "reroute" and d.get("customer", "") == customer and set(d["deliver_to"]) == sent.envelope
        }
        assert visible, "a notice is sent for rerouted recipients"
        assert addresses(message, ("To",)) == set(sent.envelope)
        (original,) = attached_originals(message)
        assert addresses(original, NARROWED) <= visible, addresses(original, NARROWED) - visible
        inner = [original]
    else:  # the allowed copy
        visible = {r for r, d in decisions.items() if d["effective"] == "allow"}
        assert set(sent.envelope) == visible
        assert addresses(message, NARROWED) <= visible, addresses(message, NARROWED) - visible
        inner = []
    for part in (message, *inner):
        for name in HIDDEN:
            assert part.get_all(name) is None, f"{name} survived: {part.get_all(name)}"
    text = readable(sent.raw)
    for other in set(decisions) - visible:
        assert other.lower() not in text, f"the message to {sorted(sent.envelope)} shows {other}"


def run_inbound(world: World, attempt: Attempt) -> tuple[str, dict[str, str]]:
    mail = attempt.inbound
    assert mail is not None
    ses_id = f"ev{uuid.uuid4().hex[:20]}"
    event = receipt_event(ses_id, "cfo@tailspintoys.com", list(mail.desks), "", {**VERDICTS[mail.verdict], **mail.overrides})
    record = event["Records"][0]["ses"]["mail"]
    record["source"] = mail.source
    record["headers"] = [{"name": n, "value": v} for n, v in mail.headers]
    common = record["commonHeaders"]
    common["from"] = [v for n, v in mail.headers if n.lower() == "from"]
    subjects = [v for n, v in mail.headers if n.lower() == "subject"]
    common["subject"] = subjects[0] if subjects else ""
    raw = mail.raw or ("\r\n".join(f"{n}: {v}" for n, v in mail.headers) + "\r\n\r\n" + mail.body).encode()
    world.inbound.store(ses_id, raw)
    return ses_id, world.inbound.handler.lambda_handler(event, InboundContext())


def check_inbound(world: World, attempt: Attempt, ses_id: str, response: dict[str, str], sent: list[Sent]) -> None:
    assert response == {"disposition": attempt.disposition}
    decisions = {r["recipient"]: r for r in world.inbound.recorded(ses_id) if r["kind"] == "decision"}
    assert {desk: d["rule"] for desk, d in decisions.items()} == dict(attempt.rules)
    items = [i for i in world.inbound.quarantined() if i["message_id"].startswith(f"{ses_id}#")]
    assert {desk for item in items for desk in item["recipients"]} == set(attempt.quarantined)
    for item in items:  # the message itself is kept beside the item
        raw = item["request"]["raw"]
        world.inbound.s3.head_object(Bucket=raw["bucket"], Key=raw["key"])
    for message in sent:
        assert message.sender == FILTER_FROM
        assert addresses(message.message, ("To", "Cc", "Bcc")) <= set(message.envelope)
        assert message.message.get_all("Bcc") is None


def run_audit(world: World, attempt: Attempt) -> tuple[str, dict[str, Any]]:
    event = copy.deepcopy(attempt.sent_event)
    assert event is not None
    message_id = f"ev-{attempt.id}"
    event["detail"]["mail"]["messageId"] = message_id
    return message_id, world.audit.lambda_handler(event, LambdaContext(function_name="outbound-audit"))


def check_audit(world: World, attempt: Attempt, message_id: str, result: dict[str, Any], sent: list[Sent]) -> None:
    assert sent == []
    assert (result["status"], result["violations"]) == ("audited", len(attempt.rules))
    violations = {r["recipient"]: r["rule"] for r in world.harness.records(message_id) if r["kind"] == "violation"}
    assert violations == dict(attempt.rules)


# ---------------------------------------------------------------------------------------- the test


def _param(attempt: Attempt) -> Any:
    marks = [pytest.mark.xfail(strict=True, reason=attempt.evades)] if attempt.evades else []
    return pytest.param(attempt, id=attempt.id, marks=marks)


@pytest.mark.parametrize("attempt", [_param(a) for a in CORPUS])
def test_no_attempt_evades_the_rules(world: World, attempt: Attempt) -> None:
    start = world.sent_count()
    if attempt.kind == "outbound":
        message_id = run_outbound(world, attempt)
        sent = world.sent_since(start)
        check_outbound(world, attempt, message_id, sent)
    elif attempt.kind == "inbound":
        ses_id, response = run_inbound(world, attempt)
        sent = world.sent_since(start)
        check_inbound(world, attempt, ses_id, response, sent)
    else:
        message_id, result = run_audit(world, attempt)
        sent = world.sent_since(start)
        check_audit(world, attempt, message_id, result, sent)
    match_sends(attempt.sends, sent)
    for message in sent:
        assert_header_block_intact(message)
        assert_planted_nowhere(message, attempt.planted)
