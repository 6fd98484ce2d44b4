"""The outbound gateway's work for one send request: validate, decide, then act on each decision.

`OutboundGateway.handle` is what the SQS handler runs per record. It receives
every collaborator (directory, policy, mailer, quarantine, decisions log,
progress, idempotency) in its constructor, so tests build one with local or
fake parts and nothing is patched.

Order of work for a valid request, each step done at most once per message:

1. `evaluate` (one directory lookup for every recipient);
2. allow: one SES send to the allowed recipients, To/Cc/Bcc kept for them only;
3. reroute: one notice per (customer, partner contacts), the original attached;
4. block: the request and its verdict into the S3 quarantine;
5. the verdict into the decisions table.

The whole is wrapped in powertools idempotency keyed by the request's
effective message id, so a redelivered record or a repeated `message_id`
sends nothing; `SendProgress` remembers finished steps so a retry after a
partial failure resumes instead of repeating (see `mailfilter.aws.progress`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from aws_lambda_powertools import Logger

from mailfilter.addresses import mask, mask_in_text
from mailfilter.delivery.mime import allowed_copy, partner_notice, reroute_groups
from mailfilter.directory import Directory
from mailfilter.directory.records import Address
from mailfilter.directory.view import CustomerMatch
from mailfilter.engine import evaluate
from mailfilter.events.send_request import decode_json
from mailfilter.metrics import CountMetric, uncounted
from mailfilter.model import Action, Cloud, Decision, Direction, Verdict
from mailfilter.outbound_request import OutboundRequest, RefusedRequest, read_send_request
from mailfilter.policy.config import Policy
from mailfilter.ports import DecisionRecorder, MailSender, QuarantineStore
from mailfilter.settings import PolicySettings

ALLOW_STEP = "allow"
QUARANTINE_STEP = "quarantine"
RECORD_STEP = "record"
NO_RECIPIENT = "-"  # the recipient recorded for a request too broken to name one


class OutboundSettings(PolicySettings):
    """The outbound functions' environment (template.yaml sets these)."""

    directory_table: str
    decisions_table: str
    idempotency_table: str
    mail_bucket: str
    quarantine_prefix: str = "quarantine/"
    filter_from_address: Address
    vendor_configuration_set: str | None = None
    decision_retention_days: int = 90
    idempotency_ttl_seconds: int = 7 * 24 * 3600  # a repeated message_id within this window sends nothing
    log_addresses: bool = False  # customer addresses are masked in logs unless this is true


class Progress(Protocol):
    def completed(self, message_id: str) -> frozenset[str]: ...

    def mark(self, message_id: str, step: str) -> None: ...


# Runs `work` once per key: the second call with a key returns the first call's result.
Once = Callable[[str, Callable[[], dict[str, Any]]], dict[str, Any]]


