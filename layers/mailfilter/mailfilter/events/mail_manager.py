"""The event SES Mail Manager's InvokeLambda rule action hands the SMTP intake (docs/smtp.md).

The rule set stores each message an application sends to the ingress endpoint
(WriteToS3, prefix `outgoing/smtp/`) and then invokes the intake. What the
intake needs from the invocation is the SMTP envelope, because a stored MIME
object does not carry Bcc recipients: the MAIL FROM and every RCPT TO, and the
Mail Manager message id that names the stored object.

Field names follow Mail Manager's own `Envelope` type (`From`, `To`, `Helo`:
https://docs.aws.amazon.com/sesmailmanager/latest/APIReference/API_Envelope.html),
written in camel case as Lambda event payloads are. AWS does not publish the
InvokeLambda payload in a form this project could check without an account
(docs/smtp.md, "Not verified"): this module is the one place that knows the
shape, other fields are ignored, and a payload without what the intake needs is
refused with the field and the problem (`EventError`), so the first real
invocation either works or says exactly what differs.

Addresses are kept as written here: whether the envelope sender is a vendor
identity and whether each recipient is an address at all is decided by the
gateway's own reading of the send request, which records a refusal.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator

from mailfilter.vocabulary.errors import EventError
from mailfilter.vocabulary.validation import describe

# A Mail Manager message id becomes part of an S3 key and of the send request's message_id:
# letters, digits, '.', '_' and '-' only, so no id can climb out of the prefix ("../") or
# inject a separator.
MessageId = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
EnvelopeAddress = Annotated[str, StringConstraints(min_length=1, max_length=320)]


class Envelope(BaseModel):
    """The SMTP envelope: MAIL FROM, every RCPT TO, and the client's HELO."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    mail_from: EnvelopeAddress = Field(alias="from")
    rcpt_to: list[EnvelopeAddress] = Field(alias="to", min_length=1)
    helo: str | None = None

    @field_validator("mail_from", "rcpt_to", mode="before")
    @classmethod
    def _no_angle_brackets_or_line_breaks(cls, value: Any) -> Any:
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str) and any(ch in item for ch in "\r\n\x00"):
                raise ValueError("must not contain CR, LF or NUL")
        return value


class MailManagerInvocation(BaseModel):
    """One message Mail Manager received on the ingress endpoint and stored in the mail bucket."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    message_id: MessageId = Field(alias="messageId")
    envelope: Envelope

    def object_key(self, prefix: str) -> str:
        """Where the rule set's WriteToS3 action stored the message: the prefix, then the message id."""
        return prefix + self.message_id


def parse_mail_manager_event(data: Any) -> MailManagerInvocation:
    """The invocation, or `EventError` naming every field that is missing or wrong."""
    if not isinstance(data, dict):
        raise EventError(f"expected a Mail Manager invocation (a JSON object), got {type(data).__name__}")
    try:
        return MailManagerInvocation.model_validate(data)
    except ValidationError as error:
        raise EventError(f"invalid Mail Manager invocation: {describe(error, root='(event)')}") from None


def is_mail_manager_event(data: Any) -> bool:
    """Whether a JSON document looks like this invocation (for tools that accept any event)."""
    return isinstance(data, dict) and "messageId" in data and isinstance(data.get("envelope"), dict)
