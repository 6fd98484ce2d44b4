"""Releasing quarantined outbound mail: deliver it as allow or reroute, with the gateway's own delivery code.

The release is an operator's decision, so it is recorded as kind "released"
beside the original decisions (who, when, as what, to whom), and the
quarantine item is marked so it cannot be released twice by accident.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from mailfilter.aws.quarantine import QuarantineItem, Release
from mailfilter.delivery.mime import allowed_copy, compose_original, partner_notice, reroute_groups
from mailfilter.events.send_request import SendRequest
from mailfilter.model import Action, Category, Classification, Cloud, Decision, Direction, Mode, Source, Verdict
from mailfilter.outbound import DecisionRecorder, Mailer


class ReleaseError(ValueError):
    """The item cannot be released as asked; the text says why."""


def verdict_from_dict(data: dict[str, Any]) -> Verdict:
    """The inverse of `Verdict.as_dict`, for verdicts stored with quarantined mail."""
    classification = Classification(
        category=Category(data["category"]),
        category_source=Source(data["category_source"]),
        product=data.get("product"),
        product_source=Source(data["product_source"]),
        cloud=Cloud(data["cloud"]),
        cloud_source=Source(data["cloud_source"]),
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
    mailer: Mailer,
    decisions: DecisionRecorder,
    from_address: str,
    now: datetime | None = None,
) -> Release:
    """Deliver the blocked recipients' mail as `action`; returns the release to store on the item."""
    if item.released is not None:
        raise ReleaseError(f"{item.id} was already released by {item.released.by} at {item.released.at:%Y-%m-%d %H:%M} UTC")
    if item.direction != Direction.OUTBOUND.value:
        raise ReleaseError(f"{item.id} is {item.direction} mail; only outbound send requests are released here")
    request = SendRequest.model_validate(item.request)
    original = compose_original(request)
    verdict = verdict_from_dict(item.verdict)
    now = now or datetime.now(UTC)
    at = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    blocked = [d for d in verdict.decisions if d.recipient in item.recipients]
    tags = {"category": verdict.classification.category.value, "cloud": verdict.classification.cloud.value, "released": "true"}
    ses_ids: list[str] = []
    if action is Action.ALLOW:
        targets = {d.recipient: (d.recipient,) for d in blocked}
        raw = allowed_copy(original, request, set(targets))
        ses_ids.append(mailer.send(raw, sender=request.sender, recipients=list(targets), tags=tags))
    elif action is Action.REROUTE:
        missing = [d.recipient for d in blocked if not item.partner_contacts.get(d.recipient)]
        if missing:
            raise ReleaseError(f"no partner contact is known for {', '.join(missing)}; release it with --to allow instead")
        targets = {d.recipient: tuple(item.partner_contacts[d.recipient]) for d in blocked}
        rerouted = [d._replace(effective=Action.REROUTE, deliver_to=targets[d.recipient]) for d in blocked]
        for group in reroute_groups(rerouted):
            raw = partner_notice(original, request, verdict, group, from_address)
            ses_ids.append(mailer.send(raw, sender=from_address, recipients=group.deliver_to, tags=tags))
    else:
        raise ReleaseError("a release delivers the mail: choose allow or reroute")
    released = [
        d._replace(effective=action, deliver_to=targets[d.recipient], reason=f"Released by {by} at {at} as {action.value}. {d.reason}")
        for d in blocked
    ]
    decisions.record(replace(verdict, decisions=tuple(released)), kind="released")
    delivered = list(dict.fromkeys(a for d in released for a in d.deliver_to))
    return Release(by=by, at=now, action=action.value, delivered_to=delivered, ses_message_ids=ses_ids)
