"""Outbound gateway: SQS batches of send requests in, each decided and acted on once (docs/outbound.md).

The handler only wires things: settings from the environment, collaborators
built once per execution environment, powertools' batch processor for
partial failures. The work is `mailfilter.outbound.OutboundGateway.handle`.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from mailfilter.aws.decisions import DecisionLog
from mailfilter.aws.directory_table import DynamoDirectory
from mailfilter.aws.ledger import MessageLedger
from mailfilter.aws.mailer import Mailer
from mailfilter.aws.policy_source import in_force, policy_source
from mailfilter.aws.quarantine import Quarantine
from mailfilter.aws.raw_mail import MailBucket
from mailfilter.metrics import count
from mailfilter.outbound.gateway import OutboundGateway
from mailfilter.ports import PolicySource
from mailfilter.settings import OutboundSettings, PolicySettings
from mailfilter.tracing import traced

logger = Logger()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.SQS)


@cache
def build() -> tuple[OutboundGateway, MessageLedger]:
    """Collaborators from the environment, once per execution environment (warm starts reuse them)."""
    settings = OutboundSettings.from_env()
    ledger = MessageLedger(settings.idempotency_table, ttl_seconds=settings.idempotency_ttl_seconds)
    gateway = OutboundGateway(
        directory=DynamoDirectory(settings.directory_table),
        policy=settings.load(),
        mailer=Mailer(configuration_set=settings.vendor_configuration_set),
        quarantine=Quarantine(settings.mail_bucket, settings.quarantine_prefix),
        decisions=DecisionLog(settings.decisions_table, retention_days=settings.decision_retention_days),
        ledger=ledger,
        from_address=settings.filter_from_address,
        stored=MailBucket(settings.mail_bucket, quarantine_prefix=settings.quarantine_prefix),
        count=count,
        logger=logger,
        log_addresses=settings.log_addresses,
    )
    return gateway, ledger


@cache
def policy() -> PolicySource | None:
    """AppConfig's policy when the template names it, re-read per batch from powertools' cache; None: the layer's."""
    return policy_source(PolicySettings.from_env(), logger=logger)


def handle_batch(event: dict[str, Any], context: LambdaContext | None, gateway: OutboundGateway) -> dict[str, Any]:
    """Each record is handled alone; the ones that raise are reported back to SQS for retry."""

    def record_handler(record: SQSRecord) -> dict[str, Any]:
        return gateway.handle(record.body, fallback_id=record.message_id)

    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)


@logger.inject_lambda_context
@traced
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    gateway, ledger = build()
    ledger.register(context)
    # No policy at all (a cold start without AppConfig): the whole batch returns to the queue.
    return handle_batch(event, context, in_force(gateway, policy()))
