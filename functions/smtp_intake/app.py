"""SMTP intake: SES Mail Manager hands over a message applications sent by SMTP (docs/smtp.md).

Mail Manager's rule set stored the message under `outgoing/smtp/` and invokes
this function with the SMTP envelope. The work is `mailfilter.outbound.smtp_intake.intercept`:
one send request naming the stored object, Bcc recipients included, on the
gateway's queue. Nothing is decided or sent here: the gateway does that, as
for every send request. A failure raises, so Mail Manager retries the
invocation; the stored message stays where it is.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from mailfilter import wiring
from mailfilter.outbound.smtp_intake import SmtpIntake
from mailfilter.tracing import traced
from mailfilter.vocabulary.errors import EventError

logger = Logger()
metrics = Metrics()


@cache
def build() -> SmtpIntake:
    """Built once per execution environment (warm starts reuse it)."""
    return wiring.smtp_intake()


@logger.inject_lambda_context
@traced
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        intake = build().handle(event)
    except EventError as error:
        # Which fields the invocation had, never their values: enough to see how it differs.
        logger.error("not a Mail Manager invocation the intake can read", error=str(error), keys=sorted(event)[:20])
        raise
    summary = intake.summary()
    logger.append_keys(correlation_id=summary["message_id"])
    if intake.unreadable_headers:
        logger.warning("To or Cc could not be read: their recipients are sent as Bcc", headers=summary["unreadable_headers"])
    logger.info("queued for the gateway", **summary)
    metrics.add_metric(name="SmtpIntercepted", unit=MetricUnit.Count, value=1)
    return summary
