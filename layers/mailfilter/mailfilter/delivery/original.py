"""The outbound original: composed once from a request's fields, or taken as given (`raw`), then kept as bytes.

Composition uses the standard library's `email` package; a `raw` message is only split
(`mailfilter.delivery.raw`) and checked for what SES refuses. Every header value the
filter writes goes through `header_safe` and is RFC 2047-encoded where it is not ASCII,
so neither a customer name nor a subject can inject a header.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from email import policy as email_policy
from email.errors import HeaderParseError
from email.header import decode_header, make_header
from email.message import EmailMessage

from mailfilter.delivery.raw import MAX_LINE, SES_SINGLE_FIELDS, RawMessage, address_field, new_field, split_message
from mailfilter.events.send_request import SendRequest
from mailfilter.vocabulary.errors import CompositionError
from mailfilter.vocabulary.reading import decoded, hides_a_line_break

# Headers the gateway composes itself; a request may not set them through `headers`.
RESERVED_HEADERS = frozenset(
    h.lower()
    for h in (
        "From", "Sender", "To", "Cc", "Bcc", "Reply-To", "Subject", "Date", "Message-ID", "Return-Path",
        "MIME-Version", "Content-Type", "Content-Transfer-Encoding", "Content-Disposition",
    )
)  # fmt: skip


def header_safe(value: str) -> str:
    """One line of plain text that stays one header, however it is written.

    Every run of whitespace, CR and LF included, folds into one space, and control characters
    go. RFC 2047 encoded words are decoded first (and again, until nothing changes), because
    `EmailMessage` decodes any it is given and would write a CR LF hidden in one
    (`=?utf-8?q?x=0D=0ABcc:_...?=`) as a header break.
    """
    for _ in range(5):
        decoded = _decoded_words(value)
        cleaned = " ".join(_CONTROL.sub(" ", decoded).split())
        if cleaned == value:
            return cleaned
        value = cleaned
    return value.replace("=?", "= ?")  # still changing: no encoded word survives


_CONTROL = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")


_NUL = re.compile(rb"\x00")


def _decoded_words(value: str) -> str:
    if "=?" not in value:
        return value
    try:
        return str(make_header(decode_header(value)))
    except (HeaderParseError, LookupError, UnicodeError, ValueError):
        return value.replace("=?", "= ?")


@dataclass(frozen=True, slots=True)
class Original:
    """The message as the sender asked for it: the bytes every copy is made from."""

    raw: RawMessage  # as it is delivered, every recipient in its header (Bcc excepted)

    @property
    def subject(self) -> str:
        return decoded(self.raw.all("Subject")[0].text()) if self.raw.all("Subject") else ""


def _defused(raw: RawMessage) -> RawMessage:
    """A field whose encoded words decode to a line break is kept as one line of its decoded text."""
    fields = [
        new_field(field.name, header_safe(field.text()), raw.newline) if hides_a_line_break(field.text()) else field for field in raw.fields
    ]
    return RawMessage(tuple(fields), raw.body, raw.newline, raw.separator)


def _check_ses_accepts(raw: RawMessage) -> None:
    """Refuse now, with the reason, a header block SES would refuse on every retry (copies keep it as written)."""
    counts: dict[str, int] = {}
    for field in raw.fields:
        counts[field.key] = counts.get(field.key, 0) + 1
        if any(len(line.rstrip(b"\r")) > MAX_LINE for line in field.raw.split(b"\n")):
            raise CompositionError(f"raw's {field.name} header has a line longer than {MAX_LINE} characters, which SES refuses; fold it")
    repeated = sorted(key for key, count in counts.items() if count > 1 and key in SES_SINGLE_FIELDS)
    if repeated:
        raise CompositionError(f"raw repeats headers that SES accepts only once: {', '.join(repeated)}")


def compose_original(request: SendRequest, stored: bytearray | None = None) -> Original:
    """The message as the sender asked for it: `raw` (or the `stored` message `raw_key` names) as given, Bcc removed;
    or composed from the request's fields.

    Only the header block is read and rewritten; the body is kept as it came, never parsed, so a
    stored 35 MB message costs its own size in memory and no more.
    """
    if request.raw_key is not None and stored is None:
        raise CompositionError(f"raw_key {request.raw_key} names a stored message that was not read")
    if request.raw is not None or stored is not None:
        data = stored if stored is not None else bytearray(base64.b64decode(request.raw or ""))
        if _NUL.search(data):
            raise CompositionError("raw contains NUL bytes, which no mail may carry; encode binary parts in base64")
        raw = split_message(data)
        try:
            b"".join(field.raw for field in raw.fields).decode("utf-8")
        except UnicodeDecodeError:
            raise CompositionError("raw's headers are not text: non-ASCII header values must be RFC 2047 encoded") from None
        _check_ses_accepts(raw)
        raw = _defused(raw).without(["Bcc"])
        if not raw.all("From"):
            raw = raw.replacing("From", [address_field("From", request.sender, raw.newline)])
        return Original(raw)
    reserved = sorted(name for name in request.headers if name.lower() in RESERVED_HEADERS)
    if reserved:
        raise CompositionError(f"headers {reserved} are composed by the gateway; use the request's fields instead")
    message = EmailMessage(policy=email_policy.default)
    message["From"] = request.sender
    # Joined into one string so the header is parsed into `Address` objects.
    for name, addresses in (("To", request.to), ("Cc", request.cc), ("Reply-To", request.reply_to)):
        if addresses:
            message[name] = ", ".join(addresses)
    message["Subject"] = header_safe(request.subject)
    for name, value in request.headers.items():
        message[name] = header_safe(value)
    if request.text is not None:
        message.set_content(request.text, cte="quoted-printable")
        if request.html is not None:
            message.add_alternative(request.html, subtype="html", cte="quoted-printable")
    else:
        message.set_content(request.html or "", subtype="html", cte="quoted-printable")
    return Original(split_message(message.as_bytes(policy=email_policy.SMTP)))
