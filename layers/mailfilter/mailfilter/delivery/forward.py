"""Rewriting a customer's inbound message so it can be forwarded to a partner through SES.

The message a customer sent cannot be relayed as it is: SES sends only from
the filter's verified identity, refuses repeated single-use headers, and the
customer's DKIM signature, Return-Path and Message-ID would break or mislead
on a forward. So the top-level headers are rewritten and the original body is
wrapped, byte for byte, as the second part of a new multipart/mixed message
whose first part tells the partner who wrote, to whom, and why it came to them.

The body is never parsed: attachments arrive exactly as sent, and no
structure (deeply nested MIME, broken encodings) can make the rewrite fail.
Only the header block is read, as bytes, so non-UTF-8 headers are re-encoded
(RFC 2047) rather than rejected.
"""

from __future__ import annotations

import base64
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from email.header import Header
from email.utils import formataddr

from mailfilter.delivery.mime import header_safe
from mailfilter.events.send_request import SES_MAX_MESSAGE_BYTES
from mailfilter.reading import hides_a_line_break

MAX_LINE = 998  # RFC 5322's limit for one header line

# Fields that SES rejects when repeated (docs: "Amazon SES header fields"). A kept field is kept once.
SES_SINGLE_FIELDS = frozenset(
    {
        "accept-language",
        "archived-at",
        "auto-submitted",
        "bounces-to",
        "comments",
        "content-alternative",
        "content-base",
        "content-class",
        "content-description",
        "content-disposition",
        "content-duration",
        "content-id",
        "content-language",
        "content-length",
        "content-location",
        "content-md5",
        "content-transfer-encoding",
        "content-type",
        "date",
        "delivered-to",
        "disposition-notification-options",
        "disposition-notification-to",
        "dkim-signature",
        "domainkey-signature",
        "errors-to",
        "from",
        "importance",
        "in-reply-to",
        "keywords",
        "list-archive",
        "list-help",
        "list-id",
        "list-owner",
        "list-post",
        "list-subscribe",
        "list-unsubscribe",
        "list-unsubscribe-post",
        "message-context",
        "message-id",
        "mime-version",
        "organization",
        "original-from",
        "original-message-id",
        "original-recipient",
        "original-subject",
        "precedence",
        "priority",
        "references",
        "reply-to",
        "return-path",
        "return-receipt-to",
        "sender",
        "solicitation",
        "sensitivity",
        "subject",
        "thread-index",
        "thread-topic",
        "user-agent",
        "vbr-info",
    }
)

# Who wrote it and to whom: kept for the partner under X-Original-<name>.
RENAMED = frozenset({"from", "to", "cc", "reply-to", "sender", "message-id"})

# Trace, authentication and bounce routing of the original hop; they break or mislead on a
# forward. Our own X-Original-* and X-Mailfilter-* are dropped too, so a sender cannot forge
# them, and category declarations from outside the vendor are never passed on.
DROPPED = frozenset(
    {
        "dkim-signature",
        "domainkey-signature",
        "arc-seal",
        "arc-message-signature",
        "arc-authentication-results",
        "authentication-results",
        "received-spf",
        "received",
        "return-path",
        "delivered-to",
        "bcc",
        "errors-to",
        "bounces-to",
        "return-receipt-to",
        "disposition-notification-to",
        "disposition-notification-options",
        "list-unsubscribe",
        "list-unsubscribe-post",
        "feedback-id",
        "mime-version",
        "x-communication-category",
        "x-product",
        "x-cloud-instance",
    }
)
DROPPED_PREFIXES = ("x-original-", "x-mailfilter-", "x-ses-")

_FIELD_NAME = re.compile(rb"^[!-9;-~]+$")  # printable ASCII except ':' (RFC 5322 ftext)
_LONE_BREAK = re.compile(rb"[\r\n]")


class ForwardError(ValueError):
    """The message cannot be forwarded; the text says why (it is quarantined instead)."""


class MessageTooLarge(ForwardError):  # noqa: N818 - reads as the condition callers handle
    """The rewritten message is over SES's sending size limit."""


@dataclass(frozen=True, slots=True)
class ForwardNotice:
    """What the partner is told: who wrote, to whom, for which customer and why it came to them."""

    filter_from: str
    original_sender: str
    original_recipients: tuple[str, ...]
    partner_contacts: tuple[str, ...]
    reason: str
    rule: str
    ses_message_id: str
    customer_name: str | None = None


@dataclass(frozen=True, slots=True)
class HeaderField:
    name: bytes  # as written
    value: bytes  # raw, folding included, without the final line break

    @property
    def key(self) -> str:
        return self.name.decode("ascii").lower()


def split_message(raw: bytes) -> tuple[list[HeaderField], bytes, bytes]:
    """(header fields, body, line break) of a raw message; unusable header lines are skipped."""
    crlf, lf = raw.find(b"\r\n\r\n"), raw.find(b"\n\n")
    if raw.startswith((b"\r\n", b"\n")):
        head, body = b"", raw[2 if raw.startswith(b"\r\n") else 1 :]
    elif crlf != -1 and (lf == -1 or crlf < lf):
        head, body = raw[:crlf], raw[crlf + 4 :]
    elif lf != -1:
        head, body = raw[:lf], raw[lf + 2 :]
    else:
        head, body = raw, b""
    newline = b"\r\n" if b"\r\n" in (head or raw[:1000]) else b"\n"

    fields: list[HeaderField] = []
    for line in re.split(rb"\r?\n", head) if head else []:
        if line[:1] in (b" ", b"\t") and fields:
            last = fields[-1]
            fields[-1] = HeaderField(last.name, last.value + newline + line)
            continue
        name, colon, value = line.partition(b":")
        name = name.rstrip(b" \t")
        if colon and _FIELD_NAME.match(name):
            fields.append(HeaderField(name, value.lstrip(b" \t")))
        # else: an mbox "From " line or garbage; a header that cannot be named is not passed on
    return fields, body, newline


