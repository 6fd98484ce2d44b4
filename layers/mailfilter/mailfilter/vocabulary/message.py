"""A message as the policy core sees it, whichever event it arrived in.

Event adapters (SES receipt, outbound send request, SES "Email Sent") build a
`Message`; the engine decides on it; nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailfilter.vocabulary.model import Direction, Source


@dataclass(frozen=True, slots=True)
class Declaration:
    """Category, product and cloud as the sender declared them (headers or request fields).

    Values are kept as given; the classifier decides whether to trust and how to read them.
    """

    source: Source  # Source.REQUEST or Source.HEADER
    category: str | None = None
    product: str | None = None
    cloud: str | None = None


@dataclass(frozen=True, slots=True)
class Authentication:
    """What the receiving mail server concluded about an inbound message (SES receipt verdicts)."""

    spf: str = "GRAY"
    dkim: str = "GRAY"
    dmarc: str = "GRAY"
    spam: str = "GRAY"
    virus: str = "GRAY"
    dmarc_policy: str | None = None  # the sender domain's published policy: none, quarantine, reject
    envelope_aligned: bool = False  # the envelope sender's domain is the From domain or under it


@dataclass(frozen=True, slots=True)
class Message:
    """What the core decides on, read once from what is delivered (`mailfilter.vocabulary.reading`).

    `subject` is already pattern text (decoded and normalised). `declarations` holds every
    declaration found (request fields, each declaring header); the classifier decides which
    it trusts. `unreadable` says why a header the decision depends on could not be read
    (an inbound From that is not one clean address): the engine then blocks every recipient.
    """

    message_id: str
    direction: Direction
    sender: str  # normalised; inbound, this is the customer side
    recipients: tuple[str, ...]  # normalised; outbound, each is a customer side
    subject: str = ""
    declarations: tuple[Declaration, ...] = ()
    authentication: Authentication | None = None  # inbound only
    unreadable: str | None = None
    identities: tuple[str, ...] = ()  # outbound: the addresses of the From and Sender headers, beside `sender`
