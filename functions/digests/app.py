"""Digests: a schedule event in, each due digest sent once through SES (docs/policy.md, "Digests").

The handler only wires things: settings from the environment, collaborators built once per
execution environment, the policy in force (AppConfig's when the template names it). The work
is `mailfilter.digests.run_digests`; it reads the decisions table's `by-day` index through
`mailfilter.aws.trace` and claims each digest in the idempotency table before sending it.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from mailfilter.aws.ledger import MessageLedger
from mailfilter.aws.mailer import Mailer
from mailfilter.aws.policy_source import current, policy_source
from mailfilter.aws.trace import DecisionTrace, TraceFilter
from mailfilter.digests import Digest, Period, request_from_event, run_digests
from mailfilter.ports import PolicySource
from mailfilter.settings import DigestSettings, PolicySettings
from mailfilter.tracing import traced

logger = Logger()
metrics = Metrics()

RECORD_KINDS = frozenset({"decision", "released"})
# A digest's claim outlives any period a schedule's retry or an operator's re-run asks for again.
DIGEST_TTL_SECONDS = 40 * 24 * 3600


class DigestsFailed(RuntimeError):  # noqa: N818 - the name says what the schedule's retry sees
    """Some digests were not sent; the others were. The schedule's retry sends just those."""


@cache
def collaborators() -> tuple[MessageLedger, dict[str, Any]]:
    settings = DigestSettings.from_env()
    trace = DecisionTrace(settings.decisions_table)
    mailer = Mailer(configuration_set=settings.vendor_configuration_set)
    from_address = settings.filter_from_address

    def read(period: Period) -> Any:
        return trace.records(TraceFilter(since=period.since, until=period.until, kinds=RECORD_KINDS))

    def send(digest: Digest) -> str:
        return mailer.send(digest.message(from_address), sender=from_address, recipients=list(digest.to), tags={"digest": digest.kind})

    ledger = MessageLedger(settings.idempotency_table, ttl_seconds=DIGEST_TTL_SECONDS)
    return ledger, {"policy": settings.load(), "read": read, "send": send, "once": ledger.once}


@cache
def policy() -> PolicySource | None:
    """AppConfig's policy when the template names it, re-read per run from powertools' cache; None: the layer's."""
    return policy_source(PolicySettings.from_env(), logger=logger)


@logger.inject_lambda_context
@traced
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    ledger, parts = collaborators()
    ledger.register(context)
    request = request_from_event(event)  # DigestRequestError: a schedule misconfigured; retried, then the Errors alarm
    result = run_digests(request, log=logger, **{**parts, "policy": current(policy(), parts["policy"])})
    metrics.add_metric(name="DigestsSent", unit=MetricUnit.Count, value=len(result["sent"]))
    if result["failed"]:
        raise DigestsFailed(f"{len(result['failed'])} digest(s) not sent: {result['failed']}")
    return result
