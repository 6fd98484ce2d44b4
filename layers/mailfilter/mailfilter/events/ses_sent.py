"""SES "Email Sent" events from EventBridge: mail that left through SES, for the outbound audit.

The gateway tags everything it sends (`GATEWAY_TAG`); SES copies message tags
into the event, so the audit can tell mail that bypassed the gateway.
"""

from __future__ import annotations

from email.utils import getaddresses
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mailfilter.addresses import InvalidAddressError, normalise_address
from mailfilter.events import EventError
from mailfilter.events.send_request import CATEGORY_HEADER, CLOUD_HEADER, PRODUCT_HEADER
from mailfilter.message import Declaration, Message
from mailfilter.model import Direction, Source
from mailfilter.validation import describe

GATEWAY_TAG = "csp-mail-filter"  # SES message tag name; value GATEWAY_TAG_VALUE
GATEWAY_TAG_VALUE = "gateway"


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
    def passed_gateway(self) -> bool:
        return GATEWAY_TAG_VALUE in self.detail.mail.tags.get(GATEWAY_TAG, [])


def parse_email_sent_event(data: object) -> EmailSentEvent:
    try:
        return EmailSentEvent.model_validate(data)
    except ValidationError as error:
        raise EventError(f"not a valid SES 'Email Sent' event: {describe(error, root='(event)')}") from None


def sent_message(event: EmailSentEvent) -> Message:
    """Outbound: every destination is a customer side; headers declare only if the sender is a vendor identity."""
    mail = event.detail.mail
    try:
        from_pairs = getaddresses(mail.commonHeaders.header_from or [mail.source])
        sender = normalise_address(from_pairs[0][1] if from_pairs and from_pairs[0][1] else mail.source)
        recipients = tuple(dict.fromkeys(normalise_address(address) for address in mail.destination))
    except InvalidAddressError as error:
        raise EventError(f"SES 'Email Sent' event has an unusable address: {error}") from None
    headers = {header.name.lower(): header.value for header in mail.headers}
    return Message(
        message_id=mail.messageId,
        direction=Direction.OUTBOUND,
        sender=sender,
        recipients=recipients,
        subject=mail.commonHeaders.subject,
        declaration=Declaration(
            source=Source.HEADER,
            category=headers.get(CATEGORY_HEADER.lower()),
            product=headers.get(PRODUCT_HEADER.lower()),
            cloud=headers.get(CLOUD_HEADER.lower()),
        ),
    )
