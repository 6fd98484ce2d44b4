"""MIME for outbound delivery, built with the standard library's `email` package.

Every header value the filter writes goes through `header_safe`, and
`EmailMessage` RFC 2047-encodes anything that is not ASCII, so neither a
customer name nor a subject can inject a header. Messages are serialised with
`email.policy.SMTP` (CRLF line ends, as SES expects for raw content).
"""

from __future__ import annotations

import base64
import copy
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from email import policy as email_policy
from email.errors import HeaderParseError
from email.header import decode_header, make_header
from email.headerregistry import Address as HeaderAddress
from email.message import EmailMessage
from email.parser import BytesParser

from mailfilter.addresses import InvalidAddressError, normalise_address
from mailfilter.events.send_request import SendRequest
from mailfilter.model import Action, Decision, Verdict
from mailfilter.reading import hides_a_line_break

# Headers the gateway composes itself; a request may not set them through `headers`.
RESERVED_HEADERS = frozenset(
    h.lower()
    for h in (
        "From", "Sender", "To", "Cc", "Bcc", "Reply-To", "Subject", "Date", "Message-ID", "Return-Path",
        "MIME-Version", "Content-Type", "Content-Transfer-Encoding", "Content-Disposition",
    )
)  # fmt: skip
FILTER_RULE_HEADER = "X-CSP-Mail-Filter-Rule"
FILTER_CUSTOMER_HEADER = "X-CSP-Mail-Filter-Customer"


class CompositionError(ValueError):
    """A send request that cannot be turned into a message; the text says why."""


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


def _decoded_words(value: str) -> str:
    if "=?" not in value:
        return value
    try:
        return str(make_header(decode_header(value)))
    except (HeaderParseError, LookupError, UnicodeError, ValueError):
        return value.replace("=?", "= ?")


MAX_MIME_DEPTH = 50  # copying and writing a message recurse once per level


def _depth(message: EmailMessage) -> int:
    """How deep the multipart structure goes, measured without recursion."""
    deepest, stack = 0, [(message, 1)]
    while stack:
        part, level = stack.pop()
        deepest = max(deepest, level)
        if part.is_multipart() and level <= MAX_MIME_DEPTH:
            stack.extend((child, level + 1) for child in part.get_payload())
    return deepest


def _defuse_hidden_line_breaks(message: EmailMessage) -> None:
    """A raw header whose encoded words decode to a line break is kept as one line of its decoded text."""
    hostile = {name.lower() for name, value in message.raw_items() if isinstance(value, str) and hides_a_line_break(value)}
    for name in hostile:
        values = [(key, value) for key, value in message.raw_items() if key.lower() == name]
        del message[name]
        for key, value in values:
            message[key] = header_safe(value) if hides_a_line_break(value) else re.sub(r"\r?\n", "", value)


def compose_original(request: SendRequest) -> EmailMessage:
    """The message as the sender asked for it, every recipient in its header (Bcc excepted)."""
    if request.raw is not None:
        data = base64.b64decode(request.raw)
        if b"\x00" in data:
            raise CompositionError("raw contains NUL bytes, which no mail may carry; encode binary parts in base64")
        head = data.replace(b"\r\n", b"\n").split(b"\n\n", 1)[0]
        try:
            head.decode("utf-8")
        except UnicodeDecodeError:
            raise CompositionError("raw's headers are not text: non-ASCII header values must be RFC 2047 encoded") from None
        try:
            message = BytesParser(policy=email_policy.default).parsebytes(data)
        except RecursionError:
            raise CompositionError(f"raw nests MIME parts more than {MAX_MIME_DEPTH} levels deep") from None
        if _depth(message) > MAX_MIME_DEPTH:
            raise CompositionError(f"raw nests MIME parts more than {MAX_MIME_DEPTH} levels deep")
        if not isinstance(message, EmailMessage):  # pragma: no cover - policy.default always builds one
            raise CompositionError("raw is not a MIME message")
        del message["Bcc"]
        _defuse_hidden_line_breaks(message)
        if message["From"] is None:
            message["From"] = request.sender
        return message
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
    return message


# Headers that name recipients: a copy keeps only the addresses its reader may see.
NARROWED_HEADERS = ("To", "Cc", "Resent-To", "Resent-Cc")
# Headers that name hidden recipients or the original envelope: never in a copy.
HIDDEN_HEADERS = ("Bcc", "Resent-Bcc", "Apparently-To", "Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To")


def _kept(headers: Sequence[object], fallback: Sequence[str], visible: Collection[str]) -> list[HeaderAddress | str]:
    """The headers' addresses that are visible, display names kept, then the request's visible ones they lacked."""
    kept: list[HeaderAddress | str] = []
    present: set[str] = set()
    for header in headers:
        for address in getattr(header, "addresses", ()):
            try:
                normalised = normalise_address(address.addr_spec)
            except InvalidAddressError:
                continue  # an address that cannot be read is nobody's to see
            if normalised in visible and normalised not in present:
                kept.append(address)
                present.add(normalised)
    kept.extend(a for a in fallback if a in visible and a not in present)
    return kept


