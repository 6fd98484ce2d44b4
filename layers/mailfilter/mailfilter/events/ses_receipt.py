"""SES receipt-rule events (inbound mail) as core messages.

powertools' parser model for SES accepts only asynchronous (`Event`) Lambda
actions and lacks the DKIM verdict and DMARC policy; the models below extend
it for the synchronous `RequestResponse` invocation the filter needs to
return a disposition.
"""

from __future__ import annotations

from email.errors import HeaderParseError
from email.header import decode_header, make_header
from email.utils import getaddresses
from typing import Literal

from aws_lambda_powertools.utilities.parser.models.ses import (
    SesMail,
    SesMailCommonHeaders,
    SesMessage,
    SesModel,
    SesReceipt,
    SesReceiptAction,
    SesReceiptVerdict,
    SesRecordModel,
)
from pydantic import Field, ValidationError

from mailfilter.addresses import InvalidAddressError, domain_of, normalise_address
from mailfilter.events import EventError
from mailfilter.events.send_request import CATEGORY_HEADER, CLOUD_HEADER, PRODUCT_HEADER
from mailfilter.message import Authentication, Declaration, Message
from mailfilter.model import Direction, Source
from mailfilter.validation import describe


class CommonHeaders(SesMailCommonHeaders):
    """SES leaves out a header the message lacks: mail without a Subject, To or From still arrives."""

    header_from: list[str] = Field(default_factory=list, alias="from")
    to: list[str] = Field(default_factory=list)
    subject: str = ""
    date: str = ""
    messageId: str = ""  # noqa: N815
    returnPath: str = ""  # noqa: N815


class Mail(SesMail):
    commonHeaders: CommonHeaders  # noqa: N815


class ReceiptAction(SesReceiptAction):
    invocationType: Literal["Event", "RequestResponse"]  # noqa: N815 (SES's field name)


class ReceiptVerdict(SesReceiptVerdict):
    """SES reports DISABLED when spam and virus scanning is turned off for the rule."""

    status: Literal["PASS", "FAIL", "GRAY", "PROCESSING_FAILED", "DISABLED"]


class Receipt(SesReceipt):
    spamVerdict: ReceiptVerdict  # noqa: N815
    virusVerdict: ReceiptVerdict  # noqa: N815
    spfVerdict: ReceiptVerdict  # noqa: N815
    dmarcVerdict: ReceiptVerdict  # noqa: N815
    dkimVerdict: ReceiptVerdict = Field(default_factory=lambda: ReceiptVerdict(status="GRAY"))  # noqa: N815
    dmarcPolicy: str | None = None  # noqa: N815
    action: ReceiptAction


class ReceiptMessage(SesMessage):
    mail: Mail
    receipt: Receipt


class ReceiptRecord(SesRecordModel):
    ses: ReceiptMessage


class ReceiptEvent(SesModel):
    Records: list[ReceiptRecord] = Field(min_length=1, max_length=1)

    @property
    def mail(self) -> Mail:
        return self.Records[0].ses.mail

    @property
    def receipt(self) -> Receipt:
        return self.Records[0].ses.receipt


def parse_receipt_event(data: object) -> ReceiptEvent:
    try:
        return ReceiptEvent.model_validate(data)
    except ValidationError as error:
        raise EventError(f"not a valid SES receipt event: {describe(error, root='(event)')}") from None


def decoded_header(value: str) -> str:
    """An RFC 2047 encoded-word header as text; undecodable parts are kept as they came."""
    try:
        return str(make_header(decode_header(value)))
    except (HeaderParseError, LookupError, UnicodeError, ValueError):
        return value


def _first_address(values: list[str]) -> str | None:
    pairs = getaddresses(values)
    return pairs[0][1] if pairs and pairs[0][1] else None


def _aligned(envelope_domain: str, from_domain: str) -> bool:
    return envelope_domain == from_domain or envelope_domain.endswith("." + from_domain)


def receipt_message(event: ReceiptEvent) -> Message:
    """The customer side is the From address; the recipients are the vendor desks this rule matched."""
    mail, receipt = event.mail, event.receipt
    try:
        from_header = _first_address(mail.commonHeaders.header_from)
        sender = normalise_address(from_header or mail.source)
        envelope = normalise_address(mail.source) if "@" in mail.source else sender
        desks = tuple(dict.fromkeys(normalise_address(r) for r in receipt.recipients))
    except InvalidAddressError as error:
        raise EventError(f"SES receipt event has an unusable address: {error}") from None
    if not desks:
        raise EventError("SES receipt event has no recipients in receipt.recipients")
    headers = {header.name.lower(): header.value for header in mail.headers}
    return Message(
        message_id=mail.messageId,
        direction=Direction.INBOUND,
        sender=sender,
        recipients=desks,
        subject=decoded_header(mail.commonHeaders.subject),
        declaration=Declaration(
            source=Source.HEADER,
            category=headers.get(CATEGORY_HEADER.lower()),
            product=headers.get(PRODUCT_HEADER.lower()),
            cloud=headers.get(CLOUD_HEADER.lower()),
        ),
        authentication=Authentication(
            spf=receipt.spfVerdict.status,
            dkim=receipt.dkimVerdict.status,
            dmarc=receipt.dmarcVerdict.status,
            spam=receipt.spamVerdict.status,
            virus=receipt.virusVerdict.status,
            dmarc_policy=receipt.dmarcPolicy,
            envelope_aligned=_aligned(domain_of(envelope), domain_of(sender)),
        ),
    )
