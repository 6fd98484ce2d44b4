"""SES receipt-rule events (inbound mail) as core messages.

powertools' parser model for SES accepts only asynchronous (`Event`) Lambda
actions and lacks the DKIM verdict and DMARC policy; the models below extend
it for the synchronous `RequestResponse` invocation the filter needs to
return a disposition.
"""

from __future__ import annotations

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

from mailfilter.vocabulary.addresses import domain_of, normalise_address
from mailfilter.vocabulary.errors import EventError, InvalidAddressError, UnreadableHeader
from mailfilter.vocabulary.message import Authentication, Message
from mailfilter.vocabulary.model import Direction
from mailfilter.vocabulary.reading import header_declarations, mailbox, subject_text, values
from mailfilter.vocabulary.validation import describe


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


def _aligned(envelope_domain: str, from_domain: str) -> bool:
    return envelope_domain == from_domain or envelope_domain.endswith("." + from_domain)


def _customer_side(headers: list[tuple[str, str]], envelope: str | None) -> tuple[str, str | None]:
    """(sender, why it is unreadable): the one clean address of the one From header.

    Anything else (no From, two From headers, a From the parser had to repair, a group,
    two addresses) leaves the sender unreadable; the engine then blocks every desk, so
    such mail is never relayed to a partner in a customer's name.
    """
    froms = values(headers, "From")
    if len(froms) != 1:
        return envelope or "", f"the message has {len(froms)} From headers, not one"
    try:
        return mailbox(froms[0]), None
    except UnreadableHeader as error:
        return envelope or "", str(error)


def receipt_message(event: ReceiptEvent) -> Message:
    """The customer side is the From address; the recipients are the vendor desks this rule matched."""
    mail, receipt = event.mail, event.receipt
    try:
        envelope = normalise_address(mail.source) if "@" in mail.source else None
    except InvalidAddressError:
        envelope = None
    try:
        desks = tuple(dict.fromkeys(normalise_address(r) for r in receipt.recipients))
    except InvalidAddressError as error:
        raise EventError(f"SES receipt event has an unusable address: {error}") from None
    if not desks:
        raise EventError("SES receipt event has no recipients in receipt.recipients")
    headers = [(header.name, header.value) for header in mail.headers]
    if not values(headers, "From") and mail.commonHeaders.header_from:  # SES truncated the header list
        headers += [("From", value) for value in mail.commonHeaders.header_from]
    if not values(headers, "Subject") and mail.commonHeaders.subject:
        headers.append(("Subject", mail.commonHeaders.subject))
    sender, unreadable = _customer_side(headers, envelope)
    return Message(
        message_id=mail.messageId,
        direction=Direction.INBOUND,
        sender=sender,
        recipients=desks,
        subject=subject_text(headers),
        declarations=header_declarations(headers),
        authentication=Authentication(
            spf=receipt.spfVerdict.status,
            dkim=receipt.dkimVerdict.status,
            dmarc=receipt.dmarcVerdict.status,
            spam=receipt.spamVerdict.status,
            virus=receipt.virusVerdict.status,
            dmarc_policy=receipt.dmarcPolicy,
            envelope_aligned=bool(envelope and sender) and _aligned(domain_of(envelope), domain_of(sender)),
        ),
        unreadable=unreadable,
    )
