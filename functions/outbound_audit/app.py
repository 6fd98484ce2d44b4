"""Outbound audit: EventBridge SES "Email Sent" events in, violations recorded (docs/outbound.md)."""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import field_validator

from mailfilter.aws.decisions import DecisionLog
from mailfilter.aws.directory_table import DynamoDirectory
from mailfilter.aws.policy_source import PolicySource, current, policy_source
from mailfilter.metrics import count
from mailfilter.outbound_audit import audit_sent_email
from mailfilter.settings import PolicySettings
from mailfilter.tracing import traced

logger = Logger()
metrics = Metrics()


class AuditSettings(PolicySettings):
    directory_table: str
    decisions_table: str
    decision_retention_days: int = 90
    log_addresses: bool = False
    # The IAM identities whose sends are the filter's own, as SES names the caller in its
    # `ses:caller-identity` auto-tag: the gateway's and the inbound filter's execution roles
    # (template.yaml). Comma-separated; unset, every message is audited.
    filter_caller_identities: tuple[str, ...] = ()

    @field_validator("filter_caller_identities", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value


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
