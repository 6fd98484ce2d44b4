"""SES "Email Sent" events from EventBridge: mail that left through SES, for the outbound audit.

Who sent a message is read from SES's own auto-tag `ses:caller-identity` (the
IAM identity that called SES), never from a message tag or header: any SES
caller can write those. The gateway still tags what it sends (`GATEWAY_TAG`)
for dashboards and searches, but nothing here reads that tag.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from email.utils import getaddresses
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mailfilter.vocabulary.addresses import normalise_address
from mailfilter.vocabulary.errors import EventError, InvalidAddressError, UnreadableHeader
from mailfilter.vocabulary.message import Message
from mailfilter.vocabulary.model import Direction
from mailfilter.vocabulary.reading import address_list, subject_text, values
from mailfilter.vocabulary.ses import CALLER_IDENTITY_TAG
from mailfilter.vocabulary.validation import describe

# An unreadable destination is recorded as SES gave it, cut to the longest address SMTP allows
# (RFC 5321: 254 characters) so that a hostile value cannot bloat the record's key.
MAX_RECORDED_DESTINATION = 254


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, defer_build=True)


class SentHeader(_Lenient):
    name: str
    value: str


class SentCommonHeaders(_Lenient):
    header_from: list[str] = Field(default_factory=list, alias="from")
    subject: str = ""


class SentMail(_Lenient):
    messageId: str  # noqa: N815 (SES's field names)
    source: str
    destination: list[str] = Field(min_length=1)
    headers: list[SentHeader] = Field(default_factory=list)
    commonHeaders: SentCommonHeaders = Field(default_factory=SentCommonHeaders)  # noqa: N815
    tags: dict[str, list[str]] = Field(default_factory=dict)


class SentDetail(_Lenient):
    eventType: Literal["Send"]  # noqa: N815
    mail: SentMail


class EmailSentEvent(_Lenient):
    source: Literal["aws.ses"]
    detail_type: Literal["Email Sent"] = Field(alias="detail-type")
    detail: SentDetail

    @property
    def caller_identity(self) -> str | None:
        """The IAM identity SES says called it (`ses:caller-identity`); None unless SES gave exactly one."""
        found = self.detail.mail.tags.get(CALLER_IDENTITY_TAG, [])
        return found[0] if len(found) == 1 and found[0] else None

    def sent_by(self, identities: Collection[str]) -> bool:
        """Whether SES names one of `identities` as the caller; a missing or ambiguous tag is no one's."""
        caller = self.caller_identity
        return caller is not None and caller in identities


@dataclass(frozen=True, slots=True)
class UnreadableDestination:
    """A destination SES reports that is not one clean address: as given (trimmed and printable), and why."""

    destination: str
    reason: str


@dataclass(frozen=True, slots=True)
class SentMailReading:
    """An "Email Sent" event read for the audit: the message to decide, and every destination it could not read."""

    message: Message  # its recipients are the readable destinations, normalised; there may be none
    unreadable: tuple[UnreadableDestination, ...] = ()


def parse_email_sent_event(data: object) -> EmailSentEvent:
    try:
        return EmailSentEvent.model_validate(data)
    except ValidationError as error:
        raise EventError(f"not a valid SES 'Email Sent' event: {describe(error, root='(event)')}") from None


def recorded_destination(destination: str) -> str:
    """A destination as SES gave it, fit to be a record's key: non-printable characters as '?', at most 254 characters."""
    printable = "".join(ch if ch.isprintable() else "?" for ch in destination)  # controls, format and separators
    return printable[:MAX_RECORDED_DESTINATION] or "(empty)"


def _destination(value: str) -> str:
    """The one address a destination names, normalised; `UnreadableHeader` otherwise (parsed as a To header is)."""
    try:
        addresses = address_list(value, header="To")
    except UnreadableHeader as error:
        # address_list names the header it parsed as ("To ..."); here it is the destination.
        text = str(error)
        text = text.removeprefix("To: ") if text.startswith("To: ") else "the destination" + text.removeprefix("To")
        raise UnreadableHeader(text) from None
    if len(addresses) != 1:
        raise UnreadableHeader(f"the destination names {len(addresses)} addresses, not one")
    return addresses[0]


def read_sent_mail(event: EmailSentEvent) -> SentMailReading:
    """Every destination read with `mailfilter.vocabulary.reading`: readable ones to decide, the others kept with the reason.

    Outbound, every destination is a customer side. There are no declarations: mail that went
    around the gateway is read from its sender and subject only, so bypass mail cannot talk its
    way past the audit with an X-Communication-Category header. An unusable sender raises `EventError`.
    """
    mail = event.detail.mail
    try:
        from_pairs = getaddresses(mail.commonHeaders.header_from or [mail.source])
        sender = normalise_address(from_pairs[0][1] if from_pairs and from_pairs[0][1] else mail.source)
    except InvalidAddressError as error:
        raise EventError(f"SES 'Email Sent' event has an unusable sender: {error}") from None
    readable: dict[str, None] = {}
    unreadable: dict[str, UnreadableDestination] = {}
    for destination in mail.destination:
        try:
            readable[_destination(destination)] = None
        except UnreadableHeader as error:
            recorded = recorded_destination(destination)
            unreadable.setdefault(recorded, UnreadableDestination(recorded, str(error)))
    headers = [(header.name, header.value) for header in mail.headers]
    if not values(headers, "Subject") and mail.commonHeaders.subject:
        headers.append(("Subject", mail.commonHeaders.subject))
    message = Message(
        message_id=mail.messageId,
        direction=Direction.OUTBOUND,
        sender=sender,
        recipients=tuple(readable),
        subject=subject_text(headers),
    )
    # A record's key is its recipient: an unreadable destination never shares one with a decided address.
    return SentMailReading(message, tuple(item for key, item in unreadable.items() if key not in readable))


def sent_message(event: EmailSentEvent) -> Message:
    """The message an "Email Sent" event reports (`mailfilter explain`); an unreadable destination raises `EventError`."""
    reading = read_sent_mail(event)
    if reading.unreadable:
        first = reading.unreadable[0]
        raise EventError(f"SES 'Email Sent' event has an unusable destination {first.destination!r}: {first.reason}")
    return reading.message
