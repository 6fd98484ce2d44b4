"""One run: the policy says whether today's digests go out; if so, read the period's records and send each digest once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from mailfilter.digests.digest import Digest
from mailfilter.digests.gather import partner_digests, sender_digests
from mailfilter.digests.request import PARTNERS, SENDERS, DigestRequest, request_from_event
from mailfilter.policy.config import Policy
from mailfilter.policy.sections import Weekday
from mailfilter.ports import Ledger, Once, ReadPeriod

WEEKDAYS = list(Weekday)  # Monday first, as date.weekday() counts


def run_digests(
    request: DigestRequest,
    *,
    policy: Policy,
    read: ReadPeriod,
    send: Callable[[Digest], str],
    once: Once,
    log: Any = None,
) -> dict[str, Any]:
    """Read the period's records, build the digests, and send each once; what happened, for the handler's response.

    `send` puts one digest on the wire and returns SES's message id; `once(key, work)` runs
    `work` the first time `key` is seen and answers later calls with `{"replayed": True, ...}`.
    A digest whose send fails is reported under "failed" and does not stop the others; the
    handler raises afterwards, so the schedule's retry sends just those.
    """
    settings = policy.digests
    result: dict[str, Any] = {"digest": request.kind, "period": request.period.key, "sent": [], "already_sent": [], "failed": []}
    section = settings.senders if request.kind == SENDERS else settings.partners
    if not settings.enabled or not section.enabled:
        switch = "enabled" if not settings.enabled else f"{request.kind}.enabled"
        _say(log, f"digests are off in the policy ([digests] {switch} = false): nothing sent", result)
        return {**result, "status": "off"}
    if request.kind == PARTNERS and request.scheduled:
        weekday = WEEKDAYS[request.moment.astimezone(UTC).weekday()]
        if weekday != settings.partners.weekday:
            _say(
                log, f"partner summaries go out on {settings.partners.weekday.value}s (policy), not {weekday.value}s: nothing sent", result
            )
            return {**result, "status": "not-today"}
    records = read(request.period.since, request.period.until)
    digests = (
        sender_digests(records, policy, request.period) if request.kind == SENDERS else partner_digests(records, policy, request.period)
    )
    for digest in digests:
        try:
            outcome = once(digest.key, lambda digest=digest: {"ses_message_id": send(digest)})
        except Exception as error:  # one digest's failure must not keep the others from going out
            result["failed"].append({"about": digest.about, "error": str(error)})
            if log is not None:
                log.error("digest not sent", extra={"digest": digest.key, "error": str(error)})
            continue
        result["already_sent" if outcome.get("replayed") else "sent"].append(digest.about)
    result["status"] = "failed" if result["failed"] else "done"
    if log is not None:
        log.info("digests", extra={k: v for k, v in result.items() if k != "failed"} | {"failed": len(result["failed"])})
    return result


def _say(log: Any, message: str, result: dict[str, Any]) -> None:
    result["message"] = message
    if log is not None:
        log.info(message, extra={"digest": result["digest"], "period": result["period"]})


@dataclass(frozen=True)
class DigestSender:
    """The digests' collaborators, built once per execution environment (`mailfilter.wiring.digests`)."""

    policy: Policy
    read: ReadPeriod
    send: Callable[[Digest], str]
    ledger: Ledger
    log: Any = None

    def handle(self, event: Any) -> dict[str, Any]:
        """A schedule event in (`DigestRequestError` when it names no digest), each due digest sent once."""
        request = request_from_event(event)
        return run_digests(request, policy=self.policy, read=self.read, send=self.send, once=self.ledger.once, log=self.log)
