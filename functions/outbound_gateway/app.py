"""Outbound gateway: SQS batches of send requests in, each decided and acted on once (docs/outbound.md).

The handler only wires things (`mailfilter.wiring.outbound_gateway`, once per execution
environment) and hands each record to `mailfilter.outbound.gateway.OutboundGateway.handle`
through powertools' batch processor, which reports the records that raised back to SQS.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from mailfilter import wiring
from mailfilter.aws.policy_source import in_force
from mailfilter.metrics import count
from mailfilter.outbound.gateway import OutboundGateway
from mailfilter.ports import PolicySource
from mailfilter.tracing import traced

logger = Logger()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.SQS)


@cache
def build() -> OutboundGateway:
    """Built once per execution environment (warm starts reuse it)."""
    return wiring.outbound_gateway(count=count, logger=logger)


@cache
def policy() -> PolicySource | None:
    """AppConfig's policy when the template names it, re-read per batch from powertools' cache; None: the layer's."""
    return wiring.policy_source(logger)


@logger.inject_lambda_context
@traced
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    gateway = build()
    gateway.ledger.register(context)
    gateway = in_force(gateway, policy())  # no policy at all (a cold start without AppConfig): the whole batch returns to the queue

    def record_handler(record: SQSRecord) -> dict[str, Any]:
        return gateway.handle(record.body, fallback_id=record.message_id)

    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
