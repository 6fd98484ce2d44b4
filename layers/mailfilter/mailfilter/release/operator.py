"""Releasing quarantined mail: deliver it as allow or reroute, with the functions' own delivery code.

Outbound send requests go out through the gateway's MIME builders. Inbound
mail is forwarded with the inbound filter's `forward_message` rewriting: a
blocked item to its desks (allow) or to the partner contacts stored with it
(reroute); a deferred item is re-driven through the filter itself
(`InboundFilter.redrive`), which decides again now that the cause is fixed.

The release is an operator's decision, so it is recorded as kind "released"
beside the original decisions (who, when, as what, to whom), and the
quarantine item is marked so it cannot be released twice by accident.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from mailfilter.aws.quarantine import QuarantineItem, Release
from mailfilter.aws.raw_mail import MailBucket
from mailfilter.delivery.mime import allowed_copy, compose_original, partner_notice, reroute_groups
from mailfilter.events.send_request import SendRequest
from mailfilter.events.ses_receipt import parse_receipt_event, receipt_message
from mailfilter.inbound.filter import InboundFilter, InboundOutcome, by_partner_contacts
from mailfilter.ports import DecisionRecorder, MailSender, QuarantineStore
from mailfilter.vocabulary.errors import EventError, ForwardError, MailUnavailable, ReleaseError, StoredMessageTooLarge
from mailfilter.vocabulary.message import Message
from mailfilter.vocabulary.model import Action, Category, Classification, Cloud, Decision, Direction, Evidence, Mode, Source, Verdict
from mailfilter.vocabulary.ses import SES_MAX_MESSAGE_BYTES


def verdict_from_dict(data: dict[str, Any]) -> Verdict:
    """The inverse of `Verdict.as_dict`, for verdicts stored with quarantined mail."""
    classification = Classification(
        category=Category(data["category"]),
        category_source=Source(data["category_source"]),
        product=data.get("product"),
        product_source=Source(data["product_source"]),
        cloud=Cloud(data["cloud"]),
        cloud_source=Source(data["cloud_source"]),
        products=tuple(data.get("products") or ([data["product"]] if data.get("product") else [])),
        evidence=tuple(Evidence(e["kind"], e["value"], Source(e["source"])) for e in data.get("evidence", ())),
    )
    decisions = tuple(
        Decision(
            **{
                **d,
                "action": Action(d["action"]),
                "effective": Action(d["effective"]),
                "category": Category(d["category"]),
                "deliver_to": tuple(d["deliver_to"]),
                "partners": tuple(d.get("partners", ())),
            }
        )
        for d in data["decisions"]
    )
    return Verdict(data["message_id"], Direction(data["direction"]), classification, Mode(data["mode"]), decisions)


def release(
    item: QuarantineItem,
    *,
    action: Action,
    by: str,
    mailer: MailSender,
    decisions: DecisionRecorder,
    from_address: str,
    mail: MailBucket | None = None,
    now: datetime | None = None,
    why: str | None = None,
) -> Release:
    """Deliver the blocked recipients' mail as `action`; returns the release to store on the item.

    A message the request named by `raw_key` is read from where the gateway kept it (`item.raw`), from `mail`'s bucket.
    """
    _check_releasable(item)
    if item.direction != Direction.OUTBOUND.value:
        raise ReleaseError(f"{item.id} is {item.direction} mail; release it with release_inbound")
    request = SendRequest.model_validate(item.request)
    original = compose_original(request, _kept_outgoing(item, mail) if request.raw_key else None)
    verdict = verdict_from_dict(item.verdict)
    now = now or datetime.now(UTC)
    blocked = [d for d in verdict.decisions if d.recipient in item.recipients]
    targets = _targets(item, blocked, action)
    tags = {"category": verdict.classification.category.value, "cloud": verdict.classification.cloud.value, "released": "true"}
    ses_ids: list[str] = []
    if action is Action.ALLOW:
        raw = allowed_copy(original, request, set(targets))
        ses_ids.append(mailer.send(raw, sender=request.sender, recipients=list(targets), tags=tags))
    else:
        rerouted = [d._replace(effective=Action.REROUTE, deliver_to=targets[d.recipient]) for d in blocked]
        for group in reroute_groups(rerouted):
            raw = partner_notice(original, request, verdict, group, from_address)
            ses_ids.append(mailer.send(raw, sender=from_address, recipients=group.deliver_to, tags=tags))
    released = _as_released(blocked, action, targets, by, now, why)
    decisions.record(replace(verdict, decisions=tuple(released)), kind="released")
    delivered = list(dict.fromkeys(a for d in released for a in d.deliver_to))
    return Release(by=by, at=now, action=action.value, delivered_to=delivered, ses_message_ids=ses_ids, reason=why)


def _kept_outgoing(item: QuarantineItem, mail: MailBucket | None) -> bytearray:
    if item.raw is None or mail is None:
        raise ReleaseError(f"{item.id} names its message by raw_key; it needs the mail bucket where the gateway kept it")
    try:
        return bytearray(mail.read_location(item.raw, max_bytes=SES_MAX_MESSAGE_BYTES))
    except MailUnavailable as error:
        raise ReleaseError(f"{item.id} cannot be read: {error}") from None


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

    `inbound` is the filter as the function builds it (`build_inbound_filter`): its
    mail bucket, mailer, decisions table and identity deliver and record the release.
    """
    _check_releasable(item)
    if item.direction != Direction.INBOUND.value:
        raise ReleaseError(f"{item.id} is {item.direction} mail; release it with release")
    now = now or datetime.now(UTC)
    kind = item.request.get("kind")
    if kind == "deferred":
        if action is not None:
            raise ReleaseError(
                f"{item.id} was deferred before the filter could finish: a release runs it through the filter again, "
                "which decides per desk; leave out --to"
            )
        return _redrive(item, by=by, inbound=inbound, now=now, why=why)
    if kind == "blocked":
        return InboundRelease(_release_blocked(item, action=action or Action.ALLOW, by=by, inbound=inbound, now=now, why=why))
    raise ReleaseError(f"{item.id} is an inbound item of unknown kind {kind!r}")


