"""What the quarantine keeps: one item per held message, and the operator's release of it.

An item's `request` is what release needs to act again, in one of two declared shapes:
the send request as the gateway received it (`mailfilter.events.send_request.SendRequest`,
outbound) or the inbound filter's hold (`mailfilter.inbound.hold.InboundHold`). Each is
validated into its model where it is read; the store keeps the JSON.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Release(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)

    by: str
    at: datetime
    action: str  # "allow" or "reroute"; "redrive" for deferred inbound mail run through the filter again
    delivered_to: list[str]
    ses_message_ids: list[str] = Field(default_factory=list)
    reason: str | None = None  # why the operator released it (`quarantine release --reason`); None on items released before


class QuarantineItem(BaseModel):
    """One quarantined message: enough to explain it and to deliver it later."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    id: str
    message_id: str
    quarantined_at: datetime
    direction: str
    cloud: str
    customers: list[str]
    recipients: list[str]  # the blocked recipients
    request: dict[str, Any]  # the original, as received (for outbound: the send request)
    verdict: dict[str, Any]  # Verdict.as_dict(), every decision of the message
    partner_contacts: dict[str, list[str]] = Field(default_factory=dict)  # per blocked recipient, for release --to reroute
    raw: dict[str, str] | None = None  # where the message's bytes are kept when the request names them (`raw_key`)
    released: Release | None = None


def quarantine_id(message_id: str, at: datetime) -> str:
    """An item's id: its UTC day, then a digest of the message id (the same message on the same day is one item)."""
    digest = hashlib.sha256(message_id.encode()).hexdigest()[:20]
    return f"{at.astimezone(UTC):%Y%m%d}-{digest}"
