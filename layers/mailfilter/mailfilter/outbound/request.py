"""A send request read once: validated, composed, and read as the message SES will be given.

The gateway and `mailfilter explain` both call `read_send_request`, so a request
that one refuses the other refuses, with the same words. What the classifier
reads comes from the composed message's own headers (for `raw` requests, the
raw message), never from a request field that the delivered message contradicts:

- the subject is the message's Subject header; a `subject` field that says
  otherwise is refused, and so are two Subject headers;
- declarations are the request's fields and every declaring header of the message,
  all heard (the most restrictive category wins); a cloud declared twice differently is refused;
- From, Sender and Return-Path name vendor identities only, and the sender map hears From and Sender
  beside the request's `from` (a raw From of billing@ is billing mail, whoever sends it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mailfilter.delivery.original import Original, compose_original
from mailfilter.events.send_request import SendRequest, parse_send_request
from mailfilter.policy.config import Policy
from mailfilter.ports import StoredMail
from mailfilter.vocabulary.errors import CompositionError, EventError, StoredMessageMissing, StoredMessageTooLarge, UnreadableHeader
from mailfilter.vocabulary.message import Declaration, Message
from mailfilter.vocabulary.model import Direction, Source
from mailfilter.vocabulary.reading import address_list, header_declarations, pattern_text, subject_text, values
from mailfilter.vocabulary.ses import SES_MAX_MESSAGE_BYTES


class RefusedRequest(EventError):  # noqa: N818 - reads as the condition callers handle
    """A send request the gateway does not send; the text says why.

    `message_id` is the request's idempotency key when the request itself was valid, so the
    rejection is recorded where the sender looks for its message.
    """

    def __init__(self, error: str, message_id: str | None = None) -> None:
        super().__init__(error)
        self.message_id = message_id


@dataclass(frozen=True, slots=True)
class OutboundRequest:
    request: SendRequest
    original: Original  # what the sender asked to send, as bytes and as parsed
    message: Message  # what the core decides on, read from `original`


def read_send_request(data: Any, policy: Policy, stored: StoredMail | None = None) -> OutboundRequest:
    """Validate a decoded send request and read it as the gateway sends it; `RefusedRequest` otherwise.

    A request that names a stored message (`raw_key`) is read from `stored`; without one it is refused.
    """
    try:
        request = parse_send_request(data)
    except EventError as error:
        raise RefusedRequest(str(error)) from None
    return read_request(request, policy, stored)


def read_request(request: SendRequest, policy: Policy, stored: StoredMail | None = None) -> OutboundRequest:
    """A request that validated, read as the gateway sends it; `RefusedRequest` (with its message id) otherwise."""
    try:
        return _read(request, policy, stored)
    except RefusedRequest as error:
        raise RefusedRequest(str(error), request.effective_message_id) from None


def _read(request: SendRequest, policy: Policy, stored: StoredMail | None) -> OutboundRequest:
    if not policy.is_vendor_identity(request.sender):
        raise RefusedRequest(
            f"from {request.sender} is not a vendor identity: the gateway sends only from the policy's "
            f"vendor.domains {policy.vendor.domains} or vendor.identities"
        )
    try:
        original = compose_original(request, _stored_message(request, stored))
    except CompositionError as error:
        raise RefusedRequest(str(error)) from None
    headers = original.raw.items()  # read from the bytes that are delivered
    identities = _identities(headers, policy)
    _check_subject(request, headers)
    declarations = (
        Declaration(
            Source.REQUEST,
            category=request.category.value if request.category else None,
            product=request.product,
            cloud=request.cloud.value if request.cloud else None,
        ),
        *header_declarations(headers),
    )
    clouds = {pattern_text(d.cloud).lower() for d in declarations if d.cloud}
    if len(clouds) > 1:
        raise RefusedRequest(f"the cloud is declared more than once, differently ({', '.join(sorted(clouds))}); declare it once")
    message = Message(
        message_id=request.effective_message_id,
        direction=Direction.OUTBOUND,
        sender=request.sender,
        recipients=request.recipients,
        subject=subject_text(headers),
        declarations=declarations,
        identities=identities,
    )
    return OutboundRequest(request, original, message)


def _stored_message(request: SendRequest, stored: StoredMail | None) -> bytearray | None:
    if request.raw_key is None:
        return None
    if stored is None:
        raise RefusedRequest(f"raw_key {request.raw_key} names a stored message, and this reader has no mail bucket to read it from")
    try:
        return stored.read_outgoing(request.raw_key, max_bytes=SES_MAX_MESSAGE_BYTES)
    except StoredMessageMissing as error:
        raise RefusedRequest(str(error)) from None
    except StoredMessageTooLarge as error:
        raise RefusedRequest(f"{error}; it stays stored at {request.raw_key} until the bucket's lifecycle removes it") from None


# The headers that say who a message is from. Each must name vendor identities only: From and
# Sender are what the reader sees, Return-Path is where bounces go (SES sets its own MAIL FROM,
# but a reader or a forwarder may still act on the header). None is ever stripped silently.
IDENTITY_HEADERS = ("From", "Sender", "Return-Path")


def _identities(headers: list[tuple[str, str]], policy: Policy) -> tuple[str, ...]:
    """The addresses of the From and Sender headers; every identity header names vendor identities, or the request is refused."""
    shown: list[str] = []
    for name in IDENTITY_HEADERS:
        for value in values(headers, name):
            try:
                # Return-Path is `<address>`: read as the one-address header it is.
                addresses = address_list(value, header="Sender" if name == "Return-Path" else name)
            except UnreadableHeader as error:
                raise RefusedRequest(f"the message's {name} header cannot be read: {error}") from None
            strangers = [address for address in addresses if not policy.is_vendor_identity(address)]
            if strangers or not addresses:
                raise RefusedRequest(f"the message's {name} header ({', '.join(strangers) or 'empty'}) is not a vendor identity")
            if name != "Return-Path":
                shown += addresses
    if not shown:
        raise RefusedRequest("the message has no From header")
    return tuple(dict.fromkeys(shown))


def _check_subject(request: SendRequest, headers: list[tuple[str, str]]) -> None:
    # Two Subject headers never get here: `compose_original` refuses a header SES accepts only once.
    if request.raw is not None and request.subject and pattern_text(request.subject) != subject_text(headers):
        raise RefusedRequest(
            "subject differs from the raw message's Subject header, which is what is sent: leave subject out of a raw request"
        )
