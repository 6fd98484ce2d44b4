"""Inbound filter: SES receipt-rule events in, a disposition out (docs/inbound.md).

The handler only wires things: settings from the environment, collaborators
built once per execution environment, powertools' logging, metrics and
tracing. The work is `mailfilter.inbound.InboundFilter.handle`.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer
from aws_lambda_powertools.utilities.typing import LambdaContext

from mailfilter.aws import clients
from mailfilter.aws.policy_source import in_force, policy_source
from mailfilter.inbound.filter import InboundFilter, build_inbound_filter
from mailfilter.metrics import count
from mailfilter.ports import PolicySource
from mailfilter.settings import InboundSettings, PolicySettings
from mailfilter.tracing import traced
from mailfilter.vocabulary.errors import PolicyUnavailable

logger = Logger()
metrics = Metrics()


@cache
def build() -> InboundFilter:
    """Collaborators from the environment, once per execution environment (warm starts reuse them)."""
    settings = InboundSettings.from_env()
    return build_inbound_filter(
        settings,
        metrics=count,
        logger=logger,
        idempotency=DynamoDBPersistenceLayer(table_name=settings.idempotency_table, boto3_client=clients.client("dynamodb")),
    )


@cache
def policy() -> PolicySource | None:
    """AppConfig's policy when the template names it, re-read per event from powertools' cache; None: the layer's."""
    return policy_source(PolicySettings.from_env(), logger=logger)


@logger.inject_lambda_context(correlation_id_path="Records[0].ses.mail.messageId")
@traced
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, str]:
    try:
        inbound = in_force(build(), policy())
    except PolicyUnavailable as error:  # no policy at all: decide nothing, keep the message for release
        return build().defer(event, str(error))
    return inbound.handle(event, context)
