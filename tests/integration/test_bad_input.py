"""Bad input: every malformed or hostile input gets a specific error or a safe decision with a record.

The committed corpus (tests/integration/bad_input/corpus.json, written by its make_corpus.py)
goes through the real handlers on DynamoDB Local and moto; property tests (hypothesis) grow it
over the event shapes, the MIME forwarder and the header writer; inputs of 40 MB and more are
generated here. For each: no unhandled exception, a record (decision, rejected or deferred),
no header injected into anything the filter sends (what moto's SES received is parsed), and
the function still serves the next, ordinary event.
"""

from __future__ import annotations

import base64
import copy
import json
import re
from email import message_from_bytes
from email import policy as email_policy
from email.message import EmailMessage
from email.utils import getaddresses
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailfilter.delivery.copies import allowed_copy
from mailfilter.delivery.forward import ForwardNotice, forward_message
from mailfilter.delivery.original import header_safe
from mailfilter.directory.load import DirectoryFileError
from mailfilter.directory.memory import InMemoryDirectory
from mailfilter.engine import evaluate
from mailfilter.events.send_request import decode_json, parse_send_request
from mailfilter.events.ses_receipt import parse_receipt_event, receipt_message
from mailfilter.outbound.rejection import given_id
from mailfilter.outbound.request import RefusedRequest, read_send_request
from mailfilter.policy.config import load_policy
from mailfilter.vocabulary.errors import EventError, ForwardError
from mailfilter.vocabulary.ses import SES_MAX_MESSAGE_BYTES
from mailfilter_cli.directory_file import validate_file
from mailfilter_testkit.inbound_stack import InboundStack, inbound_stack, sample
from mailfilter_testkit.outbound_support import ACCOUNT, REGION, Harness, LambdaContext, load_function, sqs_event
from mailfilter_testkit.paths import ROOT

CORPUS = json.loads((Path(__file__).resolve().parent / "bad_input" / "corpus.json").read_text(encoding="utf-8"))
DIRECTORY_FILE = ROOT / "events" / "directory.jsonl"
DIRECTORY = InMemoryDirectory.from_file(DIRECTORY_FILE)
POLICY = load_policy(None)
FABRIKAM = "csp-desk@fabrikam.example"
HEADER_NAME = re.compile(r"^[!-9;-~]+$")  # RFC 5322 field names: printable ASCII but the colon
PLANTED = "evil@evil.example"


def test_the_corpus_holds_at_least_200_inputs_of_every_kind():
    assert sum(len(entries) for entries in CORPUS.values()) >= 200
    assert all(len(entries) >= 25 for entries in CORPUS.values())


def assert_one_line_headers(raw: bytes, envelope: set[str]) -> None:
    """No injected header: names are field names, values one line, recipients in headers only those of the envelope."""
    parsed = message_from_bytes(raw, policy=email_policy.default)
    for name, value in parsed.items():
        assert HEADER_NAME.match(name), name
        text = str(value)
        assert not any(ch in text for ch in "\r\n\x00"), (name, text[:200])
    for name in ("To", "Cc", "Bcc"):
        found = {a.lower() for _, a in getaddresses([str(v) for v in parsed.get_all(name, [])]) if a}
        assert found <= envelope, (name, found)
    assert parsed.get_all("Bcc", []) == []


# ---------------------------------------------------------------- outbound gateway


@pytest.fixture
def gateway(outbound: Harness) -> Any:
    return load_function("outbound_gateway")


def expected_id(body: str, fallback: str) -> str:
    try:
        data = decode_json(body)
    except (ValueError, RecursionError):  # as the gateway reads it: not JSON, too deep, a number too long, a key twice
        try:
            return given_id(json.loads(body), fallback)
        except (ValueError, RecursionError):
            return fallback
    try:
        return parse_send_request(data).effective_message_id
    except (EventError, RecursionError):
        return given_id(data, fallback)


