"""Mail leaves as it came: real-world messages through both directions of the real handlers, compared with what SES received.

The corpus is the messages committed in tests/integration/realworld/, written as exact bytes, and the CPython
email test messages (`test.test_email`'s data/msg_*.txt; where the interpreter has no `test`
package that half is skipped with a message and the committed half still runs):

    01 newsletter: Received, ARC-Seal/ARC-Message-Signature/ARC-Authentication-Results and a
       DKIM-Signature with 684-character unbreakable b= values, a folded Subject, List-Unsubscribe
       with a long HTTPS URI and List-Unsubscribe-Post (RFC 8058), multipart/alternative; CRLF
    02 RFC 2047 Subject (UTF-8 B and ISO-8859-1 Q words) and display names, 8-bit UTF-8 body; LF
    03 8-bit ISO-8859-1 text and html parts; CRLF
    04 a header block with no empty line before the body; LF
    05 multipart/alternative inside multipart/mixed with a base64 PDF, folded References; CRLF
    06 malformed multipart: boundary lines with trailing white space and with trailing junk, no
       closing delimiter; LF
    07 a forwarded message/rfc822 attachment with its own DKIM-Signature and parts; CRLF
    08 a 300 KB base64 attachment (5,264 base64 lines, 5,263 of them 76 characters); LF
    09 recipient headers to narrow and hide (To/Cc lists, Bcc, Resent-*, Delivered-To,
       X-Original-To, Envelope-To, X-Envelope-To, Apparently-To); LF
    10 raw UTF-8 header values (RFC 6532); CRLF
    11 a raw ISO-8859-1 byte in the Subject: refused outbound by design, re-encoded inbound; LF
    12 quoted-printable html with soft breaks, folded Content-Type, RFC 2231 filename, text/calendar; CRLF
    13 a delivery status notification (multipart/report, message/delivery-status), Return-Path <>; LF
    14 CRLF header block with a bare-LF body, repeated Keywords, a 1,123-character header line

One world for the module: DynamoDB Local holds the sample directory, the decisions and
idempotency tables; moto holds S3 and SES.

Each message goes, through the real `lambda_handler`s:

- outbound, as a raw send request (no `subject` field: the raw Subject is what is sent) from
  news@vendor.example to a direct customer
  (cto@woodgrovebank.com: Woodgrove has no CSP partner, rule `no-csp-partner` allows anything);
- outbound again, with category `subscription`, to a CSP-only customer (it@tailspintoys.com):
  rerouted to Fabrikam (csp-desk@fabrikam.example) as a notice with the original attached;
- inbound, stored in the mail bucket as the receipt rule's S3 action does, with a receipt event
  from a CSP customer (cfo@tailspintoys.com, DMARC pass) to billing@vendor.example: forwarded
  to Fabrikam.

The one change the test makes to a message before sending it (`with_identity`): the gateway
sends only what vendor identities wrote, and the inbound event names the customer, so the
*values* of From, Sender and Return-Path (outbound) or of From (inbound) are replaced, each as
one line `Name: value` with the field's own line break; a message without From gets one as its
first line. Every other byte stays as committed or as CPython ships it.

What SES received is read from moto's SES backend (`sent_messages[...].raw_data`), and checked
against the bytes the handler gave SES (the SendEmail call's `Content.Raw.Data`). moto decodes
the raw message as UTF-8; SES takes bytes, so for this module moto keeps undecodable bytes as
surrogates (`surrogateescape`) and the test encodes them back: an 8-bit ISO-8859-1 body reaches
SES as it is.

Compared with the message as sent (after `with_identity`), parsed by an independent reader
(`split`, Python's header rules) and by `email.message_from_bytes(policy=compat32)`:

- outbound, allowed copy and the notice's attached original: every header field byte for byte
  and in order, except the documented ones (docs/outbound.md): To, Cc, Resent-To, Resent-Cc
  narrowed to the reader's recipients (a field already showing only them stays as written);
  Bcc, Resent-Bcc, Delivered-To, X-Original-To, Apparently-To, Envelope-To, X-Envelope-To
  removed; an empty line added where the header block had none; an mbox "From " envelope
  line is not a header field and is not sent (mailfilter.delivery.raw). The body: the bytes
  after the header block are identical (for the notice, the attachment read as RFC 2046 says:
  up to the line break before the closing delimiter), and every leaf part decodes identically;
- inbound forward (docs/inbound.md): From, To, Cc, Reply-To, Sender, Message-ID under
  X-Original-*; trace, authentication, bounce-routing, List-Unsubscribe*, Feedback-ID,
  MIME-Version and declaration headers dropped; SES's single-use fields kept once (the first);
  a field with non-ASCII bytes, a line over 998 characters or a foreign line break re-encoded
  as one line of RFC 2047 text (its decoded text must equal the original's); Content-* fields
  open the second part; every other field byte for byte and in order. The second part is the
  content fields, the empty line and the original body byte for byte; every leaf decodes
  identically.

A leaf that decodes differently is accepted only when the original, wrapped as the one part of a
multipart the way RFC 2046 says (`nested`), decodes the same way: Python's parser reads the last
part of a multipart without its closing delimiter with or without its final line break depending
on whether it ends at the end of the input or before an enclosing delimiter; the bytes themselves
are compared by the body tests. Those cases are counted and printed.

A message the gateway refuses by design (header bytes that are not UTF-8, NUL bytes) is asserted
refused, with the recorded reason, and counted. Defects found are `xfail(strict=True)` with the
first differing bytes in the reason (`known_defect`):

- the partner notice's attached original loses its final line break: `partner_notice` writes the
  closing delimiter directly after an original that ends in one, and RFC 2046 gives the line
  break before a delimiter to the delimiter (every original ending in a line break; a leaf decodes
  differently where the last line is decoded text);
- the inbound forward re-encodes an over-long header line that is one unbreakable token, but
  `email.header.Header` cannot break it: the line stays over 998 characters.

The module prints its counts at the end.
"""