def visible_copy(original: EmailMessage, request: SendRequest, visible: Collection[str]) -> EmailMessage:
    """The original as one reader sees it: To, Cc and Resent-* narrowed to `visible`, hidden headers removed.

    An allowed copy shows the allowed recipients; a partner's notice attaches the copy that
    shows that customer's own recipients, so no reader learns who else was written to.
    """
    message = copy.deepcopy(original)
    for name in NARROWED_HEADERS:
        fallback = {"to": request.to, "cc": request.cc}.get(name.lower(), [])
        kept = _kept(message.get_all(name, []), fallback, visible)
        del message[name]
        if kept:
            message[name] = kept
    for name in HIDDEN_HEADERS:
        del message[name]
    return message


def allowed_copy(original: EmailMessage, request: SendRequest, allowed: Collection[str]) -> bytes:
    """The original with its recipient headers narrowed to the allowed recipients; Bcc stays envelope-only."""
    return visible_copy(original, request, allowed).as_bytes(policy=email_policy.SMTP)


@dataclass(frozen=True, slots=True)
class RerouteGroup:
    """The recipients of one customer that go to the same partner contacts: one notice each."""

    customer: str | None
    customer_name: str | None
    deliver_to: tuple[str, ...]
    decisions: tuple[Decision, ...]

    @property
    def recipients(self) -> tuple[str, ...]:
        return tuple(d.recipient for d in self.decisions)

    @property
    def step(self) -> str:
        """A stable name for this send, for exactly-once bookkeeping across retries."""
        return f"reroute:{self.customer or '-'}:{','.join(sorted(self.deliver_to))}"


def reroute_groups(decisions: Sequence[Decision], action: Action = Action.REROUTE) -> list[RerouteGroup]:
    """Group `effective == action` decisions by (customer, partner contacts), in recipient order."""
    groups: dict[tuple[str | None, tuple[str, ...]], list[Decision]] = {}
    for decision in decisions:
        if decision.effective is action and decision.deliver_to:
            groups.setdefault((decision.customer, tuple(sorted(decision.deliver_to))), []).append(decision)
    return [
        RerouteGroup(customer, members[0].customer_name, tuple(dict.fromkeys(c for d in members for c in d.deliver_to)), tuple(members))
        for (customer, _), members in groups.items()
    ]


def _notice_text(request: SendRequest, verdict: Verdict, group: RerouteGroup) -> str:
    first = group.decisions[0]
    rules = dict.fromkeys(f"{d.rule}" + (f" (seed rule {d.seed_rule})" if d.seed_rule else "") for d in group.decisions)
    reasons = dict.fromkeys(d.reason for d in group.decisions)
    lines = [
        "This message was addressed to a customer whose relationship with the vendor you own as its CSP partner.",
        "It was not delivered to the customer; it is forwarded to you instead, unchanged, as the attachment.",
        "",
        f"Customer:            {first.customer_name or 'unknown'} (tenant {first.customer or 'unknown'})",
        f"Original recipients: {', '.join(group.recipients)}",
        f"Original sender:     {request.sender}",
        f"Cloud:               {verdict.classification.cloud.value}",
        f"Category:            {first.category.value}",
        f"Product:             {first.product or 'not stated'}",
        f"Rule:                {', '.join(rules)}",
        f"Why:                 {' '.join(reasons)}",
        f"Message id:          {verdict.message_id}",
        "",
        "Replies to this message go to the original sender.",
    ]
    return "\r\n".join(lines) + "\r\n"


def partner_notice(original: EmailMessage, request: SendRequest, verdict: Verdict, group: RerouteGroup, from_address: str) -> bytes:
    """The message a partner receives: who and why in the body, the original attached as message/rfc822."""
    notice = EmailMessage(policy=email_policy.default)
    notice["From"] = from_address
    notice["To"] = ", ".join(group.deliver_to)
    notice["Reply-To"] = request.sender
    name = header_safe(group.customer_name or group.customer or "a CSP customer")
    notice["Subject"] = header_safe(f"[CSP customer {name}] {original.get('Subject', '')}".strip())
    notice[FILTER_RULE_HEADER] = header_safe(", ".join(dict.fromkeys(d.rule for d in group.decisions)))
    if group.customer:
        notice[FILTER_CUSTOMER_HEADER] = header_safe(group.customer)
    notice.set_content(_notice_text(request, verdict, group))
    notice.add_attachment(visible_copy(original, request, set(group.recipients)), filename="original-message.eml")
    return notice.as_bytes(policy=email_policy.SMTP)
