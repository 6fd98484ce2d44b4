"""Releasing inbound mail, with the inbound filter's own forwarding.

A blocked item goes to its desks (allow) or to the partner contacts stored with it
(reroute); a deferred item is re-driven through the filter itself
(`InboundFilter.redrive`), which decides again now that the cause is fixed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from mailfilter.events.ses_receipt import receipt_message
from mailfilter.inbound.filter import InboundFilter
from mailfilter.inbound.forwarding import by_partner_contacts
from mailfilter.inbound.hold import InboundHold
from mailfilter.inbound.outcome import InboundOutcome
from mailfilter.ports import QuarantineStore
from mailfilter.release.common import as_released, check_releasable, stamp, targets
from mailfilter.vocabulary.errors import EventError, ForwardError, MailUnavailable, ReleaseError, StoredMessageTooLarge
from mailfilter.vocabulary.holds import QuarantineItem, Release
from mailfilter.vocabulary.message import Message
from mailfilter.vocabulary.model import Action, Decision, Direction, Verdict
from mailfilter.vocabulary.ses import SES_MAX_MESSAGE_BYTES


@dataclass(frozen=True, slots=True)
class InboundRelease:
    """What releasing an inbound item did: the release to store on it and, for a re-drive, the filter's outcome."""

    release: Release
    outcome: InboundOutcome | None = None  # the re-drive's (deferred items only)
    undelivered: str | None = None  # why the desks the re-drive allowed did not get the message


def release_inbound(
    item: QuarantineItem, *, action: Action | None, by: str, inbound: InboundFilter, now: datetime | None = None, why: str | None = None
) -> InboundRelease:
    """Release an inbound item: a blocked one as `action` (default allow), a deferred one by re-driving it.

    `inbound` is the filter as the function builds it (`mailfilter.wiring.inbound_filter`): its
    mail bucket, mailer, decisions table and identity deliver and record the release.
    """
    check_releasable(item)
    if item.direction != Direction.INBOUND.value:
        raise ReleaseError(f"{item.id} is {item.direction} mail; release it with release")
    now = now or datetime.now(UTC)
    kind = item.request.get("kind")
    if kind not in ("deferred", "blocked"):
        raise ReleaseError(f"{item.id} is an inbound item of unknown kind {kind!r}")
    if kind == "deferred" and action is not None:
        raise ReleaseError(
            f"{item.id} was deferred before the filter could finish: a release runs it through the filter again, "
            "which decides per desk; leave out --to"
        )
    try:
        hold = InboundHold.model_validate(item.request)
    except ValidationError as error:
        raise ReleaseError(f"{item.id} holds an unusable inbound request and cannot be released: {error}") from None
    message = _inbound_message(item, hold)
    if hold.kind == "deferred":
        return _redrive(item, hold, message, by=by, inbound=inbound, now=now, why=why)
    return InboundRelease(_release_blocked(item, hold, message, action=action or Action.ALLOW, by=by, inbound=inbound, now=now, why=why))


def _release_blocked(
    item: QuarantineItem, hold: InboundHold, message: Message, *, action: Action, by: str, inbound: InboundFilter, now: datetime,
    why: str | None = None,
) -> Release:  # fmt: skip
    """Forward the preserved raw message to the blocked desks (allow) or their partner contacts (reroute)."""
    verdict = Verdict.from_dict(item.verdict)
    blocked = [d for d in verdict.decisions if d.recipient in item.recipients]
    to = targets(item, blocked, action)
    raw = _stored_raw(item, hold, inbound)
    released = as_released(blocked, action, to, by, now, why)
    # One forward to every desk (allow), or one per distinct set of partner contacts (reroute).
    groups = {tuple(to): released} if action is Action.ALLOW else by_partner_contacts(released)
    ses_ids: list[str] = []
    for contacts, group in groups.items():
        try:
            ses_ids.append(inbound.forward(raw, message, contacts, group, tags={"released": "true"}).ses_message_id)
        except ForwardError as error:
            raise ReleaseError(f"{item.id} cannot be forwarded: {error}") from None
    inbound.decisions.record(replace(verdict, decisions=tuple(released)), kind="released")
    delivered = list(dict.fromkeys(a for d in released for a in d.deliver_to))
    return Release(by=by, at=now, action=action.value, delivered_to=delivered, ses_message_ids=ses_ids, reason=why)


