"""What the inbound filter tells operators: its log lines (addresses masked unless allowed) and its counts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mailfilter.inbound.outcome import InboundOutcome
from mailfilter.metrics import DEFERRED, count_decisions
from mailfilter.policy.config import Policy
from mailfilter.ports import CountMetric, Log
from mailfilter.vocabulary.addresses import mask, mask_in_text
from mailfilter.vocabulary.message import Message
from mailfilter.vocabulary.model import Verdict


@dataclass(frozen=True, slots=True)
class InboundLog:
    logger: Log | None
    log_addresses: bool = False  # customer addresses are masked in logs unless this is set

    def address(self, address: str) -> str:
        return address if self.log_addresses else mask(address)

    def text(self, text: str) -> str:
        return text if self.log_addresses else mask_in_text(text)

    def say(self, level: str, text: str, **extra: Any) -> None:
        if self.logger is not None:
            log: Callable[..., None] = getattr(self.logger, level)
            log(text, extra=extra)

    def message(self, level: str, text: str, message: Message, outcome: InboundOutcome | None = None) -> None:
        extra: dict[str, Any] = {"ses_message_id": message.message_id, "sender": self.address(message.sender)}
        if outcome is not None:
            extra["disposition"] = outcome.disposition.value
            extra["decisions"] = [
                {"desk": d.recipient, "action": d.action.value, "effective": d.effective.value, "rule": d.rule,
                 "category": d.category.value, "customer": d.customer, "partners": list(d.partners)}
                for d in (outcome.verdict.decisions if outcome.verdict else ())
            ]  # fmt: skip
            extra["rerouted_to"] = [self.address(c) for delivery in outcome.deliveries for c in delivery.partner_contacts]
            if outcome.quarantined:
                extra["quarantine_id"] = outcome.quarantined
            if outcome.deferred:
                extra["error"] = self.text(outcome.deferred)
        self.say(level, text, **extra)


def desk_dimensions(policy: Policy, desk: str) -> tuple[str, str]:
    """A desk's (category, cloud) metric dimensions, from the policy's desk map."""
    entry = policy.desk_map.get(desk)
    cloud = entry.cloud if entry is not None and entry.cloud else policy.default_cloud
    return (entry.category.value if entry is not None else "general"), cloud.value


def count_inbound(metrics: CountMetric, policy: Policy, verdict: Verdict, deferred: set[str]) -> None:
    count_decisions(metrics, verdict, cloud_of=lambda d: desk_dimensions(policy, d.recipient)[1], deferred=deferred)


def count_deferred(metrics: CountMetric, policy: Policy, desks: list[str] | tuple[str, ...]) -> None:
    for desk in desks or ("unknown",):
        category, cloud = desk_dimensions(policy, desk)
        metrics(DEFERRED, 1, category, cloud)