def test_every_hostile_send_request_gets_a_record_and_sends_nothing_injected(outbound, gateway):
    entries = CORPUS["send_requests"]
    ids = [f"corpus-{i:04d}" for i in range(len(entries))]
    for start in range(0, len(entries), 10):
        event = sqs_event(*([{}] * len(entries[start : start + 10])), ids=ids[start : start + 10])
        for record, entry in zip(event["Records"], entries[start : start + 10], strict=True):
            record["body"] = entry["body"]
        assert gateway.lambda_handler(event, LambdaContext()) == {"batchItemFailures": []}
    unrecorded = []
    for entry, fallback in zip(entries, ids, strict=True):
        kinds = {r["kind"] for r in outbound.records(expected_id(entry["body"], fallback))}
        if not kinds & {"rejected", "decision"}:
            unrecorded.append(entry["name"])
    assert unrecorded == []
    for sent in outbound.sent():
        assert_one_line_headers(sent.message.as_bytes(policy=email_policy.SMTP), {a.lower() for a in sent.envelope})
        assert PLANTED not in sent.envelope
    # and it keeps serving
    before = len(outbound.sent())
    ordinary = {"message_id": "after-the-corpus", "from": "status@vendor.example", "to": ["it@tailspintoys.com"], "text": "Outage.\n"}
    assert gateway.lambda_handler(sqs_event(ordinary), LambdaContext()) == {"batchItemFailures": []}
    assert len(outbound.sent()) == before + 1


def test_a_send_request_over_the_ses_40_mb_limit_is_rejected_with_a_record(outbound, gateway):
    body = {
        "message_id": "too-big",
        "from": "billing@vendor.example",
        "to": ["it@woodgrovebank.com"],
        "text": "x" * (SES_MAX_MESSAGE_BYTES + 1),
    }
    assert gateway.lambda_handler(sqs_event(body), LambdaContext()) == {"batchItemFailures": []}
    assert [r["kind"] for r in outbound.records("too-big")] == ["rejected"]
    assert outbound.sent() == []


# ---------------------------------------------------------------- inbound filter


@pytest.fixture
def stack(monkeypatch, dynamodb_local, directory_table, decisions_table):
    yield from inbound_stack(monkeypatch, dynamodb_local, directory_table, decisions_table)


def ses_sent(stack: InboundStack) -> list[tuple[set[str], bytes]]:
    from moto.ses.models import ses_backends  # noqa: PLC0415

    return [
        ({a.lower() for _, a in getaddresses(m.destinations)}, m.raw_data.encode()) for m in ses_backends[ACCOUNT][REGION].sent_messages
    ]


def message_id_of(event: Any) -> str | None:
    try:
        value = event["Records"][0]["ses"]["mail"]["messageId"]
    except (KeyError, IndexError, TypeError):
        return None
    return value if isinstance(value, str) and value and "/" not in value and len(value) <= 200 else None


def test_every_hostile_receipt_event_gets_a_disposition_and_a_record_or_a_clear_error(stack):
    problems = []
    for i, entry in enumerate(CORPUS["receipt_events"]):
        event = copy.deepcopy(entry["event"])
        if message_id_of(event) == "badinput0000000000000000000000000000":
            event["Records"][0]["ses"]["mail"]["messageId"] = f"badinput{i:04d}"  # each its own message
        message_id = message_id_of(event)
        if message_id:
            stack.store(message_id, b"From: cfo@tailspintoys.com\r\nSubject: Invoice\r\n\r\nHello.\r\n")
        try:
            response = stack.invoke(event)
        except EventError as error:  # not an SES receipt event at all: nothing to record, and it says so
            if message_id is not None or "SES receipt event" not in str(error):
                problems.append(f"{entry['name']}: {error}")
            continue
        except Exception as error:
            problems.append(f"{entry['name']}: unhandled {type(error).__name__}: {error}")
            continue
        if response.get("disposition") not in ("CONTINUE", "STOP_RULE", "STOP_RULE_SET"):
            problems.append(f"{entry['name']}: {response}")
        if message_id and not stack.recorded(message_id):
            problems.append(f"{entry['name']}: no record")
    assert problems == [], "\n".join(problems)
    for envelope, raw in ses_sent(stack):
        assert envelope == {FABRIKAM}
        assert_one_line_headers(raw, envelope)
    ordinary, raw = sample("csp-customer-to-support")
    stack.store(ordinary["Records"][0]["ses"]["mail"]["messageId"], raw)
    assert stack.invoke(ordinary) == {"disposition": "CONTINUE"}


def authenticated_event(message_id: str) -> dict[str, Any]:
    event, _ = sample("csp-customer-to-billing")  # Tailspin, authenticated, to billing: rerouted to Fabrikam
    event = copy.deepcopy(event)
    event["Records"][0]["ses"]["mail"]["messageId"] = message_id
    return event


