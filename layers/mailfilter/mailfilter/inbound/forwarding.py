"""Forwarding a customer's stored message: to its partners (reroute), or to desks when an operator releases it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from mailfilter.delivery.forward import ForwardNotice, forward_message
from mailfilter.inbound.outcome import Delivery
from mailfilter.ports import MailSender
from mailfilter.vocabulary.message import Message
from mailfilter.vocabulary.model import Decision


def forward(
    mailer: MailSender,
    filter_from: str,
    raw: bytes,
    message: Message,
    contacts: tuple[str, ...],
    group: Sequence[Decision],
    *,
    tags: Mapping[str, str] | None = None,
) -> Delivery:
    """Send the raw message, rewritten by `forward_message`, from `filter_from` to `contacts` about the desks in `group`.

    `ForwardError`: the message cannot be forwarded (too large once rewritten, or nothing to forward).
    """
    first = group[0]
    notice = ForwardNotice(
        filter_from=filter_from,
        original_sender=message.sender,
        original_recipients=tuple(d.recipient for d in group),
        partner_contacts=contacts,
        reason=first.reason,
        rule=first.rule,
        ses_message_id=message.message_id,
        customer_name=first.customer_name,
    )
    forwarded = forward_message(raw, notice)
    tags = {"direction": "inbound", "category": first.category.value, "rule": first.rule, **(tags or {})}
    ses_id = mailer.send(forwarded, sender=filter_from, recipients=contacts, tags=tags)
    return Delivery(contacts, notice.original_recipients, ses_id)


def by_partner_contacts(decisions: Sequence[Decision]) -> dict[tuple[str, ...], list[Decision]]:
    """One forward per distinct set of partner contacts, naming every desk it was written to."""
    groups: dict[tuple[str, ...], list[Decision]] = {}
    for decision in decisions:
        groups.setdefault(decision.deliver_to, []).append(decision)
    return groups
