"""The one place that builds the use cases from their settings, for the functions and the CLI alike.

Each builder reads its settings class from the environment (or takes one), builds the
AWS adapters (`mailfilter.aws`) behind the ports the use case acts through, and returns
the use case ready to handle events. A function's `app.py` calls its builder once per
execution environment, and `mailfilter quarantine release` calls the same builders, so an
operator's release acts with exactly the parts the function has; `mailfilter demo` and
`invoke` run the handlers themselves.

Each builder imports its use case and adapters when it is called: a function's cold start
loads what that function runs, not every use case in the layer.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger

from mailfilter.metrics import uncounted
from mailfilter.ports import CountMetric, Log, PolicySource
from mailfilter.settings import AuditSettings, DigestSettings, InboundSettings, IntakeSettings, OutboundSettings, PolicySettings

if TYPE_CHECKING:
    from mailfilter.audit.sent_email import OutboundAudit
    from mailfilter.digests.digest import Digest
    from mailfilter.digests.run import DigestSender
    from mailfilter.inbound.filter import InboundFilter
    from mailfilter.outbound.gateway import OutboundGateway
    from mailfilter.outbound.smtp_intake import SmtpIntake
    from mailfilter.release.outbound import OutboundRelease

# ruff: noqa: PLC0415 - the builders import what they build (see above)


def policy_source(logger: Log | None = None) -> PolicySource | None:
    """AppConfig's policy when the environment names it; None: each use case keeps the policy it was built with."""
    from mailfilter.aws.policy_source import policy_source as appconfig_policy

    return appconfig_policy(PolicySettings.from_env(), logger=logger)


def inbound_filter(
    settings: InboundSettings | None = None, *, count: CountMetric = uncounted, logger: Log | None = None, once: bool = False
) -> InboundFilter:
    """The inbound filter; `once`: each receipt rule's share of a message handled once (the function), else every call acts."""
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

    from mailfilter.aws import clients
    from mailfilter.aws.decisions import DecisionLog
    from mailfilter.aws.directory_table import DynamoDirectory
    from mailfilter.aws.mailer import Mailer
    from mailfilter.aws.quarantine import Quarantine
    from mailfilter.aws.raw_mail import MailBucket
    from mailfilter.inbound.filter import InboundFilter

    settings = settings or InboundSettings.from_env()
    return InboundFilter(
        directory=DynamoDirectory(settings.directory_table),
        policy=settings.load(),
        mail=MailBucket(settings.mail_bucket, settings.inbound_prefix, settings.quarantine_prefix),
        quarantine=Quarantine(settings.mail_bucket, settings.quarantine_prefix),
        mailer=Mailer(configuration_set=settings.vendor_configuration_set),
        decisions=DecisionLog(settings.decisions_table, retention_days=settings.decision_retention_days),
        filter_from=settings.filter_from_address,
        logger=logger,
        log_addresses=settings.log_addresses,
        metrics=count,
        idempotency=DynamoDBPersistenceLayer(table_name=settings.idempotency_table, boto3_client=clients.client("dynamodb"))
        if once
        else None,
    )


def outbound_gateway(
    settings: OutboundSettings | None = None, *, count: CountMetric = uncounted, logger: Logger | None = None
) -> OutboundGateway:
    """The outbound gateway, its ledger in the idempotency table."""
    from mailfilter.aws.decisions import DecisionLog
    from mailfilter.aws.directory_table import DynamoDirectory
    from mailfilter.aws.ledger import MessageLedger
    from mailfilter.aws.mailer import Mailer
    from mailfilter.aws.quarantine import Quarantine
    from mailfilter.aws.raw_mail import MailBucket
    from mailfilter.outbound.gateway import OutboundGateway

    settings = settings or OutboundSettings.from_env()
    return OutboundGateway(
        directory=DynamoDirectory(settings.directory_table),
        policy=settings.load(),
        mailer=Mailer(configuration_set=settings.vendor_configuration_set),
        quarantine=Quarantine(settings.mail_bucket, settings.quarantine_prefix),
        decisions=DecisionLog(settings.decisions_table, retention_days=settings.decision_retention_days),
        ledger=MessageLedger(settings.idempotency_table, ttl_seconds=settings.idempotency_ttl_seconds),
        from_address=settings.filter_from_address,
        stored=MailBucket(settings.mail_bucket, quarantine_prefix=settings.quarantine_prefix),
        count=count,
        logger=logger or Logger(service="csp-mail-filter"),
        log_addresses=settings.log_addresses,
    )