def test_every_hostile_raw_message_is_forwarded_without_injection_or_kept(stack):
    problems = []
    for i, entry in enumerate(CORPUS["raw_messages"]):
        message_id = f"badraw{i:04d}"
        stack.store(message_id, base64.b64decode(entry["raw"]))
        before = len(ses_sent(stack))
        try:
            response = stack.invoke(authenticated_event(message_id))
        except Exception as error:
            problems.append(f"{entry['name']}: unhandled {type(error).__name__}: {error}")
            continue
        kinds = {r["kind"] for r in stack.recorded(message_id)}
        forwarded = len(ses_sent(stack)) - before
        kept = any(item["message_id"].startswith(message_id) for item in stack.quarantined())
        if response.get("disposition") == "CONTINUE" or "decision" not in kinds or not (forwarded == 1 or kept or "deferred" in kinds):
            problems.append(f"{entry['name']}: {response}, records {kinds}, forwarded {forwarded}, kept {kept}")
    assert problems == [], "\n".join(problems)
    for envelope, raw in ses_sent(stack):
        assert envelope == {FABRIKAM}
        assert_one_line_headers(raw, envelope)


@pytest.mark.parametrize("size", [SES_MAX_MESSAGE_BYTES - 1024, SES_MAX_MESSAGE_BYTES + 1024], ids=["just-under-40-mb", "over-40-mb"])
def test_a_message_around_the_ses_40_mb_limit_is_forwarded_within_the_limit_or_kept(stack, size):
    head = b"From: cfo@tailspintoys.com\r\nSubject: Big\r\nContent-Type: text/plain\r\n\r\n"
    stack.store("big0001", head + b"x" * (size - len(head)))
    response = stack.invoke(authenticated_event("big0001"))
    assert response["disposition"] != "CONTINUE"
    sent = ses_sent(stack)
    if sent:
        ((envelope, raw),) = sent
        assert envelope == {FABRIKAM}
        assert len(raw) <= SES_MAX_MESSAGE_BYTES
    else:
        (item,) = stack.quarantined()
        assert item["recipients"] == ["billing@vendor.example"]


# ---------------------------------------------------------------- directory rows


# Lines the validator reads as something safe rather than refusing, and what it makes of them.
NORMALISED = {"domain-crlf": "surrounding whitespace is trimmed", "direct-not-bool": "'yes' reads as true"}


@pytest.mark.parametrize("entry", CORPUS["directory_lines"], ids=[e["name"] for e in CORPUS["directory_lines"]])
def test_every_bad_directory_line_is_refused_with_its_line(tmp_path, entry):
    good = DIRECTORY_FILE.read_text(encoding="utf-8")
    path = tmp_path / "directory.jsonl"
    path.write_text(good + entry["line"] + "\n", encoding="utf-8")
    bad_line = good.count("\n") + 1
    if entry["name"] in NORMALISED:
        validate_file(path)
        return
    with pytest.raises(DirectoryFileError) as refused:
        validate_file(path)
    assert bad_line in {issue.line for issue in refused.value.issues}, [str(i) for i in refused.value.issues]


def test_a_directory_file_that_is_not_utf8_is_refused(tmp_path):
    path = tmp_path / "directory.jsonl"
    path.write_bytes(DIRECTORY_FILE.read_bytes() + b'{"kind": "partner", "name": "\xff"}\n')
    with pytest.raises(DirectoryFileError, match="UTF-8"):
        validate_file(path)


