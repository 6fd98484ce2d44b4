"""When the filter cannot finish, nothing is decided against the rules and nothing is lost.

The message stays where SES stored it; a deferred quarantine item points at it and says
why, a `deferred` record goes to the decisions table, and the disposition is STOP_RULE.
`quarantine release` later runs the kept event through the filter again.
"""

from __future__ import annotations

import traceback
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mailfilter.inbound.hold import InboundHold, message_id_of, quarantine_message_id, recipients_of
from mailfilter.inbound.observe import count_deferred
from mailfilter.inbound.outcome import Disposition, InboundOutcome
from mailfilter.vocabulary.errors import EventError
from mailfilter.vocabulary.model import Direction, Verdict

if TYPE_CHECKING:
    from mailfilter.inbound.filter import InboundFilter


def unreadable_event(inbound: InboundFilter, event: Any, error: EventError) -> InboundOutcome:
    """An event that did not validate: deferred when it names a stored message, refused when it is no SES event at all."""
    message_id = message_id_of(event)
    if message_id is None:
        # Not an SES receipt event at all (a misconfigured trigger): nothing to keep or record.
        inbound.log.say("error", "not an SES receipt event", error=inbound.log.text(str(error)))
        raise error
    return defer(inbound, event, message_id, recipients_of(event), str(error))


def defer(
    inbound: InboundFilter, event: Any, message_id: str, recipients: Sequence[str], error: str, verdict: Verdict | None = None
) -> InboundOutcome:
    """Nothing was delivered: a deferred quarantine item points at the stored message, and says why."""
    quarantined = None
    cloud = verdict.classification.cloud.value if verdict else inbound.policy.default_cloud.value
    try:
        item = inbound.quarantine.put(
            message_id=quarantine_message_id(message_id, recipients),
            direction=Direction.INBOUND.value,
            cloud=cloud,
            recipients=list(recipients),
            customers=[None],
            request=InboundHold.of("deferred", event, inbound.mail.location(message_id), {}, error).model_dump(mode="json"),
            verdict=verdict.as_dict() if verdict else {},
        )
        quarantined = item.id
    except Exception as keep_error:  # the decisions table and the error log still say so
        error = f"{error}; deferred item not written: {keep_error}"
    record_deferred(inbound, message_id, recipients, verdict, error)
    count_deferred(inbound.metrics, inbound.policy, tuple(recipients))
    inbound.log.say(
        "error",
        "inbound message deferred: nothing delivered, the message stays in the bucket",
        ses_message_id=message_id,
        error=inbound.log.text(error),
        quarantine_id=quarantined,
    )
    return InboundOutcome(message_id, Disposition.STOP_RULE, verdict, quarantined=quarantined, deferred=error, held=tuple(recipients))


def record_deferred(inbound: InboundFilter, message_id: str, recipients: Sequence[str], verdict: Verdict | None, error: str) -> None:
    cloud = verdict.classification.cloud if verdict else inbound.policy.default_cloud
    try:
        # An event that names no recipient still leaves a record, under "-" as the outbound gateway does.
        inbound.decisions.record_outcome(message_id, Direction.INBOUND, cloud, list(recipients) or ["-"], kind="deferred", error=error)
    except Exception:  # the quarantine record and the error log still say so
        inbound.log.say("error", "deferred outcome not recorded", ses_message_id=message_id, trace=traceback.format_exc())
