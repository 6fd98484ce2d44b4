"""The audit of SES's own "Email Sent" events: mail that left without passing the gateway.

SES has no pre-send hook, so an application that calls SES directly is only
caught afterwards. For each such message the audit decides every destination
exactly as the gateway would and records a `violation` for each one the
rules would not have allowed (by the policy's action, so audit mode counts too).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from aws_lambda_powertools import Logger

from mailfilter.addresses import mask
from mailfilter.directory import Directory
from mailfilter.engine import evaluate
from mailfilter.events.ses_sent import parse_email_sent_event, sent_message
from mailfilter.metrics import CountMetric
from mailfilter.model import Action
from mailfilter.policy.config import Policy
from mailfilter.ports import DecisionRecorder

VIOLATION = "violation"


def audit_sent_email(
    event: Any,
    *,
    directory: Directory,
    policy: Policy,
    decisions: DecisionRecorder,
    count: CountMetric,
    logger: Logger,
    log_addresses: bool = False,
) -> dict[str, Any]:
    """Returns what was found; an event that is not an SES "Email Sent" event raises `EventError`."""
    sent = parse_email_sent_event(event)
    message = sent_message(sent)
    logger.set_correlation_id(message.message_id)
    if sent.passed_gateway:
        return {"message_id": message.message_id, "status": "passed-gateway", "violations": 0}
    verdict = evaluate(message, directory, policy)
    violations = tuple(d for d in verdict.decisions if d.action is not Action.ALLOW)
    if violations:
        decisions.record(replace(verdict, decisions=violations), kind=VIOLATION)
    cloud = verdict.classification.cloud.value
    for decision in violations:
        count("PolicyViolations", 1, decision.category.value, cloud)
        logger.warning(
            f"policy violation: mail sent around the gateway breaks rule {decision.rule}",
            extra={
                "message_id": message.message_id,
                "rule": decision.rule,
                "seed_rule": decision.seed_rule,
                "action": decision.action.value,
                "recipient": decision.recipient if log_addresses else mask(decision.recipient),
                "customer": decision.customer,
                "sender": message.sender,
                "category": decision.category.value,
                "cloud": cloud,
                "reason": decision.reason,
            },
        )
    return {"message_id": message.message_id, "status": "audited", "violations": len(violations)}