# ---------------------------------------------------------------- property-based growth of the corpus

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
ADDRESSISH = st.one_of(
    st.emails().map(str),
    st.text(alphabet=st.sampled_from('ab@.\r\n\x00 <>,;:"=?äх-'), max_size=30),
    st.sampled_from(["it@tailspintoys.com", "cto@woodgrovebank.com", "it@contoso.com", "x@example.org"]),
)
HOSTILE_TEXT = st.one_of(
    st.text(max_size=80),
    st.builds(
        lambda a, b: f"=?utf-8?q?{a}=0D=0A{b}?=", st.text(alphabet="abcBc: @.", max_size=10), st.text(alphabet="abcBc: @.", max_size=20)
    ),
    st.builds(lambda data: "=?utf-8?b?" + base64.b64encode(data).decode() + "?=", st.binary(max_size=40)),
)
FIELDS = st.fixed_dictionaries(
    {"from": st.sampled_from(["billing@vendor.example", "news@vendor.example"]) | ADDRESSISH},
    optional={
        "message_id": st.text(max_size=20) | st.integers(),
        "to": st.lists(ADDRESSISH, max_size=6) | JSON,
        "cc": st.lists(ADDRESSISH, max_size=3),
        "bcc": st.lists(ADDRESSISH, max_size=3),
        "reply_to": st.lists(ADDRESSISH, max_size=2),
        "subject": HOSTILE_TEXT | JSON,
        "text": st.text(max_size=50),
        "html": st.text(max_size=50),
        "category": st.sampled_from(["subscription", "general", "product", "operational", "bogus"]) | JSON,
        "product": st.sampled_from(["azure", "dynamics-365", "bad product"]),
        "cloud": st.sampled_from(["commercial", "usgov", "germany", "mars"]),
        "headers": st.dictionaries(st.text(max_size=12), HOSTILE_TEXT, max_size=3) | JSON,
        "raw": st.binary(max_size=200).map(lambda b: base64.b64encode(b).decode()),
    },
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(FIELDS)
def test_any_send_request_is_refused_with_an_error_or_composed_without_injection(data):
    try:
        reading = read_send_request(data, POLICY)
    except RefusedRequest:
        return
    request, original = reading.request, reading.original
    verdict = evaluate(reading.message, DIRECTORY, POLICY)
    allowed = {d.recipient for d in verdict.decisions if d.action.value == "allow"}
    if allowed:
        assert_one_line_headers(bytes(allowed_copy(original, request, allowed)), allowed | {a.lower() for a in request.recipients})


BASE_EVENT, _ = sample("csp-customer-to-billing")
PATHS = [
    ["ses", "mail", "messageId"], ["ses", "mail", "source"], ["ses", "mail", "commonHeaders", "from"],
    ["ses", "mail", "commonHeaders", "subject"], ["ses", "mail", "headers"], ["ses", "receipt", "recipients"],
    ["ses", "receipt", "spfVerdict"], ["ses", "receipt", "dmarcPolicy"], ["ses", "receipt", "action", "invocationType"],
    ["eventSource"], ["ses", "mail", "commonHeaders"],
]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(PATHS), JSON | ADDRESSISH | st.lists(ADDRESSISH, max_size=3)), min_size=1, max_size=3))
def test_any_receipt_event_is_refused_with_an_error_or_decided(changes):
    event = copy.deepcopy(BASE_EVENT)
    for path, value in changes:
        target = event["Records"][0]
        for key in path[:-1]:
            target = target.setdefault(key, {}) if isinstance(target, dict) else {}
        if isinstance(target, dict):
            target[path[-1]] = value
    try:
        message = receipt_message(parse_receipt_event(event))
    except EventError:
        return
    verdict = evaluate(message, DIRECTORY, POLICY)
    assert len(verdict.decisions) == len(message.recipients)


NOTICE = ForwardNotice(
    filter_from="mail-filter@vendor.example", original_sender="cfo@tailspintoys.com", original_recipients=("billing@vendor.example",),
    partner_contacts=(FABRIKAM,), reason="Subscription mail goes to the partner.", rule="subscription-owned-by-partner",
    ses_message_id="hypothesis", customer_name="Tailspin Toys",
)  # fmt: skip
NAMES = [b"Subject", b"From", b"To", b"Cc", b"Bcc", b"Reply-To", b"X-A", b"Content-Type"]
HEADER_LINES = st.lists(
    st.one_of(
        st.builds(lambda n, v: n + b": " + v, st.sampled_from(NAMES), st.binary(max_size=60)),
        st.builds(lambda v: b"Subject: " + v.encode(), HOSTILE_TEXT),
        st.binary(max_size=40),
    ),
    max_size=8,
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(HEADER_LINES, st.sampled_from([b"\r\n", b"\n", b"\r"]), st.binary(max_size=100))
def test_any_header_block_is_forwarded_as_one_line_headers_to_the_partner_only_or_refused(lines, newline, body):
    raw = newline.join(lines) + newline + newline + body
    try:
        forwarded = forward_message(raw, NOTICE)
    except ForwardError:
        return
    assert_one_line_headers(forwarded, {FABRIKAM})
    parsed = message_from_bytes(forwarded, policy=email_policy.default)
    assert {a.lower() for _, a in getaddresses([str(v) for v in parsed.get_all("To", [])])} == {FABRIKAM}


@settings(max_examples=500, deadline=None)
@given(HOSTILE_TEXT)
def test_any_text_made_header_safe_is_one_header_line_when_written(text):
    safe = header_safe(text)
    message = EmailMessage(policy=email_policy.default)
    message["Subject"] = safe
    message["To"] = FABRIKAM
    message.set_content("x")
    assert_one_line_headers(message.as_bytes(policy=email_policy.SMTP), {FABRIKAM})
