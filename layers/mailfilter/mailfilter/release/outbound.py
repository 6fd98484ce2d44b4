"""Releasing a blocked outbound message: delivered with the gateway's own MIME builders, as allow or reroute."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime

from mailfilter.delivery.copies import allowed_copy, partner_notice, reroute_groups
from mailfilter.delivery.original import compose_original
from mailfilter.events.send_request import SendRequest
from mailfilter.ports import DecisionRecorder, MailSender, RawMailStore
from mailfilter.release.common import as_released, check_releasable, targets
from mailfilter.vocabulary.errors import MailUnavailable, ReleaseError
from mailfilter.vocabulary.holds import QuarantineItem, Release
from mailfilter.vocabulary.model import Action, Direction, Verdict
from mailfilter.vocabulary.ses import SES_MAX_MESSAGE_BYTES


def release(
    item: QuarantineItem,
    *,
    action: Action,
    by: str,
    mailer: MailSender,
    decisions: DecisionRecorder,
    from_address: str,
    mail: RawMailStore | None = None,
    now: datetime | None = None,
    why: str | None = None,
) -> Release:
    """Deliver the blocked recipients' mail as `action`; returns the release to store on the item.

    A message the request named by `raw_key` is read from where the gateway kept it (`item.raw`), from `mail`'s bucket.
    """
    check_releasable(item)
    if item.direction != Direction.OUTBOUND.value:
        raise ReleaseError(f"{item.id} is {item.direction} mail; release it with release_inbound")
    request = SendRequest.model_validate(item.request)
    original = compose_original(request, _kept_outgoing(item, mail) if request.raw_key else None)
    verdict = Verdict.from_dict(item.verdict)
    now = now or datetime.now(UTC)
    blocked = [d for d in verdict.decisions if d.recipient in item.recipients]
    to = targets(item, blocked, action)
    tags = {"category": verdict.classification.category.value, "cloud": verdict.classification.cloud.value, "released": "true"}
    ses_ids: list[str] = []
    if action is Action.ALLOW:
        raw = allowed_copy(original, request, set(to))
        ses_ids.append(mailer.send(raw, sender=request.sender, recipients=list(to), tags=tags))
    else:
        rerouted = [d._replace(effective=Action.REROUTE, deliver_to=to[d.recipient]) for d in blocked]
        for group in reroute_groups(rerouted):
            raw = partner_notice(original, request, verdict, group, from_address)
            ses_ids.append(mailer.send(raw, sender=from_address, recipients=group.deliver_to, tags=tags))
    released = as_released(blocked, action, to, by, now, why)
    decisions.record(replace(verdict, decisions=tuple(released)), kind="released")
    delivered = list(dict.fromkeys(a for d in released for a in d.deliver_to))
    return Release(by=by, at=now, action=action.value, delivered_to=delivered, ses_message_ids=ses_ids, reason=why)


def _kept_outgoing(item: QuarantineItem, mail: RawMailStore | None) -> bytearray:
    if item.raw is None or mail is None:
        raise ReleaseError(f"{item.id} names its message by raw_key; it needs the mail bucket where the gateway kept it")
    try:
        return bytearray(mail.read_location(item.raw, max_bytes=SES_MAX_MESSAGE_BYTES))
    except MailUnavailable as error:
        raise ReleaseError(f"{item.id} cannot be read: {error}") from None


@dataclass(frozen=True)
class OutboundRelease:
    """What releasing outbound mail acts through (`mailfilter.wiring.outbound_release`)."""

    mailer: MailSender
    decisions: DecisionRecorder
    from_address: str
    mail: RawMailStore | None = None

    def release(self, item: QuarantineItem, *, action: Action, by: str, now: datetime | None = None, why: str | None = None) -> Release:
        return release(
            item, action=action, by=by, mailer=self.mailer, decisions=self.decisions, from_address=self.from_address, mail=self.mail,
            now=now, why=why,
        )  # fmt: skip
