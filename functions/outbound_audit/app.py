"""Outbound audit: EventBridge SES "Email Sent" events in, violations recorded (docs/outbound.md).

The handler only wires things (`mailfilter.wiring.outbound_audit`, once per execution
environment); the work is `mailfilter.audit.sent_email.OutboundAudit.handle`.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.typing import LambdaContext

from mailfilter import wiring
from mailfilter.audit.sent_email import OutboundAudit
from mailfilter.aws.policy_source import in_force
from mailfilter.metrics import count
from mailfilter.ports import PolicySource
from mailfilter.tracing import traced

logger = Logger()
metrics = Metrics()


@cache
def build() -> OutboundAudit:
    """Built once per execution environment (warm starts reuse it)."""
    return wiring.outbound_audit(count=count, logger=logger)


@cache
def policy() -> PolicySource | None:
    """AppConfig's policy when the template names it, re-read per event from powertools' cache; None: the layer's."""
    return wiring.policy_source(logger)


@logger.inject_lambda_context
@traced
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # No policy at all (a cold start without AppConfig) raises: Lambda retries the event, then dead-letters it.
    return in_force(build(), policy()).handle(event)