def _text(value: bytes) -> str:
    unfolded = re.sub(rb"\r?\n(?=[ \t])", b"", value).replace(b"\x00", b"")
    try:
        return unfolded.decode("utf-8")
    except UnicodeDecodeError:
        return unfolded.decode("latin-1")  # every byte decodes; better a wrong accent than a lost header


def _field(name: str, value: str | bytes, newline: bytes) -> bytes:
    """One header line, folded and encoded so that SES accepts it and nothing can be injected."""
    if isinstance(value, bytes):
        # A lone CR (or LF) is a line break to some readers and not to others: a space, never copied.
        lines = [_LONE_BREAK.sub(b" ", line) for line in re.split(rb"\r\n|\n(?=[ \t])", value)]
        fits = all(len(line) <= MAX_LINE - len(name) - 2 for line in lines)
        if value.isascii() and b"\x00" not in value and fits and not hides_a_line_break(value.decode("ascii")):
            return name.encode("ascii") + b": " + newline.join(lines) + newline
        value = _text(value)
    if hides_a_line_break(value):
        value = header_safe(value)  # decoded and kept as one line of text
    value = value.replace("\r", " ").replace("\n", " ").replace("\x00", "")
    charset = "us-ascii" if value.isascii() else "utf-8"
    encoded = Header(value, charset, header_name=name).encode(linesep=newline.decode("ascii"))
    return f"{name}: {encoded}".encode("ascii") + newline


def _notice_text(notice: ForwardNotice) -> str:
    lines = [
        "This message was forwarded to you by the vendor's mail filter.",
        "",
        f"Original sender: {notice.original_sender}",
        f"Sent to: {', '.join(notice.original_recipients)}",
    ]
    if notice.customer_name:
        lines.append(f"Customer: {notice.customer_name}")
    lines += [
        f"Why it came to you: {notice.reason}",
        f"Rule: {notice.rule} (message {notice.ses_message_id})",
        "",
        "Reply to this message to answer the original sender directly.",
        "The original message follows unchanged as the next part.",
    ]
    return "\n".join(lines) + "\n"


def _renamed_and_kept(fields: Iterable[HeaderField], newline: bytes) -> tuple[list[bytes], list[bytes]]:
    """(top-level header lines, content header lines of the original body)."""
    top: list[bytes] = []
    content: list[bytes] = []
    seen: set[str] = set()
    for field in fields:
        key = field.key
        if key in DROPPED or key.startswith(DROPPED_PREFIXES):
            continue
        if key in RENAMED:
            top.append(_field("X-Original-" + field.name.decode("ascii"), field.value, newline))
            continue
        if key in SES_SINGLE_FIELDS:
            if key in seen:
                continue
            seen.add(key)
        target = content if key.startswith("content-") else top
        target.append(_field(field.name.decode("ascii"), field.value, newline))
    return top, content


def forward_message(raw: bytes, notice: ForwardNotice, *, max_bytes: int = SES_MAX_MESSAGE_BYTES) -> bytes:
    """The message to send to the partner: rewritten headers, a notice, the original body intact."""
    if not notice.partner_contacts:
        raise ForwardError("no partner contact to forward to")
    fields, body, nl = split_message(raw)
    if not fields and not body:
        raise ForwardError("the stored message is empty")
    kept, content = _renamed_and_kept(fields, nl)
    boundary = "=_mailfilter_" + secrets.token_hex(16)
    while boundary.encode("ascii") in body:  # pragma: no cover - 128 random bits
        boundary = "=_mailfilter_" + secrets.token_hex(16)

    display = f"{notice.original_sender} via the mail filter"
    head = [
        _field("From", formataddr((display, notice.filter_from), charset="utf-8"), nl),
        _field("Reply-To", notice.original_sender, nl),
        _field("To", ", ".join(notice.partner_contacts), nl),
        *kept,
        _field("X-Mailfilter-Rule", notice.rule, nl),
        _field("X-Mailfilter-Reason", notice.reason, nl),
        _field("X-Mailfilter-Original-Recipients", ", ".join(notice.original_recipients), nl),
        _field("X-Mailfilter-Message-Id", notice.ses_message_id, nl),
        b"MIME-Version: 1.0" + nl,
        f'Content-Type: multipart/mixed; boundary="{boundary}"'.encode("ascii") + nl,
    ]
    text = base64.encodebytes(_notice_text(notice).encode("utf-8")).replace(b"\n", nl)
    delimiter = b"--" + boundary.encode("ascii")
    parts = [
        b"".join(head),
        nl,
        b"This is a multi-part message in MIME format." + nl,
        delimiter + nl,
        b'Content-Type: text/plain; charset="utf-8"' + nl,
        b"Content-Transfer-Encoding: base64" + nl,
        b"Content-Disposition: inline" + nl,
        nl,
        text,
        delimiter + nl,
        b"".join(content),
        nl,
        body,
        nl + delimiter + b"--" + nl,
    ]
    message = b"".join(parts)
    if len(message) > max_bytes:
        raise MessageTooLarge(
            f"the message is {len(message):,} bytes once rewritten for the partner, "
            f"over SES's sending limit of {max_bytes:,} bytes; it is kept in quarantine instead"
        )
    return message
