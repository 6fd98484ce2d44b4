"""Outbound audit: EventBridge SES "Email Sent" events in, violations recorded (docs/outbound.md)."""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.typing import LambdaContext

from mailfilter.audit.sent_email import audit_sent_email
from mailfilter.aws.decisions import DecisionLog
from mailfilter.aws.directory_table import DynamoDirectory
from mailfilter.aws.policy_source import current, policy_source
from mailfilter.metrics import count
from mailfilter.ports import PolicySource
from mailfilter.settings import AuditSettings, PolicySettings
from mailfilter.tracing import traced

logger = Logger()
metrics = Metrics()


@cache
def collaborators() -> dict[str, Any]:
    settings = AuditSettings.from_env()
    if not settings.filter_caller_identities:
        logger.warning("FILTER_CALLER_IDENTITIES is empty: the filter's own sends are audited like any other mail")
    return {
        "directory": DynamoDirectory(settings.directory_table),
        "policy": settings.load(),
        "decisions": DecisionLog(settings.decisions_table, retention_days=settings.decision_retention_days),
        "filter_identities": frozenset(settings.filter_caller_identities),
        "log_addresses": settings.log_addresses,
    }


@cache
def policy() -> PolicySource | None:
    """AppConfig's policy when the template names it, re-read per event from powertools' cache; None: the layer's."""
    return policy_source(PolicySettings.from_env(), logger=logger)


@logger.inject_lambda_context
@traced
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    parts = collaborators()
    # No policy at all (a cold start without AppConfig) raises: Lambda retries the event, then dead-letters it.
    return audit_sent_email(event, count=count, logger=logger, **{**parts, "policy": current(policy(), parts["policy"])})