from __future__ import annotations

import base64
import importlib.util
import re
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email import policy as email_policy
from email.header import decode_header, make_header
from email.message import Message
from email.utils import getaddresses
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from moto import mock_aws
from moto.backends import get_backend
from moto.sesv2 import responses as moto_sesv2_responses

from mailfilter.aws import clients
from mailfilter.delivery.forward import SES_SINGLE_FIELDS
from mailfilter_testkit.aws_resources import create_tables_from_template, delete_tables
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

HERE = Path(__file__).resolve().parent
COMMITTED = sorted((HERE / "realworld").glob("*.eml"))
VENDOR_FROM = "news@vendor.example"
DIRECT = "cto@woodgrovebank.com"  # Woodgrove Bank: no CSP partner, so every category is allowed
CSP_ONLY = "it@tailspintoys.com"  # Tailspin Toys: CSP-only customer of Fabrikam; subscription mail is rerouted
PARTNER = "csp-desk@fabrikam.example"
CUSTOMER = "cfo@tailspintoys.com"
DESK = "billing@vendor.example"

NARROWED = ("to", "cc", "resent-to", "resent-cc")
HIDDEN = ("bcc", "resent-bcc", "delivered-to", "x-original-to", "apparently-to", "envelope-to", "x-envelope-to")
# docs/inbound.md, "Forwarding to a partner"
RENAMED = ("from", "to", "cc", "reply-to", "sender", "message-id")
DROPPED = (
    "dkim-signature", "domainkey-signature", "arc-seal", "arc-message-signature", "arc-authentication-results",
    "authentication-results", "received-spf", "received", "return-path", "delivered-to", "bcc", "errors-to", "bounces-to",
    "return-receipt-to", "disposition-notification-to", "disposition-notification-options", "list-unsubscribe",
    "list-unsubscribe-post", "feedback-id", "mime-version", "x-communication-category", "x-product", "x-cloud-instance",
)  # fmt: skip
DROPPED_PREFIXES = ("x-original-", "x-mailfilter-", "x-ses-")
MAX_LINE = 998


# ---------------------------------------------------------------------------------------------- the corpus


def cpython_email_data() -> tuple[list[Path], str | None]:
    """CPython's own email test messages, or why there are none."""
    try:
        spec = importlib.util.find_spec("test.test_email")
    except ModuleNotFoundError:
        spec = None
    if spec is None or spec.origin is None:
        return [], "this interpreter has no test.test_email package (CPython's test suite is not installed)"
    found = sorted((Path(spec.origin).parent / "data").glob("msg_*.txt"))
    if not found:
        return [], f"test.test_email has no data/msg_*.txt beside {spec.origin}"
    return found, None


CPYTHON, CPYTHON_MISSING = cpython_email_data()


@dataclass(frozen=True)
class Sample:
    id: str
    path: Path

    @property
    def raw(self) -> bytes:
        return self.path.read_bytes()

    @property
    def origin(self) -> str:
        return self.id.split("/", 1)[0]


SAMPLES = [Sample(f"realworld/{p.stem}", p) for p in COMMITTED] + [Sample(f"cpython/{p.stem}", p) for p in CPYTHON]


def refused_by_design(raw: bytes) -> str | None:
    """Why the gateway refuses this message by design (docs/send-request.md, mailfilter.delivery.original), or None."""
    if b"\x00" in raw:
        return "raw contains NUL bytes"
    fields = split(raw).fields
    try:
        b"".join(fields).decode("utf-8")
    except UnicodeDecodeError:
        return "raw's headers are not text"
    if any(len(line.rstrip(b"\r")) > 998 for field in fields for line in field.split(b"\n")):
        return "has a line longer than 998 characters"
    names = [field.split(b":", 1)[0].decode().strip().lower() for field in fields]
    if any(names.count(name) > 1 for name in set(names) & SES_SINGLE_FIELDS - {"bcc"}):
        return "repeats headers that SES accepts only once"
    return None