def outbound_audit(settings: AuditSettings | None = None, *, count: CountMetric = uncounted, logger: Logger | None = None) -> OutboundAudit:
    from mailfilter.audit.sent_email import OutboundAudit
    from mailfilter.aws.decisions import DecisionLog
    from mailfilter.aws.directory_table import DynamoDirectory

    settings = settings or AuditSettings.from_env()
    logger = logger or Logger(service="csp-mail-filter")
    if not settings.filter_caller_identities:
        logger.warning("FILTER_CALLER_IDENTITIES is empty: the filter's own sends are audited like any other mail")
    return OutboundAudit(
        directory=DynamoDirectory(settings.directory_table),
        policy=settings.load(),
        decisions=DecisionLog(settings.decisions_table, retention_days=settings.decision_retention_days),
        filter_identities=frozenset(settings.filter_caller_identities),
        log_addresses=settings.log_addresses,
        count=count,
        logger=logger,
    )


def smtp_intake(settings: IntakeSettings | None = None) -> SmtpIntake:
    from mailfilter.aws.raw_mail import MailBucket
    from mailfilter.aws.request_queue import RequestQueue
    from mailfilter.outbound.smtp_intake import SmtpIntake

    settings = settings or IntakeSettings.from_env()
    return SmtpIntake(MailBucket(settings.mail_bucket), RequestQueue(settings.outbound_queue_url), settings.smtp_prefix)


def outbound_release(
    *, bucket: str, quarantine_prefix: str, decisions_table: str, from_address: str, configuration_set: str | None = None
) -> OutboundRelease:
    """Releasing outbound mail: SES for the sends, the decisions table for the record, the bucket for kept messages."""
    from mailfilter.aws.decisions import DecisionLog
    from mailfilter.aws.mailer import Mailer
    from mailfilter.aws.raw_mail import MailBucket
    from mailfilter.release.outbound import OutboundRelease

    return OutboundRelease(
        mailer=Mailer(configuration_set=configuration_set),
        decisions=DecisionLog(decisions_table),
        from_address=from_address,
        mail=MailBucket(bucket, quarantine_prefix=quarantine_prefix),
    )


DIGEST_RECORD_KINDS = frozenset({"decision", "released"})
# A digest's claim outlives any period a schedule's retry or an operator's re-run asks for again.
DIGEST_TTL_SECONDS = 40 * 24 * 3600


def digests(settings: DigestSettings | None = None, *, logger: Log | None = None) -> DigestSender:
    """The digests: the decisions table's `by-day` index to read, SES to send, the idempotency table to send each once."""
    from mailfilter.aws.ledger import MessageLedger
    from mailfilter.aws.mailer import Mailer
    from mailfilter.aws.trace import DecisionTrace, TraceFilter
    from mailfilter.digests.run import DigestSender

    settings = settings or DigestSettings.from_env()
    trace = DecisionTrace(settings.decisions_table)
    mailer = Mailer(configuration_set=settings.vendor_configuration_set)
    from_address = settings.filter_from_address

    def read(since: datetime, until: datetime) -> Any:
        return trace.records(TraceFilter(since=since, until=until, kinds=DIGEST_RECORD_KINDS))

    def send(digest: Digest) -> str:
        return mailer.send(digest.message(from_address), sender=from_address, recipients=list(digest.to), tags={"digest": digest.kind})

    ledger = MessageLedger(settings.idempotency_table, ttl_seconds=DIGEST_TTL_SECONDS)
    return DigestSender(policy=settings.load(), read=read, send=send, ledger=ledger, log=logger)
