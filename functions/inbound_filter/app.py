"""Inbound filter: SES receipt-rule events in, a disposition out (docs/inbound.md).

The handler only wires things (`mailfilter.wiring.inbound_filter`, once per execution
environment); the work is `mailfilter.inbound.filter.InboundFilter.handle`.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.typing import LambdaContext

from mailfilter import wiring
from mailfilter.aws.policy_source import in_force
from mailfilter.inbound.filter import InboundFilter
from mailfilter.metrics import count
from mailfilter.ports import PolicySource
from mailfilter.tracing import traced
from mailfilter.vocabulary.errors import PolicyUnavailable

logger = Logger()
metrics = Metrics()


@cache
def build() -> InboundFilter:
    """Built once per execution environment (warm starts reuse it)."""
    return wiring.inbound_filter(count=count, logger=logger, once=True)


@cache
def policy() -> PolicySource | None:
    """AppConfig's policy when the template names it, re-read per event from powertools' cache; None: the layer's."""
    return wiring.policy_source(logger)


@logger.inject_lambda_context(correlation_id_path="Records[0].ses.mail.messageId")
@traced
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, str]:
    try:
        inbound = in_force(build(), policy())
    except PolicyUnavailable as error:  # no policy at all: decide nothing, keep the message for release
        return build().defer(event, str(error))
    return inbound.handle(event, context)
