"""Digests: a schedule event in, each due digest sent once through SES (docs/policy.md, "Digests").

The handler only wires things (`mailfilter.wiring.digests`, once per execution environment);
the work is `mailfilter.digests.run.DigestSender.handle`. It raises when a digest was not
sent, so the schedule's retry sends just those.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from mailfilter import wiring
from mailfilter.aws.policy_source import in_force
from mailfilter.digests.run import DigestSender
from mailfilter.ports import PolicySource
from mailfilter.tracing import traced
from mailfilter.vocabulary.errors import DigestsFailed

logger = Logger()
metrics = Metrics()


@cache
def build() -> DigestSender:
    """Built once per execution environment (warm starts reuse it)."""
    return wiring.digests(logger=logger)


@cache
def policy() -> PolicySource | None:
    """AppConfig's policy when the template names it, re-read per run from powertools' cache; None: the layer's."""
    return wiring.policy_source(logger)


@logger.inject_lambda_context
@traced
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    digests = build()
    digests.ledger.register(context)
    # DigestRequestError: a schedule misconfigured; retried, then the Errors alarm.
    result = in_force(digests, policy()).handle(event)
    metrics.add_metric(name="DigestsSent", unit=MetricUnit.Count, value=len(result["sent"]))
    if result["failed"]:
        raise DigestsFailed(f"{len(result['failed'])} digest(s) not sent: {result['failed']}")
    return result