OUTBOUND_IDENTITY_FIELDS = ("from", "sender", "return-path")


def known_defect(check: str, sample: Sample) -> str | None:
    """The defect this check shows for this sample (docs list no such change), or None. Each case is xfail(strict=True)."""
    return KNOWN_DEFECTS.get((check, sample.id))


KNOWN_DEFECTS: dict[tuple[str, str], str] = {}


def params(check: str, *, outbound: bool = False) -> list[Any]:
    """One param per sample for `check`; refused-by-design samples only where the check is the refusal itself."""
    chosen = []
    for sample in SAMPLES:
        if outbound and refused_by_design(sample.raw) and check != "outbound-headers":
            continue
        defect = known_defect(check, sample)
        marks = [pytest.mark.xfail(strict=True, reason=defect)] if defect else []
        chosen.append(pytest.param(sample, id=sample.id, marks=marks))
    if CPYTHON_MISSING:
        chosen.append(pytest.param(None, id="cpython", marks=pytest.mark.skip(reason=f"CPython's email test messages: {CPYTHON_MISSING}")))
    return chosen


# ---------------------------------------------------------------------------------------------- reading bytes

_FIELD = re.compile(rb"[\x21-\x39\x3b-\x7e]+:")


@dataclass(frozen=True)
class Split:
    envelope: bytes  # an mbox "From " line, not part of the message
    fields: list[bytes]  # each header field as written, with its line breaks
    separator: bytes  # the empty line, or b"" when the body follows the header block directly
    body: bytes

    def named(self, *names: str) -> list[bytes]:
        return [f for f in self.fields if key(f) in names]


def split(raw: bytes) -> Split:
    """Python's header rules, written independently of mailfilter.delivery.raw."""
    position, envelope, fields = 0, b"", []
    if raw.startswith(b"From "):
        position = line_end(raw, 0)
        envelope = raw[:position]
    while position < len(raw):
        end = line_end(raw, position)
        line = raw[position:end]
        if line.rstrip(b"\r\n") == b"":
            return Split(envelope, fields, line, raw[end:])
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += line
        elif _FIELD.match(line):
            fields.append(line)
        else:
            return Split(envelope, fields, b"", raw[position:])
        position = end
    return Split(envelope, fields, b"", b"")


def line_end(raw: bytes, start: int) -> int:
    end = raw.find(b"\n", start)
    return len(raw) if end == -1 else end + 1


def key(field_bytes: bytes) -> str:
    return field_bytes.split(b":", 1)[0].decode("ascii").lower()


def newline_of(raw: bytes) -> bytes:
    first = raw.find(b"\n")
    return b"\r\n" if first > 0 and raw[first - 1 : first] == b"\r" else b"\n"


def unfolded(field_bytes: bytes) -> str:
    value = field_bytes.split(b":", 1)[1].lstrip(b" \t").rstrip(b"\r\n")
    value = re.sub(rb"\r?\n(?=[ \t])", b"", value)
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("latin-1")


def with_identity(raw: bytes, identity: str, names: tuple[str, ...]) -> bytes:
    """The message with the values of the `names` fields replaced by `identity` (the test's one documented change)."""
    parts = split(raw)
    fields = []
    for f in parts.fields:
        ending = b"\r\n" if f.endswith(b"\r\n") else b"\n"
        value = f"<{identity}>" if key(f) == "return-path" else identity
        fields.append(f.split(b":", 1)[0] + b": " + value.encode("ascii") + ending if key(f) in names else f)
    if not any(key(f) == "from" for f in fields):
        fields.insert(0, b"From: " + identity.encode("ascii") + newline_of(raw))
    return parts.envelope + b"".join(fields) + parts.separator + parts.body


def addresses(fields: list[bytes]) -> set[str]:
    return {a.lower() for _, a in getaddresses([unfolded(f) for f in fields]) if a}


def leaves(message: Message) -> list[tuple[str, bytes | None]]:
    """(content type, decoded payload) of every leaf part, in order."""
    return [(p.get_content_type(), p.get_payload(decode=True)) for p in message.walk() if not p.is_multipart()]


def compat32(raw: bytes) -> Message:
    return message_from_bytes(raw, policy=email_policy.compat32)


def nested(raw: bytes) -> Message:
    """`raw` read as the one part of a multipart, the way a forward or a notice carries it (the control for parser context)."""
    nl = newline_of(raw)
    wrapper = b'Content-Type: multipart/mixed; boundary="=_control"' + nl + nl + b"--=_control" + nl + raw + nl + b"--=_control--" + nl
    return compat32(wrapper).get_payload(0)