def _redrive(
    item: QuarantineItem, hold: InboundHold, message: Message, *, by: str, inbound: InboundFilter, now: datetime, why: str | None = None
) -> InboundRelease:
    """Run a deferred item through the filter again; then deliver to the desks it now allows.

    SES's receipt rule finished long ago, so an allowed desk can no longer be delivered by
    the rule's later actions: it gets the stored message forwarded from the filter's identity.
    """
    raw = _stored_raw(item, hold, inbound)  # before the re-drive: with the message still missing, nothing happens
    attempt = f"release-{now:%Y%m%dT%H%M%SZ}"
    outcome = replace(inbound, quarantine=_KeptAsNew(inbound.quarantine, attempt)).redrive(hold, desks=item.recipients)
    said = f"Released by {by} at {stamp(now)} (re-driven through the filter)."
    ses_ids = [delivery.ses_message_id for delivery in outcome.deliveries]
    delivered = [c for delivery in outcome.deliveries for c in delivery.partner_contacts]
    undelivered = failure = None
    if outcome.verdict is None:  # deferred again before a decision: the new deferred item says why
        inbound.decisions.record_outcome(
            message.message_id, Direction.INBOUND, inbound.policy.default_cloud, item.recipients, kind="released",
            error=f"{said} Deferred again: {outcome.deferred}",
        )  # fmt: skip
        return InboundRelease(Release(by=by, at=now, action="redrive", delivered_to=[], reason=why), outcome)

    allowed = [d for d in outcome.verdict.decisions if d.effective is Action.ALLOW and d.recipient not in outcome.held]
    desks = tuple(d.recipient for d in allowed)
    if allowed:
        group = [d._replace(reason=f"{said} {d.reason}") for d in allowed]
        try:
            ses_ids.append(inbound.forward(raw, message, desks, group, tags={"released": "true"}).ses_message_id)
            delivered = [*desks, *delivered]
        except Exception as error:  # the re-drive has acted: record and report rather than lose that
            failure = str(error)
            undelivered = f"not forwarded to {', '.join(desks)}: {failure}; the message stays at {hold.raw['key']}"

    def released(d: Decision) -> Decision:
        if d.recipient in outcome.held:
            return d._replace(deliver_to=(), reason=f"{said} Kept in quarantine as {outcome.quarantined}. {d.reason}")
        if d.effective is Action.ALLOW:
            note = f" Not forwarded to the desk: {failure}." if undelivered else ""
            return d._replace(deliver_to=() if undelivered else (d.recipient,), reason=f"{said}{note} {d.reason}")
        return d._replace(reason=f"{said} {d.reason}")

    inbound.decisions.record(replace(outcome.verdict, decisions=tuple(released(d) for d in outcome.verdict.decisions)), kind="released")
    release = Release(by=by, at=now, action="redrive", delivered_to=list(dict.fromkeys(delivered)), ses_message_ids=ses_ids, reason=why)
    return InboundRelease(release, outcome, undelivered)


class _KeptAsNew:
    """The quarantine a re-drive writes to: what it keeps becomes a new item.

    Item ids are the day and a digest of the message id, so a re-drive on the day of
    its item would otherwise overwrite the very item being released.
    """

    def __init__(self, store: QuarantineStore, attempt: str) -> None:
        self.store, self.attempt = store, attempt

    def put(self, *, message_id: str, **fields: Any) -> Any:
        return self.store.put(message_id=f"{message_id}#{self.attempt}", **fields)


def _inbound_message(item: QuarantineItem, hold: InboundHold) -> Message:
    """The customer's message as the filter saw it (sender, SES id, desks), from the kept event."""
    try:
        return receipt_message(hold.receipt_event())
    except EventError as error:
        raise ReleaseError(f"{item.id} holds an unusable SES event and cannot be released: {error}") from None


def _stored_raw(item: QuarantineItem, hold: InboundHold, inbound: InboundFilter) -> bytes:
    try:
        return inbound.mail.read_location(hold.raw, max_bytes=SES_MAX_MESSAGE_BYTES)
    except MailUnavailable as error:
        raise ReleaseError(f"{item.id}: the stored message cannot be read, nothing was released: {error}") from None
    except StoredMessageTooLarge as error:
        raise ReleaseError(f"{item.id} cannot be sent through SES: {error}") from None
