"""The SMTP intake: a message Mail Manager received becomes the gateway's send request (docs/smtp.md).

Mail Manager stored the message under `outgoing/smtp/` and hands over the SMTP
envelope. The intake decides nothing: it reads only the stored header block to
tell which envelope recipients the message shows in To and in Cc (every other
envelope recipient is a Bcc recipient, decided like the rest), and puts one
send request naming the stored object (`raw_key`) on the gateway's queue. From
there the message takes the one path every send request takes: the gateway's
reading, lookup, decision, delivery, quarantine, records, idempotency and
dead-letter queue (docs/outbound.md).

The request's `message_id` is a digest of the stored object's key, so the same
stored message handed over twice is one request to the gateway's idempotency,
and is sent once.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from mailfilter.delivery.raw import split_message
from mailfilter.events.mail_manager import MailManagerInvocation, parse_mail_manager_event
from mailfilter.ports import Queue, StoredHeaders
from mailfilter.vocabulary.addresses import normalise_address
from mailfilter.vocabulary.errors import InvalidAddressError, UnreadableHeader
from mailfilter.vocabulary.reading import address_list
from mailfilter.vocabulary.ses import SES_MAX_RECIPIENTS, SMTP_PREFIX


@dataclass(frozen=True, slots=True)
class Intake:
    """What was queued for one intercepted message: one request, or one per 50 envelope recipients."""

    requests: tuple[dict[str, Any], ...]
    queued_as: tuple[str, ...]
    unreadable_headers: tuple[str, ...] = ()

    def summary(self) -> dict[str, Any]:
        """The function's response: ids and counts, no addresses (Mail Manager and logs see it)."""
        first = self.requests[0]
        return {
            "message_id": first["message_id"] if len(self.requests) == 1 else first["message_id"].rsplit(".part", 1)[0],
            "raw_key": first["raw_key"],
            "queued_as": self.queued_as[0] if len(self.queued_as) == 1 else list(self.queued_as),
            "recipients": {field: sum(len(r[field]) for r in self.requests) for field in ("to", "cc", "bcc")},
            **({"requests": [r["message_id"] for r in self.requests]} if len(self.requests) > 1 else {}),
            "unreadable_headers": list(self.unreadable_headers),
        }


def request_message_id(key: str) -> str:
    """The send request's idempotency key: the same stored object always gets the same one."""
    return "smtp:" + hashlib.sha256(key.encode()).hexdigest()[:40]


def send_requests(invocation: MailManagerInvocation, key: str, head: bytes) -> tuple[list[dict[str, Any]], tuple[str, ...]]:
    """The send requests for a stored message, and the To/Cc headers that could not be read.

    An envelope recipient the To headers name goes in `to`, one the Cc headers name
    (and To does not) in `cc`, every other one in `bcc`. A To or Cc header that does
    not read cleanly names nobody here, so its recipients are decided as Bcc
    recipients: hidden in every copy, never dropped. SES sends a message to at most 50
    recipients, so an envelope of more becomes one request per 50, in envelope order, each
    with its own stable message id (`<id>.part<i>of<n>`): each is decided and sent once,
    and each copy shows only its own recipients.
    """
    message = split_message(head)
    shown: dict[str, list[str]] = {"to": [], "cc": []}
    unreadable = []
    for header in ("To", "Cc"):
        for field in message.all(header):
            try:
                shown[header.lower()] += address_list(field.text(), header=header)
            except UnreadableHeader:
                unreadable.append(header)
    recipients: list[str] = []
    for written in invocation.envelope.rcpt_to:
        try:
            address = normalise_address(written)
        except InvalidAddressError:
            address = written  # as given: the gateway refuses the request with the field and the problem
        if address not in recipients:
            recipients.append(address)
    chunks = [recipients[start : start + SES_MAX_RECIPIENTS] for start in range(0, len(recipients), SES_MAX_RECIPIENTS)]
    requests = []
    for number, chunk in enumerate(chunks, 1):
        message_id = request_message_id(key) + (f".part{number}of{len(chunks)}" if len(chunks) > 1 else "")
        requests.append(
            {
                "message_id": message_id,
                "from": invocation.envelope.mail_from,
                "to": [a for a in chunk if a in shown["to"]],
                "cc": [a for a in chunk if a in shown["cc"] and a not in shown["to"]],
                "bcc": [a for a in chunk if a not in shown["to"] and a not in shown["cc"]],
                "raw_key": key,
            }
        )
    return requests, tuple(unreadable)


def intercept(event: Any, *, mail: StoredHeaders, queue: Queue, prefix: str = SMTP_PREFIX) -> Intake:
    """Parse the invocation, read the stored header block, queue the send request.

    Raises `EventError` for an invocation without what the intake needs, and
    `MailUnavailable` or `QueueUnavailable` when AWS fails: the function then
    fails, and Mail Manager retries the invocation (docs/smtp.md, "When the intake fails").
    """
    invocation = parse_mail_manager_event(event)
    key = invocation.object_key(prefix)
    block = mail.header_block(key)
    requests, unreadable = send_requests(invocation, key, block.head)
    return Intake(tuple(requests), tuple(queue.send(request) for request in requests), unreadable)


@dataclass(frozen=True)
class SmtpIntake:
    """The intake's collaborators, built once per execution environment (`mailfilter.wiring.smtp_intake`)."""

    mail: StoredHeaders
    queue: Queue
    prefix: str = SMTP_PREFIX

    def handle(self, event: Any) -> Intake:
        return intercept(event, mail=self.mail, queue=self.queue, prefix=self.prefix)
