"""The outbound send request: what the vendor's applications hand to the gateway instead of SES.

Its fields are the documented contract (docs/send-request.md). Declared
category, product and cloud are trusted: only the vendor's own applications
can put a request on the gateway's queue. `mailfilter.outbound.request` reads
a valid request as the message the gateway sends.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from mailfilter.directory.records import Address, Product
from mailfilter.vocabulary.errors import EventError
from mailfilter.vocabulary.model import Category, Cloud
from mailfilter.vocabulary.ses import OUTGOING_PREFIX, SES_MAX_MESSAGE_BYTES, SES_MAX_RECIPIENTS
from mailfilter.vocabulary.validation import describe


def _header_name(value: str) -> str:
    if not value or any(ord(ch) <= 32 or ord(ch) >= 127 or ch == ":" for ch in value):
        raise ValueError(f"invalid header name {value!r}")
    return value


def _no_line_breaks(value: str) -> str:
    if any(ch in value for ch in "\r\n\x00"):
        raise ValueError("must not contain CR, LF or NUL")
    return value


HeaderValue = Annotated[str, AfterValidator(_no_line_breaks), StringConstraints(max_length=998)]
Subject = Annotated[str, AfterValidator(_no_line_breaks), StringConstraints(max_length=998)]


def _outgoing_key(value: str) -> str:
    if not value.startswith(OUTGOING_PREFIX) or len(value) == len(OUTGOING_PREFIX):
        raise ValueError(f"must be a key under {OUTGOING_PREFIX} in the mail bucket")
    if any(part in ("", ".", "..") for part in value[len(OUTGOING_PREFIX) :].split("/")) or any(ord(ch) < 32 for ch in value):
        raise ValueError("must be a plain key: no empty, '.' or '..' segments and no control characters")
    return value


StoredKey = Annotated[str, StringConstraints(max_length=1024), AfterValidator(_outgoing_key)]
MessageId = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@<>+=/-]*$")]


class SendRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True, defer_build=True)

    message_id: MessageId | None = Field(default=None, description="Idempotency key; derived from the content when absent.")
    sender: Address = Field(alias="from")
    to: list[Address] = Field(default_factory=list)
    cc: list[Address] = Field(default_factory=list)
    bcc: list[Address] = Field(default_factory=list)
    reply_to: list[Address] = Field(default_factory=list)
    subject: Subject = ""
    text: str | None = None
    html: str | None = None
    raw: str | None = Field(default=None, description="A complete MIME message, base64-encoded.")
    raw_key: StoredKey | None = Field(
        default=None, description="The S3 key, under outgoing/ in the mail bucket, of a complete MIME message."
    )
    category: Category | None = None
    product: Product | None = None
    cloud: Cloud | None = None
    headers: dict[Annotated[str, AfterValidator(_header_name)], HeaderValue] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _deliverable(self) -> SendRequest:
        count = len(self.recipients)
        if count == 0:
            raise ValueError("the request has no recipient in to, cc or bcc")
        if count > SES_MAX_RECIPIENTS:
            raise ValueError(f"the request has {count} recipients; SES accepts at most {SES_MAX_RECIPIENTS} per message")
        given = [name for name in ("raw", "raw_key") if getattr(self, name) is not None]
        if not given and self.text is None and self.html is None:
            raise ValueError("the request has no body: give text, html, raw or raw_key")
        if given and (len(given) > 1 or self.text is not None or self.html is not None):
            raise ValueError(f"{given[0]} is a complete message; do not combine it with {'raw_key' if len(given) > 1 else 'text or html'}")
        if self.raw is not None:
            try:
                base64.b64decode(self.raw, validate=True)
            except (binascii.Error, ValueError):
                raise ValueError("raw is not valid base64") from None
        if self.size_bytes > SES_MAX_MESSAGE_BYTES:
            raise ValueError(f"the message is {self.size_bytes} bytes; SES sends at most {SES_MAX_MESSAGE_BYTES}")
        return self

    @property
    def recipients(self) -> tuple[str, ...]:
        """Every envelope recipient once, in To, Cc, Bcc order."""
        return tuple(dict.fromkeys([*self.to, *self.cc, *self.bcc]))

    @property
    def size_bytes(self) -> int:
        """The message's size as SES counts it (a stored message's size is known once it is read)."""
        if self.raw is not None:
            return len(self.raw) * 3 // 4 - self.raw[-2:].count("=")  # decoded, not the base64 text
        return len((self.text or "").encode()) + len((self.html or "").encode()) + len(self.subject.encode())

    @property
    def effective_message_id(self) -> str:
        """The idempotency key: the given message_id, or a digest of the whole request."""
        if self.message_id:
            return self.message_id
        canonical = json.dumps(self.model_dump(mode="json", by_alias=True), sort_keys=True)
        return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()[:32]


def parse_send_request(data: Any) -> SendRequest:
    try:
        return SendRequest.model_validate(data)
    except ValidationError as error:
        raise EventError(f"invalid send request: {describe(error, root='(request)')}") from None


def decode_json(text: str) -> Any:
    """JSON as the gateway reads a queue body: a key given twice in one object is refused.

    Readers disagree about duplicate keys (Python keeps the last, others the first), so a
    request with two `category` keys could mean one thing to its author and another here.
    Raises ValueError (and RecursionError for nesting too deep), like `json.loads`.
    """
    return json.loads(text, object_pairs_hook=_unique_keys)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        twice = next(key for key, _ in pairs if key in seen or seen.add(key))
        raise ValueError(f"the key {twice!r} is given twice in one object; give each key once")
    return result