def _release_blocked(
    item: QuarantineItem, *, action: Action, by: str, inbound: InboundFilter, now: datetime, why: str | None = None
) -> Release:
    """Forward the preserved raw message to the blocked desks (allow) or their partner contacts (reroute)."""
    message = _inbound_message(item)
    verdict = verdict_from_dict(item.verdict)
    blocked = [d for d in verdict.decisions if d.recipient in item.recipients]
    targets = _targets(item, blocked, action)
    raw = _stored_raw(item, inbound)
    released = _as_released(blocked, action, targets, by, now, why)
    # One forward to every desk (allow), or one per distinct set of partner contacts (reroute).
    groups = {tuple(targets): released} if action is Action.ALLOW else by_partner_contacts(released)
    ses_ids: list[str] = []
    for contacts, group in groups.items():
        try:
            ses_ids.append(inbound.forward(raw, message, contacts, group, tags={"released": "true"}).ses_message_id)
        except ForwardError as error:
            raise ReleaseError(f"{item.id} cannot be forwarded: {error}") from None
    inbound.decisions.record(replace(verdict, decisions=tuple(released)), kind="released")
    delivered = list(dict.fromkeys(a for d in released for a in d.deliver_to))
    return Release(by=by, at=now, action=action.value, delivered_to=delivered, ses_message_ids=ses_ids, reason=why)


