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
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from email.utils import formataddr

from mailfilter.delivery.original import header_safe
from mailfilter.delivery.raw import MAX_LINE, SES_SINGLE_FIELDS, HeaderField, new_field, split_message
from mailfilter.vocabulary.errors import ForwardError, MessageTooLarge
from mailfilter.vocabulary.reading import hides_a_line_break
from mailfilter.vocabulary.ses import SES_MAX_MESSAGE_BYTES

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


def _field(name: str, value: str, newline: bytes) -> bytes:
    """One header line the filter writes, folded and encoded so that SES accepts it and nothing can be injected."""
    if hides_a_line_break(value):
        value = header_safe(value)  # decoded and kept as one line of text
    return new_field(name, value, newline).raw


def _passed_on(field: HeaderField, name: str, newline: bytes) -> bytes:
    """A customer's field under `name`: byte for byte where SES takes it so, else one line of its text, re-encoded.

    Re-encoded: non-ASCII or NUL bytes, a line over 998 characters, other line breaks than the
    message's, and encoded words that decode to a line break.
    """
    raw = field.raw
    lines = raw[: -len(newline)].split(newline) if raw.endswith(newline) else [raw]
    as_written = (
        raw.endswith(newline)
        and raw.isascii()
        and b"\x00" not in raw
        and not any(b"\r" in line or b"\n" in line for line in lines)
        and all(len(line) <= MAX_LINE for line in lines)
        and not hides_a_line_break(field.text())
    )
    if as_written:
        return raw if name == field.name else name.encode("ascii") + b": " + field.value + newline
    return _field(name, field.text().replace("\x00", ""), newline)


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
            top.append(_passed_on(field, "X-Original-" + field.name, newline))
            continue
        if key in SES_SINGLE_FIELDS:
            if key in seen:
                continue
            seen.add(key)
        target = content if key.startswith("content-") else top
        target.append(_passed_on(field, field.name, newline))
    return top, content


def forward_message(raw: bytes, notice: ForwardNotice, *, max_bytes: int = SES_MAX_MESSAGE_BYTES) -> bytes:
    """The message to send to the partner: rewritten headers, a notice, the original body intact."""
    if not notice.partner_contacts:
        raise ForwardError("no partner contact to forward to")
    message = split_message(raw)
    fields, body, nl = message.fields, message.body, message.newline
    if not fields and not body:
        raise ForwardError("the stored message is empty")
    kept, content = _renamed_and_kept(fields, nl)
    boundary = "=_mailfilter_" + secrets.token_hex(16)
    while boundary.encode("ascii") in body:  # pragma: no cover - 128 random bits
        boundary = "=_mailfilter_" + secrets.token_hex(16)

    # A sender the filter could not read (released `unreadable-sender` mail) gets no Reply-To.
    display = f"{notice.original_sender or 'an unreadable sender'} via the mail filter"
    head = [
        _field("From", formataddr((display, notice.filter_from), charset="utf-8"), nl),
        *([_field("Reply-To", notice.original_sender, nl)] if notice.original_sender else []),
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
