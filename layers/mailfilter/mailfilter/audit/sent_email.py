"""The audit of SES's own "Email Sent" events: mail that left without passing the filter.

SES has no pre-send hook, so an application that calls SES directly is only
caught afterwards. Mail counts as the filter's own only when SES names one of
the filter's execution roles as the caller (its `ses:caller-identity` auto-tag);
nothing the sender writes (message tags, headers) is believed. For any other
message the audit decides every destination exactly as the gateway would and
records a `violation` for each one the rules would not have allowed (by the
policy's action, so audit mode counts too). A destination that is not one clean
address is recorded as a violation too, as SES gave it: no destination is dropped.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field, replace
from typing import Any

from aws_lambda_powertools import Logger

from mailfilter.engine import evaluate
from mailfilter.events.ses_sent import parse_email_sent_event, read_sent_mail
from mailfilter.metrics import uncounted
from mailfilter.policy.config import Policy
from mailfilter.policy.decide import security_block
from mailfilter.ports import CountMetric, DecisionRecorder, Directory
from mailfilter.vocabulary.addresses import mask, mask_in_text
from mailfilter.vocabulary.model import Action, Decision

VIOLATION = "violation"
UNREADABLE_DESTINATION = "unreadable-destination"


def audit_sent_email(
    event: Any,
    *,
    directory: Directory,
    policy: Policy,
    decisions: DecisionRecorder,
    count: CountMetric,
    logger: Logger,
    filter_identities: Collection[str] = (),
    log_addresses: bool = False,
) -> dict[str, Any]:
    """Returns what was found; an event that is not an SES "Email Sent" event raises `EventError`.

    `filter_identities` are the IAM identities (as SES writes them in `ses:caller-identity`) whose
    sends are the filter's own: the gateway's and the inbound filter's execution roles. Empty,
    every message is audited.
    """
    sent = parse_email_sent_event(event)
    reading = read_sent_mail(sent)
    message = reading.message
    logger.set_correlation_id(message.message_id)
    if sent.sent_by(frozenset(filter_identities)):
        return {"message_id": message.message_id, "status": "passed-gateway", "violations": 0}
    verdict = evaluate(message, directory, policy)
    unreadable = tuple(
        security_block(item.destination, UNREADABLE_DESTINATION, _unreadable_reason(item.reason), None, verdict.classification, policy)
        for item in reading.unreadable
    )
    violations = tuple(d for d in verdict.decisions if d.action is not Action.ALLOW) + unreadable
    if violations:
        decisions.record(replace(verdict, decisions=violations), kind=VIOLATION)
    cloud = verdict.classification.cloud.value
    for decision in violations:
        count("PolicyViolations", 1, decision.category.value, cloud)
        _warn(logger, decision, message.message_id, message.sender, cloud, log_addresses=log_addresses)
    return {"message_id": message.message_id, "status": "audited", "violations": len(violations)}


def _unreadable_reason(detail: str) -> str:
    """The reason template of an unreadable destination; the detail may quote the destination, braces and all."""
    escaped = detail.replace("{", "{{").replace("}", "}}")  # the template is str.format-ted with the customer's name
    return (
        f"SES sent this message to a destination that is not one clean address ({escaped}), "
        "so the customer it reached cannot be looked up; it is recorded rather than dropped."
    )


def _warn(logger: Logger, decision: Decision, message_id: str, sender: str, cloud: str, *, log_addresses: bool) -> None:
    logger.warning(
        f"policy violation: mail sent around the gateway breaks rule {decision.rule}",
        extra={
            "message_id": message_id,
            "rule": decision.rule,
            "seed_rule": decision.seed_rule,
            "action": decision.action.value,
            "recipient": decision.recipient if log_addresses else mask(decision.recipient),
            "customer": decision.customer,
            "sender": sender,
            "category": decision.category.value,
            "cloud": cloud,
            # An unreadable destination's reason may quote it.
            "reason": decision.reason if log_addresses else mask_in_text(decision.reason),
        },
    )


@dataclass(frozen=True)
class OutboundAudit:
    """The audit's collaborators, built once per execution environment (`mailfilter.wiring.outbound_audit`)."""

    directory: Directory
    policy: Policy
    decisions: DecisionRecorder
    filter_identities: frozenset[str] = frozenset()
    log_addresses: bool = False
    count: CountMetric = uncounted
    logger: Logger = field(default_factory=lambda: Logger(service="csp-mail-filter"))

    def handle(self, event: Any) -> dict[str, Any]:
        return audit_sent_email(
            event,
            directory=self.directory,
            policy=self.policy,
            decisions=self.decisions,
            count=self.count,
            logger=self.logger,
            filter_identities=self.filter_identities,
            log_addresses=self.log_addresses,
        )