def _redrive(item: QuarantineItem, *, by: str, inbound: InboundFilter, now: datetime, why: str | None = None) -> InboundRelease:
    """Run a deferred item through the filter again; then deliver to the desks it now allows.

    SES's receipt rule finished long ago, so an allowed desk can no longer be delivered by
    the rule's later actions: it gets the stored message forwarded from the filter's identity.
    """
    message = _inbound_message(item)
    raw = _stored_raw(item, inbound)  # before the re-drive: with the message still missing, nothing happens
    attempt = f"release-{now:%Y%m%dT%H%M%SZ}"
    outcome = replace(inbound, quarantine=_KeptAsNew(inbound.quarantine, attempt)).redrive(item.request, desks=item.recipients)
    at = _stamp(now)
    stamp = f"Released by {by} at {at} (re-driven through the filter)."
    ses_ids = [delivery.ses_message_id for delivery in outcome.deliveries]
    delivered = [c for delivery in outcome.deliveries for c in delivery.partner_contacts]
    undelivered = failure = None
    if outcome.verdict is None:  # deferred again before a decision: the new deferred item says why
        inbound.decisions.record_outcome(
            message.message_id, Direction.INBOUND, inbound.policy.default_cloud, item.recipients, kind="released",
            error=f"{stamp} Deferred again: {outcome.deferred}",
        )  # fmt: skip
        return InboundRelease(Release(by=by, at=now, action="redrive", delivered_to=[], reason=why), outcome)

    allowed = [d for d in outcome.verdict.decisions if d.effective is Action.ALLOW and d.recipient not in outcome.held]
    desks = tuple(d.recipient for d in allowed)
    if allowed:
        group = [d._replace(reason=f"{stamp} {d.reason}") for d in allowed]
        try:
            ses_ids.append(inbound.forward(raw, message, desks, group, tags={"released": "true"}).ses_message_id)
            delivered = [*desks, *delivered]
        except Exception as error:  # the re-drive has acted: record and report rather than lose that
            failure = str(error)
            undelivered = f"not forwarded to {', '.join(desks)}: {failure}; the message stays at {item.request['raw']['key']}"

    def released(d: Decision) -> Decision:
        if d.recipient in outcome.held:
            return d._replace(deliver_to=(), reason=f"{stamp} Kept in quarantine as {outcome.quarantined}. {d.reason}")
        if d.effective is Action.ALLOW:
            note = f" Not forwarded to the desk: {failure}." if undelivered else ""
            return d._replace(deliver_to=() if undelivered else (d.recipient,), reason=f"{stamp}{note} {d.reason}")
        return d._replace(reason=f"{stamp} {d.reason}")

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


def _check_releasable(item: QuarantineItem) -> None:
    if item.released is not None:
        raise ReleaseError(f"{item.id} was already released by {item.released.by} at {item.released.at:%Y-%m-%d %H:%M} UTC")


def _targets(item: QuarantineItem, blocked: Sequence[Decision], action: Action) -> dict[str, tuple[str, ...]]:
    """Where each blocked recipient's mail goes: to itself (allow) or to its partner contacts (reroute)."""
    if action is Action.ALLOW:
        return {d.recipient: (d.recipient,) for d in blocked}
    if action is not Action.REROUTE:
        raise ReleaseError("a release delivers the mail: choose allow or reroute")
    missing = [d.recipient for d in blocked if not item.partner_contacts.get(d.recipient)]
    if missing:
        raise ReleaseError(f"no partner contact is known for {', '.join(missing)}; release it with --to allow instead")
    return {d.recipient: tuple(item.partner_contacts[d.recipient]) for d in blocked}


def _as_released(
    blocked: Sequence[Decision], action: Action, targets: dict[str, tuple[str, ...]], by: str, now: datetime, why: str | None = None
) -> list[Decision]:
    """The blocked decisions as the release carried them out: the record of kind "released", with who, when and why."""
    said = f" ({why})" if why else ""
    at = _stamp(now)
    return [
        d._replace(
            effective=action, deliver_to=targets[d.recipient], reason=f"Released by {by} at {at} as {action.value}{said}. {d.reason}"
        )
        for d in blocked
    ]


def _stamp(now: datetime) -> str:
    return now.strftime("%Y-%m-%dT%H:%M:%SZ")


def _inbound_message(item: QuarantineItem) -> Message:
    """The customer's message as the filter saw it (sender, SES id, desks), from the stored event."""
    try:
        return receipt_message(parse_receipt_event(item.request.get("event")))
    except EventError as error:
        raise ReleaseError(f"{item.id} holds an unusable SES event and cannot be released: {error}") from None


def _stored_raw(item: QuarantineItem, inbound: InboundFilter) -> bytes:
    try:
        return inbound.mail.read_location(item.request["raw"], max_bytes=SES_MAX_MESSAGE_BYTES)
    except MailUnavailable as error:
        raise ReleaseError(f"{item.id}: the stored message cannot be read, nothing was released: {error}") from None
    except StoredMessageTooLarge as error:
        raise ReleaseError(f"{item.id} cannot be sent through SES: {error}") from None
