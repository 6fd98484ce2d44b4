"""What an inbound quarantine item keeps (its `request`), so `quarantine release` can act again.

A blocked item is released as the operator chooses, from the stored message (`raw`).
A deferred item is run through the filter again (`InboundFilter.redrive`), from its event.
The event travels typed (`ReceiptEvent`) and is written as SES sent it; an event that never
parsed (the fail-safe keeps even those) is kept as received.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_serializer

from mailfilter.events.ses_receipt import ReceiptEvent, parse_receipt_event

HoldKind = Literal["blocked", "deferred"]


class InboundHold(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)

    kind: HoldKind
    ses_message_id: str
    # Parsed when it is an SES receipt event; anything else (a deferred unreadable event) as received.
    event: ReceiptEvent | Any = Field(union_mode="left_to_right")
    raw: dict[str, str]  # where the message is stored: {"bucket": ..., "key": ...}
    reasons: dict[str, str]  # per held desk, why it was held
    error: str | None  # why the filter could not finish (deferred items)

    @classmethod
    def of(cls, kind: HoldKind, event: Any, raw: Mapping[str, str], reasons: Mapping[str, str], error: str | None) -> InboundHold:
        """The hold the filter writes: `event` as it has it, parsed or (when it never parsed) as received."""
        ses_id = usable_message_id(event.mail.messageId) if isinstance(event, ReceiptEvent) else message_id_of(event)
        return cls.model_construct(kind=kind, ses_message_id=ses_id or "", event=event, raw=dict(raw), reasons=dict(reasons), error=error)

    def receipt_event(self) -> ReceiptEvent:
        """The kept event as an SES receipt event; `EventError` (with the reason) when it never was one."""
        return self.event if isinstance(self.event, ReceiptEvent) else parse_receipt_event(self.event)

    @field_serializer("event")
    def _as_sent(self, event: Any) -> Any:
        return event.model_dump(mode="json", by_alias=True, exclude_unset=True) if isinstance(event, ReceiptEvent) else event


def quarantine_message_id(ses_message_id: str, recipients: Sequence[str]) -> str:
    """SES invokes once per matching rule with one message id; each rule's share is its own item."""
    return f"{ses_message_id}#{recipients_group(recipients)}"


def recipients_group(recipients: Sequence[str]) -> str:
    """A short stable name for one receipt rule's recipients (SES invokes once per matching rule)."""
    return hashlib.sha256("\n".join(sorted(recipients)).encode("utf-8")).hexdigest()[:12]


def message_id_of(event: Any) -> str | None:
    """The SES message id of an event that did not validate, when it has a usable one."""
    try:
        value = event["Records"][0]["ses"]["mail"]["messageId"]
    except (KeyError, IndexError, TypeError):
        return None
    return usable_message_id(value)


def usable_message_id(value: Any) -> str | None:
    """An SES message id that can name a stored message: not empty, no "/", at most 200 characters."""
    return value if isinstance(value, str) and value and "/" not in value and len(value) <= 200 else None


def recipients_of(event: Any) -> list[str]:
    """The desks of an event that did not validate, as far as they can be read."""
    try:
        values = event["Records"][0]["ses"]["receipt"]["recipients"]
    except (KeyError, IndexError, TypeError):
        return []
    return [v for v in values if isinstance(v, str)] if isinstance(values, list) else []