def first_difference(a: bytes, b: bytes) -> str:
    at = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
    return f"at byte {at} of {len(a)}/{len(b)}: expected {a[max(0, at - 20) : at + 40]!r}, sent {b[max(0, at - 20) : at + 40]!r}"


# ---------------------------------------------------------------------------------------------- the world


class _Undecoded(bytes):
    """What moto's SES v2 decodes the raw message into: undecodable bytes kept as surrogates."""

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        return bytes.decode(self, encoding, "surrogateescape")


@dataclass
class Delivery:
    """What one handler call did: its answer, SES's messages (envelope, bytes), the records."""

    answer: Any
    sent: list[tuple[list[str], bytes]]
    records: list[dict[str, Any]]


@dataclass
class World:
    harness: Harness
    gateway: Any
    inbound: InboundStack
    runs: dict[tuple[str, str], Delivery] = field(default_factory=dict)

    def ses(self, start: int) -> list[tuple[list[str], bytes]]:
        messages = get_backend("ses")[ACCOUNT][REGION].sent_messages
        assert len(messages) == len(self.harness.calls), "every SES call is captured"
        out = []
        for call, message, wire in zip(self.harness.calls[start:], messages[start:], self.harness.wire[start:], strict=True):
            received = message.raw_data.encode("utf-8", "surrogateescape")
            assert received == wire, "moto holds the bytes the handler gave SES"
            out.append((list(call["Destination"]["ToAddresses"]), received))
        return out

    def outbound(self, sample: Sample, to: str, **extra: Any) -> Delivery:
        run_key = (f"outbound:{to}", sample.id)
        if run_key not in self.runs:
            message_id = f"rw-{uuid.uuid4().hex[:12]}"
            raw = with_identity(sample.raw, VENDOR_FROM, ("from", "sender", "return-path"))
            request = {"message_id": message_id, "from": VENDOR_FROM, "to": [to], "raw": base64.b64encode(raw).decode(), **extra}
            start = len(self.harness.calls)
            answer = self.gateway.lambda_handler(sqs_event(request), LambdaContext())
            self.runs[run_key] = Delivery(answer, self.ses(start), self.harness.records(message_id))
        return self.runs[run_key]

    def forward(self, sample: Sample) -> Delivery:
        run_key = ("inbound", sample.id)
        if run_key not in self.runs:
            ses_id = f"rw{uuid.uuid4().hex[:20]}"
            raw = with_identity(sample.raw, CUSTOMER, ("from",))
            event = receipt_event(ses_id, CUSTOMER, [DESK], "", VERDICTS["pass"])
            mail = event["Records"][0]["ses"]["mail"]
            fields = split(raw).fields  # the message's own headers, as SES lists them in the event
            mail["headers"] = [{"name": f.split(b":", 1)[0].decode("ascii"), "value": unfolded(f)} for f in fields]
            mail["commonHeaders"]["from"] = [CUSTOMER]
            mail["commonHeaders"]["subject"] = next((unfolded(f) for f in fields if key(f) == "subject"), "")
            start = len(self.harness.calls)
            self.inbound.store(ses_id, raw)
            answer = self.inbound.handler.lambda_handler(event, InboundContext())
            self.runs[run_key] = Delivery(answer, self.ses(start), self.inbound.recorded(ses_id))
        return self.runs[run_key]


@pytest.fixture(scope="module")
def world(dynamodb_local: str) -> Iterator[World]:
    """One set of tables and one moto for the module; messages are told apart by their ids."""
    patch = pytest.MonkeyPatch()
    names = create_tables_from_template(["DirectoryTable", "DecisionsTable", "IdempotencyTable"])
    import_directory(names["DirectoryTable"])
    passthrough = {"core": {"passthrough": {"urls": [re.escape(dynamodb_local) + ".*"], "services": []}}}
    patch.setattr(moto_sesv2_responses, "base64", SimpleNamespace(b64decode=lambda data: _Undecoded(base64.b64decode(data))))
    try:
        with mock_aws(config=passthrough):
            clients.reset()
            clients.client("s3").create_bucket(Bucket=BUCKET)
            clients.client("sesv2").create_email_identity(EmailIdentity="vendor.example")
            harness = Harness(names)
            for name, value in {**harness.environment(), "AWS_LAMBDA_FUNCTION_NAME": "csp-mail-filter-InboundFilterFunction"}.items():
                patch.setenv(name, value)
            yield World(harness, gateway=load_function("outbound_gateway"), inbound=InboundStack(load_handler(), names["DecisionsTable"]))
    finally:
        patch.undo()
        clients.reset()
        delete_tables(names.values())


# ---------------------------------------------------------------------------------------------- counts

TALLY: Counter[str] = Counter()
NOTED: set[tuple[str, str, str]] = set()  # (where, sample id, documented difference)


def note(where: tuple[str, str], difference: str) -> None:
    NOTED.add((*where, difference))


