"""What one digest is: to whom, its subject, text and HTML, its once-key and MIME message; and the lines it reports."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formatdate, make_msgid

from mailfilter.digests.request import Period
from mailfilter.vocabulary.addresses import domain_of


@dataclass(frozen=True)
class Digest:
    """One digest for one identity or partner and one period: its recipients, subject, text and HTML."""

    kind: str  # SENDERS or PARTNERS
    about: str  # the sending identity, or "<cloud>/<partner id>"
    period: Period
    to: tuple[str, ...]
    subject: str
    text: str
    html: str
    entries: int  # recipients (sender digests) or messages (partner summaries) it reports

    @property
    def key(self) -> str:
        """What makes it once: one digest per kind, period and identity or partner (`senders#2025-01-14#billing@...`)."""
        return f"{self.kind}#{self.period.key}#{self.about}"

    def message(self, from_address: str, *, now: datetime | None = None) -> bytes:
        """multipart/alternative: the text first, the HTML as the richer alternative."""
        message = EmailMessage()
        message["From"] = from_address
        message["To"] = ", ".join(self.to)
        message["Subject"] = self.subject
        message["Date"] = formatdate((now or datetime.now(UTC)).timestamp(), usegmt=True)
        message["Message-ID"] = make_msgid("digest", domain=domain_of(from_address))
        message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no out-of-office replies to a digest
        message.set_content(self.text)
        message.add_alternative(self.html, subtype="html")
        return message.as_bytes(policy=SMTP)


@dataclass(frozen=True)
class SenderLine:
    """One recipient of one message, as a sender digest reports it."""

    at: str
    message_id: str
    subject: str | None
    recipient: str
    customer: str
    outcome: str  # "blocked", "rerouted", "audit-blocked", "audit-rerouted"
    rule: str
    reason: str
    partners: str
    quarantine: str | None
    released: str | None


@dataclass
class PartnerWeek:
    """What was rerouted to one partner in a partner summary's period, per customer."""

    cloud: str
    partner_id: str
    name: str = ""
    contacts: tuple[str, ...] = ()
    contacts_at: str = ""
    # per customer: (direction, category, product) -> message ids; and message id -> subject
    customers: dict[str, dict[tuple[str, str, str], set[str]]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(set)))
    subjects: dict[str, str] = field(default_factory=dict)