def run_every_time(key: str, work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """A `Once` without memory, for tools that must act every time (`explain`-like checks)."""
    return work()


class _RecordingDirectory:
    """Passes lookups through and keeps the matches, so blocked mail can carry its partners' contacts."""

    def __init__(self, directory: Directory) -> None:
        self._directory = directory
        self.matches: dict[str, CustomerMatch | None] = {}

    def lookup(self, cloud: Cloud, addresses: Sequence[str]) -> dict[str, CustomerMatch | None]:
        found = self._directory.lookup(cloud, addresses)
        self.matches.update(found)
        return found


METRIC_FOR_ACTION = {Action.ALLOW: "Allowed", Action.REROUTE: "Rerouted", Action.BLOCK: "Blocked"}


@dataclass
class OutboundGateway:
    directory: Directory
    policy: Policy
    mailer: MailSender
    quarantine: QuarantineStore
    decisions: DecisionRecorder
    progress: Progress
    from_address: str
    once: Once = run_every_time
    count: CountMetric = uncounted
    logger: Logger = field(default_factory=lambda: Logger(service="csp-mail-filter"))
    log_addresses: bool = False

    def _show(self, addresses: Sequence[str]) -> list[str]:
        return list(addresses) if self.log_addresses else [mask(a) for a in addresses]

    def handle(self, body: str, *, fallback_id: str = "") -> dict[str, Any]:
        """Process one queue message body. Invalid requests are recorded and return normally (no retry)."""
        try:
            data = decode_json(body)
        except (ValueError, RecursionError) as error:  # not JSON, nested too deep, a number too long, a key twice
            loose = _loose_json(body)  # only to record the refusal where the sender looks for it
            return self._reject(_given_id(loose, fallback_id), loose, f"the queue message body is not JSON: {error}")
        try:
            reading = read_send_request(data, self.policy)
        except RefusedRequest as error:
            return self._reject(error.message_id or _given_id(data, fallback_id), data, str(error))
        request = reading.request
        self.logger.set_correlation_id(request.effective_message_id)
        result = self.once(request.effective_message_id, lambda: self._deliver(reading))
        if result.get("replayed"):
            self.logger.info("send request already processed; nothing sent again", extra={"message_id": result["message_id"]})
            self.count("Duplicates", 1, "none", (request.cloud or self.policy.default_cloud).value)
        return result

    def _reject(self, message_id: str, data: Any, error: str) -> dict[str, Any]:
        message_id = message_id or "unidentified"
        recipients = _given_recipients(data) or [NO_RECIPIENT]
        cloud = _given_cloud(data) or self.policy.default_cloud
        self.decisions.record_outcome(message_id, Direction.OUTBOUND, cloud, recipients, kind="rejected", error=error)
        self.count("Rejected", 1, "none", cloud.value)
        self.logger.set_correlation_id(message_id)
        shown = error if self.log_addresses else mask_in_text(error)
        self.logger.warning("send request rejected", extra={"message_id": message_id, "error": shown})
        return {"message_id": message_id, "status": "rejected", "error": error}

    def _deliver(self, reading: OutboundRequest) -> dict[str, Any]:
        request, original = reading.request, reading.original
        message_id = request.effective_message_id
        directory = _RecordingDirectory(self.directory)
        verdict = evaluate(reading.message, directory, self.policy)
        done = self.progress.completed(message_id)
        cloud = verdict.classification.cloud.value
        tags = {"category": verdict.classification.category.value, "cloud": cloud}
        sent: dict[str, str] = {}

        allowed = [d.recipient for d in verdict.decisions if d.effective is Action.ALLOW]
        if allowed and ALLOW_STEP not in done:
            raw = allowed_copy(original, request, set(allowed))
            sent[ALLOW_STEP] = self.mailer.send(raw, sender=request.sender, recipients=allowed, tags=tags)
            self.progress.mark(message_id, ALLOW_STEP)

        for group in reroute_groups(verdict.decisions):
            if group.step in done:
                continue
            raw = partner_notice(original, request, verdict, group, self.from_address)
            sent[group.step] = self.mailer.send(raw, sender=self.from_address, recipients=group.deliver_to, tags=tags)
            self.progress.mark(message_id, group.step)

        blocked = [d for d in verdict.decisions if d.effective is Action.BLOCK]
        quarantine_id = None
        if blocked and QUARANTINE_STEP not in done:
            item = self.quarantine.put(
                message_id=message_id,
                direction=Direction.OUTBOUND.value,
                cloud=cloud,
                recipients=[d.recipient for d in blocked],
                customers=[d.customer for d in blocked],
                request=request.model_dump(mode="json", by_alias=True, exclude_none=True),
                verdict=verdict.as_dict(),
                partner_contacts=_partner_contacts(blocked, directory.matches),
            )
            quarantine_id = item.id
            self.progress.mark(message_id, QUARANTINE_STEP)

        if RECORD_STEP not in done:
            self.decisions.record(verdict)
            self.progress.mark(message_id, RECORD_STEP)

        for decision in verdict.decisions:
            self.logger.info(
                "decision",
                extra={
                    "message_id": message_id,
                    "recipient": self._show([decision.recipient])[0],
                    "action": decision.action.value,
                    "effective": decision.effective.value,
                    "rule": decision.rule,
                    "customer": decision.customer,
                    "deliver_to": self._show(decision.deliver_to),
                },
            )
        self._count(verdict)
        return {
            "message_id": message_id,
            "status": "processed",
            "allowed": len(allowed),
            "rerouted": sum(d.effective is Action.REROUTE for d in verdict.decisions),
            "blocked": len(blocked),
            "ses_message_ids": sent,
            "quarantine_id": quarantine_id,
        }

    def _count(self, verdict: Verdict) -> None:
        """Counts by the policy's action (what enforce does), so audit mode shows what it would block."""
        counts: dict[tuple[str, str], int] = {}
        for decision in verdict.decisions:
            key = (METRIC_FOR_ACTION[decision.action], decision.category.value)
            counts[key] = counts.get(key, 0) + 1
        for (name, category), value in counts.items():
            self.count(name, value, category, verdict.classification.cloud.value)


def _partner_contacts(blocked: Sequence[Decision], matches: Mapping[str, CustomerMatch | None]) -> dict[str, list[str]]:
    """For each blocked recipient, the contacts of the partners its customer buys through."""
    contacts: dict[str, list[str]] = {}
    for decision in blocked:
        match = matches.get(decision.recipient)
        if match is None:
            continue
        partners = [p for p in match.customer.partners if p.partner_id in decision.partners] or list(match.customer.partners)
        found = list(dict.fromkeys(c for p in partners for c in p.contacts))
        if found:
            contacts[decision.recipient] = found
    return contacts


def _loose_json(body: str) -> Any:
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return None


def _given_id(data: Any, fallback: str) -> str:
    value = data.get("message_id") if isinstance(data, dict) else None
    return value if isinstance(value, str) and value.strip() and len(value) <= 128 else fallback


def _given_recipients(data: Any) -> list[str]:
    """Whatever looks like a recipient in a request that did not validate, for the rejection record."""
    if not isinstance(data, dict):
        return []
    found = []
    for name in ("to", "cc", "bcc"):
        values = data.get(name)
        if isinstance(values, list):
            found.extend(v.strip().lower() for v in values if isinstance(v, str) and "@" in v and len(v) <= 254)
    return list(dict.fromkeys(found))[:50]


def _given_cloud(data: Any) -> Cloud | None:
    value = data.get("cloud") if isinstance(data, dict) else None
    return Cloud(value) if value in Cloud._value2member_map_ else None
