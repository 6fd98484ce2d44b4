"""The copies and notices made from the outbound original (`mailfilter.delivery.original`).

Copies change only the header fields the filter means to change, and never
re-serialise the rest, so DKIM signatures, List-Unsubscribe and every other
field and the body leave as they came. Every header value the filter writes
goes through `header_safe`, so neither a customer name nor a subject can inject a header.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from email import policy as email_policy
from email.headerregistry import Address as HeaderAddress

from mailfilter.delivery.original import Original, header_safe
from mailfilter.delivery.raw import HeaderField, Mail, RawMessage, address_field, new_field
from mailfilter.events.send_request import SendRequest
from mailfilter.vocabulary.addresses import normalise_address
from mailfilter.vocabulary.errors import InvalidAddressError
from mailfilter.vocabulary.model import Action, Decision, Verdict
from mailfilter.vocabulary.ses import FILTER_CUSTOMER_HEADER, FILTER_RULE_HEADER

# Headers that name recipients: a copy keeps only the addresses its reader may see.
NARROWED_HEADERS = ("To", "Cc", "Resent-To", "Resent-Cc")
# Headers that name hidden recipients or the original envelope: never in a copy.
HIDDEN_HEADERS = ("Bcc", "Resent-Bcc", "Apparently-To", "Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To")


def _narrowed(fields: Sequence[HeaderField], fallback: Sequence[str], visible: Collection[str], newline: bytes) -> list[HeaderField]:
    """The fields of one recipient header as `visible` may see them.

    A field that names only visible addresses is kept byte for byte; otherwise one field with
    its visible addresses (display names kept) is written, followed by the request's visible
    recipients the header lacked. Nothing is written when nothing is left.
    """
    kept: list[str] = []
    present: set[str] = set()
    changed = False
    for field in fields:
        parsed = email_policy.default.header_factory(field.name, field.text())
        for address in getattr(parsed, "addresses", ()):
            try:
                normalised = normalise_address(address.addr_spec)
            except InvalidAddressError:
                normalised = None  # an address that cannot be read is nobody's to see
            if normalised in visible and normalised not in present:
                # An address written in Unicode (a full-width stop) is written as delivered: normalised.
                kept.append(str(address) if address.addr_spec.isascii() else str(HeaderAddress(address.display_name, addr_spec=normalised)))
                present.add(normalised)
            else:
                changed = True
    missing = [a for a in fallback if a in visible and a not in present]
    if not changed and not missing:
        return list(fields)
    kept += missing
    return [address_field(fields[0].name if fields else "To", ", ".join(kept), newline)] if kept else []


def visible_copy(original: Original, request: SendRequest, visible: Collection[str]) -> RawMessage:
    """The original as one reader sees it: To, Cc and Resent-* narrowed to `visible`, hidden headers removed.

    An allowed copy shows the allowed recipients; a partner's notice attaches the copy that
    shows that customer's own recipients, so no reader learns who else was written to. Every
    other field, and the body, stays byte for byte.
    """
    message = original.raw
    for name in NARROWED_HEADERS:
        fallback = {"to": request.to, "cc": request.cc}.get(name.lower(), [])
        message = message.replacing(name, _narrowed(message.all(name), fallback, visible, message.newline))
    return message.without(HIDDEN_HEADERS)


def allowed_copy(original: Original, request: SendRequest, allowed: Collection[str]) -> Mail:
    """The original with its recipient headers narrowed to the allowed recipients; Bcc stays envelope-only."""
    return visible_copy(original, request, allowed).mail()


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


def partner_notice(original: Original, request: SendRequest, verdict: Verdict, group: RerouteGroup, from_address: str) -> Mail:
    """The message a partner receives: who and why in a text part, then the original as message/rfc822, byte for byte.

    Written in the original's own line breaks, so the attachment is the very bytes the
    customer would have received (narrowed to that customer's recipients).
    """
    nl = original.raw.newline
    attached = visible_copy(original, request, set(group.recipients)).mail()
    boundary = "=_mailfilter_" + secrets.token_hex(16)
    name = header_safe(group.customer_name or group.customer or "a CSP customer")
    subject = header_safe(f"[CSP customer {name}] {original.subject}".strip())
    head = [
        address_field("From", from_address, nl),
        address_field("To", ", ".join(group.deliver_to), nl),
        address_field("Reply-To", request.sender, nl),
        new_field("Subject", subject, nl),
        new_field(FILTER_RULE_HEADER, ", ".join(dict.fromkeys(d.rule for d in group.decisions)), nl),
        *([new_field(FILTER_CUSTOMER_HEADER, group.customer, nl)] if group.customer else []),
        HeaderField(b"MIME-Version: 1.0" + nl),
        HeaderField(f'Content-Type: multipart/mixed; boundary="{boundary}"'.encode("ascii") + nl),
    ]
    text = base64.encodebytes(_notice_text(request, verdict, group).encode("utf-8")).replace(b"\n", nl)
    delimiter = b"--" + boundary.encode("ascii")
    return Mail(
        (
            *(field.raw for field in head),
            nl,
            delimiter + nl,
            b'Content-Type: text/plain; charset="utf-8"' + nl,
            b"Content-Transfer-Encoding: base64" + nl,
            nl,
            text,
            delimiter + nl,
            b"Content-Type: message/rfc822" + nl,
            b'Content-Disposition: attachment; filename="original-message.eml"' + nl,
            *([] if attached.isascii() else [b"Content-Transfer-Encoding: 8bit" + nl]),
            nl,
            *attached.parts,
            nl,  # RFC 2046: the line break before a delimiter belongs to the delimiter, not to the part
            delimiter + b"--" + nl,
        )
    )
