"""What every release shares: it is an operator's decision, made once, recorded with who, when and why."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from mailfilter.vocabulary.errors import ReleaseError
from mailfilter.vocabulary.holds import QuarantineItem
from mailfilter.vocabulary.model import Action, Decision


def check_releasable(item: QuarantineItem) -> None:
    if item.released is not None:
        raise ReleaseError(f"{item.id} was already released by {item.released.by} at {item.released.at:%Y-%m-%d %H:%M} UTC")


def targets(item: QuarantineItem, blocked: Sequence[Decision], action: Action) -> dict[str, tuple[str, ...]]:
    """Where each blocked recipient's mail goes: to itself (allow) or to its partner contacts (reroute)."""
    if action is Action.ALLOW:
        return {d.recipient: (d.recipient,) for d in blocked}
    if action is not Action.REROUTE:
        raise ReleaseError("a release delivers the mail: choose allow or reroute")
    missing = [d.recipient for d in blocked if not item.partner_contacts.get(d.recipient)]
    if missing:
        raise ReleaseError(f"no partner contact is known for {', '.join(missing)}; release it with --to allow instead")
    return {d.recipient: tuple(item.partner_contacts[d.recipient]) for d in blocked}


def as_released(
    blocked: Sequence[Decision], action: Action, targets: dict[str, tuple[str, ...]], by: str, now: datetime, why: str | None = None
) -> list[Decision]:
    """The blocked decisions as the release carried them out: the record of kind "released", with who, when and why."""
    said = f" ({why})" if why else ""
    at = stamp(now)
    return [
        d._replace(
            effective=action, deliver_to=targets[d.recipient], reason=f"Released by {by} at {at} as {action.value}{said}. {d.reason}"
        )
        for d in blocked
    ]


def stamp(now: datetime) -> str:
    return now.strftime("%Y-%m-%dT%H:%M:%SZ")