@pytest.fixture(scope="module", autouse=True)
def report(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None or not TALLY:
        return
    committed = sum(s.origin == "realworld" for s in SAMPLES)
    lines = [f"real-world corpus: {len(SAMPLES)} messages ({committed} committed, {len(SAMPLES) - committed} CPython)"]
    lines += [f"  {name}: {TALLY[name]}" for name in sorted(TALLY)]
    differences = Counter((where, difference) for where, _, difference in NOTED)
    lines += [f"  difference ({where}): {difference}: {count} messages" for (where, difference), count in sorted(differences.items())]
    with capture.global_and_fixture_disabled():
        reporter.write_line("")
        for line in lines:
            reporter.write_line(line)


def tally(check: str, problems: list[str]) -> None:
    TALLY[f"{check}: {'identical' if not problems else 'DIFFERENT'}"] += 1


# ---------------------------------------------------------------------------------------------- outbound


def expected_copy_fields(original: Split, reader: str, where: tuple[str, str]) -> tuple[list[bytes], list[str]]:
    """The fields a copy for `reader` must carry byte for byte, and the order of all its field names (narrowed ones included)."""
    kept, order, placed = [], [], set()
    for f in original.fields:
        name = key(f)
        if name in HIDDEN:
            note(where, f"{name} removed")
            continue
        if name in NARROWED:
            family = original.named(name)
            visible = name == "to" or reader in addresses(family)
            if visible and name not in placed:
                order.append(name)
            placed.add(name)
            continue
        kept.append(f)
        order.append(name)
    if "to" not in placed:
        order.append("to")
    return kept, order


def check_copy_headers(sent_raw: bytes, original: Split, reader: str, where: tuple[str, str]) -> list[str]:
    """Every difference between a copy's header block and the original's that the docs do not list."""
    sent = split(sent_raw)
    problems = []
    kept, order = expected_copy_fields(original, reader, where)
    others = [f for f in sent.fields if key(f) not in NARROWED]
    if others != kept:
        for want, got in zip(kept, others, strict=False):
            if want != got:
                problems.append(f"field changed: {first_difference(want, got)}")
                break
        else:
            problems.append(f"fields differ in number: {len(kept)} expected, {len(others)} sent")
    if [key(f) for f in sent.fields] != order:
        problems.append(f"field order {[key(f) for f in sent.fields]} != {order}")
    for name in NARROWED:
        shown = addresses(sent.named(name))
        if not shown <= {reader}:
            problems.append(f"{name} shows {sorted(shown - {reader})}")
        if original.named(name) and sent.named(name) != original.named(name):
            note(where, f"{name} narrowed")
    if addresses(sent.named("to")) != {reader}:
        problems.append(f"To is {sent.named('to')}, not the reader")
    if any(key(f) in HIDDEN for f in sent.fields):
        problems.append("a hidden-recipient field survived")
    if original.envelope:
        note(where, "mbox 'From ' envelope line not sent")
    return problems


def check_copy_body(sent_raw: bytes, original: Split, where: tuple[str, str]) -> list[str]:
    sent = split(sent_raw)
    problems = []
    if sent.body != original.body:
        problems.append(f"body changed {first_difference(original.body, sent.body)}")
    if original.separator and sent.separator != original.separator:
        problems.append(f"empty line {original.separator!r} became {sent.separator!r}")
    if not original.separator:
        note(where, "empty line added after a header block without one")
        if sent.separator not in (b"\r\n", b"\n"):
            problems.append("no empty line after the header block")
    return problems


def check_leaves(original: bytes, sent: Message, where: tuple[str, str]) -> list[str]:
    """Every leaf of `sent` decodes as the original's; where it does not, as the original's read as a nested part.

    The second case is Python's parser, not the filter: the last part of a multipart without its
    closing delimiter, or the text of a multipart whose boundary never appears, keeps or loses
    its final line break depending on whether it ends at the end of the input or before an
    enclosing delimiter. The bytes are compared by the body tests.
    """
    want, got = leaves(compat32(original)), leaves(sent)
    if got != want and got == leaves(nested(original)):
        note(where, "a leaf reads differently nested than at top level (Python's parser; same bytes)")
        return []
    if [t for t, _ in want] != [t for t, _ in got]:
        return [f"parts {[t for t, _ in want]} became {[t for t, _ in got]}"]
    return [
        f"leaf {i} ({t}) decodes differently: {first_difference(a or b'', b or b'')}"
        for i, ((t, a), (_, b)) in enumerate(zip(want, got, strict=True))
        if a != b
    ]


def allowed_copy(world: World, sample: Sample) -> tuple[bytes, bytes]:
    """(the message as sent to the gateway, what SES received for the direct customer)."""
    delivery = world.outbound(sample, DIRECT)
    assert delivery.answer == {"batchItemFailures": []}
    decisions = [r for r in delivery.records if r["kind"] == "decision"]
    assert [(r["recipient"], r["effective"], r["rule"]) for r in decisions] == [(DIRECT, "allow", "no-csp-partner")], delivery.records
    ((envelope, received),) = delivery.sent
    assert envelope == [DIRECT]
    return with_identity(sample.raw, VENDOR_FROM, ("from", "sender", "return-path")), received


@pytest.mark.parametrize("sample", params("outbound-headers", outbound=True))
def test_outbound_allowed_copy_keeps_every_header_field_as_written(world: World, sample: Sample) -> None:
    reason = refused_by_design(sample.raw)
    delivery = world.outbound(sample, DIRECT)
    assert delivery.answer == {"batchItemFailures": []}, "a request is sent or refused, never failed into SQS retries"
    TALLY["outbound to the direct customer: answered"] += 1
    if reason:
        assert delivery.sent == []
        assert {r["kind"] for r in delivery.records} == {"rejected"}
        assert reason in delivery.records[0]["error"], delivery.records[0]["error"]
        TALLY["outbound: refused by design"] += 1
        return
    sent, received = allowed_copy(world, sample)
    TALLY["outbound to the direct customer: delivered"] += 1
    problems = check_copy_headers(received, split(sent), DIRECT, ("allowed copy", sample.id))
    tally("outbound allowed copy, header fields", problems)
    assert problems == []


@pytest.mark.parametrize("sample", params("outbound-body", outbound=True))
def test_outbound_allowed_copy_keeps_the_body_byte_for_byte(world: World, sample: Sample) -> None:
    sent, received = allowed_copy(world, sample)
    problems = check_copy_body(received, split(sent), ("allowed copy", sample.id))
    tally("outbound allowed copy, body bytes", problems)
    assert problems == []


@pytest.mark.parametrize("sample", params("outbound-leaves", outbound=True))
def test_outbound_allowed_copy_decodes_every_part_as_the_original(world: World, sample: Sample) -> None:
    sent, received = allowed_copy(world, sample)
    problems = check_leaves(sent, compat32(received), ("allowed copy", sample.id))
    tally("outbound allowed copy, decoded leaf parts", problems)
    assert problems == []


def attached_original(notice: bytes) -> bytes:
    """The message/rfc822 part of a partner notice, read as RFC 2046 reads a body part.

    A body part ends before the line break that precedes the next delimiter line: that line
    break belongs to the delimiter.
    """
    head = split(notice)
    boundary = compat32(notice).get_boundary()
    assert boundary, "a notice is multipart"
    delimiter = b"--" + boundary.encode("ascii")
    parts = head.body.split(delimiter)
    assert len(parts) == 4, "a notice has a text part and the original"
    assert parts[3].startswith(b"--")
    part = parts[2]
    part = part[2:] if part.startswith(b"\r\n") else part[1:]  # the delimiter line's own line break
    part = split(part)
    assert [key(f) for f in part.fields][:2] == ["content-type", "content-disposition"]
    assert unfolded(part.fields[0]) == "message/rfc822"
    content = part.body
    return content[:-2] if content.endswith(b"\r\n") else content[:-1] if content.endswith(b"\n") else content


def partner_notice(world: World, sample: Sample) -> tuple[bytes, bytes, Message]:
    """(the message as sent to the gateway, the original attached to Fabrikam's notice, the notice parsed)."""
    delivery = world.outbound(sample, CSP_ONLY, category="subscription")
    assert delivery.answer == {"batchItemFailures": []}
    decisions = [r for r in delivery.records if r["kind"] == "decision"]
    assert [(r["recipient"], r["effective"], r["rule"]) for r in decisions] == [(CSP_ONLY, "reroute", "subscription-owned-by-partner")]
    ((envelope, received),) = delivery.sent
    assert envelope == [PARTNER]
    notice = compat32(received)
    assert addresses(split(received).named("from")) == {FILTER_FROM}
    assert addresses(split(received).named("to")) == {PARTNER}
    assert str(make_header(decode_header(notice["Subject"]))).startswith("[CSP customer Tailspin Toys]")
    return with_identity(sample.raw, VENDOR_FROM, ("from", "sender", "return-path")), attached_original(received), notice


@pytest.mark.parametrize("sample", params("notice-headers", outbound=True))
def test_partner_notice_attaches_the_original_with_every_header_field_as_written(world: World, sample: Sample) -> None:
    sent, attached, _ = partner_notice(world, sample)
    TALLY["outbound notice to Fabrikam: delivered"] += 1
    problems = check_copy_headers(attached, split(sent), CSP_ONLY, ("notice", sample.id))
    tally("outbound notice, attached header fields", problems)
    assert problems == []


@pytest.mark.parametrize("sample", params("notice-body", outbound=True))
def test_partner_notice_attaches_the_original_body_byte_for_byte(world: World, sample: Sample) -> None:
    sent, attached, _ = partner_notice(world, sample)
    problems = check_copy_body(attached, split(sent), ("notice", sample.id))
    tally("outbound notice, attached body bytes", problems)
    assert problems == []


@pytest.mark.parametrize("sample", params("notice-leaves", outbound=True))
def test_partner_notice_attachment_decodes_every_part_as_the_original(world: World, sample: Sample) -> None:
    sent, _, notice = partner_notice(world, sample)
    text, rfc822 = notice.get_payload()
    assert (text.get_content_type(), rfc822.get_content_type()) == ("text/plain", "message/rfc822")
    problems = check_leaves(sent, rfc822.get_payload(0), ("notice", sample.id))
    tally("outbound notice, attached decoded leaf parts", problems)
    assert problems == []


def test_rfc8058_one_click_unsubscribe_reaches_the_recipient_unchanged(world: World) -> None:
    """RFC 8058: List-Unsubscribe (an HTTPS URI) and List-Unsubscribe-Post arrive as written, or one-click breaks."""
    (sample,) = [s for s in SAMPLES if s.id == "realworld/01-newsletter-dkim-arc-one-click-unsubscribe"]
    original = split(sample.raw)
    (unsubscribe,) = original.named("list-unsubscribe")
    (post,) = original.named("list-unsubscribe-post")
    uri = re.search(rb"<(https://[^>]+)>", unsubscribe)
    assert uri is not None
    assert len(uri.group(1)) > 127
    assert post == b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
    _, received = allowed_copy(world, sample)
    assert split(received).named("list-unsubscribe", "list-unsubscribe-post") == [unsubscribe, post]
    assert split(received).named("dkim-signature") == original.named("dkim-signature")  # the signature that covers them
    _, attached, _ = partner_notice(world, sample)
    assert split(attached).named("list-unsubscribe", "list-unsubscribe-post") == [unsubscribe, post]


# ---------------------------------------------------------------------------------------------- inbound


def forwarded(world: World, sample: Sample) -> tuple[bytes, bytes]:
    """(the message as stored, what SES received for Fabrikam)."""
    delivery = world.forward(sample)
    assert delivery.answer == {"disposition": "STOP_RULE"}
    decisions = [r for r in delivery.records if r["kind"] == "decision"]
    assert [(r["recipient"], r["effective"], r["rule"]) for r in decisions] == [(DESK, "reroute", "subscription-owned-by-partner")], [
        (r["kind"], r.get("rule"), r.get("reason"), r.get("error")) for r in delivery.records
    ]
    ((envelope, received),) = delivery.sent
    assert envelope == [PARTNER]
    return with_identity(sample.raw, CUSTOMER, ("from",)), received


def as_written(f: bytes, nl: bytes) -> bool:
    """Whether docs/inbound.md lets the forward keep this field's bytes (ASCII, no NUL, lines of at most 998, the message's breaks)."""
    lines = f[: -len(nl)].split(nl) if f.endswith(nl) else [f]
    return (
        f.endswith(nl) and f.isascii() and b"\x00" not in f and all(b"\r" not in x and b"\n" not in x and len(x) <= MAX_LINE for x in lines)
    )


def compare_field(want: bytes, got: bytes, name: str, nl: bytes, where: tuple[str, str]) -> str | None:
    """None when `got` is `want` under `name` as the docs allow: byte for byte, or re-encoded to the same text."""
    if key(got) != name.lower():
        return f"expected a {name} field, found {got[:60]!r}"
    if as_written(want, nl):
        expected = want if key(want) == name.lower() else name.encode("ascii") + b": " + want.split(b":", 1)[1].lstrip(b" \t")
        return None if got == expected else f"{name} changed {first_difference(expected, got)}"
    note(where, f"{key(want)} re-encoded (non-ASCII, over-long or foreign line break)")
    text = str(make_header(decode_header(unfolded(got)))).strip()  # leading and trailing white space carry nothing
    return None if text == unfolded(want).strip() else f"{name} re-encoded to {text!r}, not {unfolded(want)!r}"


def expected_forward_fields(original: Split, where: tuple[str, str]) -> tuple[list[tuple[str, bytes]], list[tuple[str, bytes]]]:
    """(top-level fields, second-part content fields) the forward must carry, each as (name, original field)."""
    top, content, seen = [], [], set()
    for f in original.fields:
        name = key(f)
        if name in DROPPED or name.startswith(DROPPED_PREFIXES):
            note(where, f"{name} dropped")
            continue
        if name in RENAMED:
            note(where, f"{name} renamed X-Original-*")
            top.append(("X-Original-" + f.split(b":", 1)[0].decode("ascii"), f))
            continue
        if name in SES_SINGLE_FIELDS:
            if name in seen:
                note(where, f"repeated {name} kept once")
                continue
            seen.add(name)
        (content if name.startswith("content-") else top).append((f.split(b":", 1)[0].decode("ascii"), f))
    return top, content


def forward_parts(received: bytes) -> tuple[Split, bytes]:
    """The forward's header block and its second part (the original), read as RFC 2046 reads a body part."""
    head = split(received)
    boundary = compat32(received).get_boundary()
    delimiter = b"--" + boundary.encode("ascii")
    nl = newline_of(received)
    parts = head.body.split(nl + delimiter)
    assert len(parts) == 4, "preamble, notice, original, closing delimiter"
    assert parts[3] == b"--" + nl
    assert parts[2].startswith(nl)
    return head, parts[2][len(nl) :]


@pytest.mark.parametrize("sample", params("inbound-headers"))
def test_inbound_forward_keeps_every_header_field_the_docs_do_not_change(world: World, sample: Sample) -> None:
    stored, received = forwarded(world, sample)
    TALLY["inbound: answered and forwarded to Fabrikam"] += 1
    original = split(stored)
    nl = newline_of(stored)
    head, second = forward_parts(received)
    top, content = expected_forward_fields(original, ("inbound", sample.id))
    names = [key(f) for f in head.fields]
    assert names[:3] == ["from", "reply-to", "to"]
    assert names[-6:] == ["x-mailfilter-rule", "x-mailfilter-reason", "x-mailfilter-original-recipients",
                          "x-mailfilter-message-id", "mime-version", "content-type"]  # fmt: skip
    kept = head.fields[3:-6]
    part = split(second)
    problems = [f"{len(top)} top-level fields expected, {len(kept)} sent"] if len(kept) != len(top) else []
    problems += [f"{len(content)} content fields expected, {len(part.fields)} sent"] if len(part.fields) != len(content) else []
    pairs = [*zip(top, kept, strict=False), *zip(content, part.fields, strict=False)]
    problems += [p for (name, want), got in pairs if (p := compare_field(want, got, name, nl, ("inbound", sample.id)))]
    problems += [f"a header line of {len(x)} characters" for x in split(received).fields for x in x.splitlines() if len(x) > MAX_LINE]
    tally("inbound forward, header fields (byte for byte or re-encoded as documented)", problems)
    assert problems == []


@pytest.mark.parametrize("sample", params("inbound-body"))
def test_inbound_forward_carries_the_original_body_byte_for_byte(world: World, sample: Sample) -> None:
    stored, received = forwarded(world, sample)
    original = split(stored)
    _, second = forward_parts(received)
    part = split(second)
    problems = [] if part.separator in (b"\r\n", b"\n") else [f"the second part's header block ends with {part.separator!r}"]
    if part.body != original.body:
        problems.append(f"body changed {first_difference(original.body, part.body)}")
    if original.envelope:
        note(("inbound", sample.id), "mbox 'From ' envelope line not sent")
    tally("inbound forward, body bytes", problems)
    assert problems == []


@pytest.mark.parametrize("sample", params("inbound-leaves"))
def test_inbound_forward_decodes_every_part_as_the_original(world: World, sample: Sample) -> None:
    stored, received = forwarded(world, sample)
    outer = compat32(received).get_payload()
    assert len(outer) == 2
    assert outer[0].get_content_type() == "text/plain"
    problems = check_leaves(stored, outer[1], ("inbound", sample.id))
    tally("inbound forward, decoded leaf parts", problems)
    assert problems == []


# ---------------------------------------------------------------------------------------------- the corpus itself


def test_the_committed_corpus_holds_what_real_mail_holds() -> None:
    raws = {s.id: s.raw for s in SAMPLES if s.origin == "realworld"}
    assert len(raws) >= 12
    every = b"".join(raws.values())
    for needed in (b"\nDKIM-Signature:", b"\nARC-Seal:", b"\nARC-Message-Signature:", b"List-Unsubscribe-Post: List-Unsubscribe=One-Click",
                   b"=?UTF-8?B?", b"message/rfc822", b"multipart/alternative", b"charset=ISO-8859-1"):  # fmt: skip
        assert needed in every, needed
    assert any(re.search(rb"\nList-Unsubscribe: <https://[^>]{128,}>", r) for r in raws.values())
    assert any(re.search(rb"b=[A-Za-z0-9+/]{600,}", r) for r in raws.values()), "an unbreakable signature value"
    assert any(not split(r).separator and split(r).body for r in raws.values()), "a header block without an empty line"
    assert {newline_of(r) for r in raws.values()} == {b"\r\n", b"\n"}
    assert any(not r.isascii() and not refused_by_design(r) and re.search(rb"[\xc0-\xff][\x80-\xbf]", split(r).body) for r in raws.values())
    latin1 = [r for r in raws.values() if b"8bit" in r and b"ISO-8859-1" in r.upper() and not refused_by_design(r)]
    assert any(_not_utf8(split(r).body) for r in latin1), "an 8-bit ISO-8859-1 body"
    assert any(max(map(len, split(r).body.splitlines())) == 76 and len(r) > 200_000 for r in raws.values()), "a long base64 attachment"


def _not_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False
