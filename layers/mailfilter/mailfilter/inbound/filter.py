"""The inbound filter: SES receipt event -> verdict -> actions -> disposition.

The verdict comes from the policy core (`mailfilter.engine.evaluate`, which
already applies the security gates); this module only acts on each decision's
`effective` action and never re-decides:

- allow: nothing to do here; the disposition CONTINUE lets the receipt rule's
  later actions deliver the message to the vendor desk.
- reroute: the raw message is read from the mail bucket, rewritten for the
  partner (`mailfilter.delivery.forward`) and sent through SES v2, once per
  distinct set of partner contacts.
- block: the message is kept in quarantine with its decision.

The disposition is CONTINUE if and only if at least one recipient is allowed.
When the directory or the bucket cannot be read, nothing is decided against
the rules: the message stays in the bucket, a `deferred` record says why, and
the disposition is STOP_RULE. Collaborators are passed in (`InboundFilter`)
so tests run the real path against local or fake services.
"""

from __future__ import annotations

import hashlib
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError, IdempotencyPersistenceLayerError
from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import BotoCoreError, ClientError

from mailfilter.aws.decisions import DecisionLog
from mailfilter.aws.directory_table import DynamoDirectory
from mailfilter.aws.mailer import Mailer
from mailfilter.aws.quarantine import Quarantine
from mailfilter.aws.raw_mail import MailBucket
from mailfilter.delivery.forward import ForwardNotice, forward_message
from mailfilter.engine import evaluate
from mailfilter.events.ses_receipt import ReceiptEvent, parse_receipt_event, receipt_message
from mailfilter.metrics import DEFERRED, count_decisions, uncounted
from mailfilter.policy.config import Policy
from mailfilter.ports import CountMetric, DecisionRecorder, Directory, Log, MailSender, QuarantineStore, RawMailStore
from mailfilter.settings import InboundSettings
from mailfilter.vocabulary.addresses import mask, mask_in_text
from mailfilter.vocabulary.errors import DirectoryUnavailable, EventError, ForwardError, MailUnavailable, StoredMessageTooLarge
from mailfilter.vocabulary.message import Message
from mailfilter.vocabulary.model import Action, Decision, Direction, Verdict
from mailfilter.vocabulary.ses import SES_MAX_MESSAGE_BYTES

# SES invokes the filter once per matching receipt rule with the same message id, so the
# rule's recipients are part of the key: each rule's share of a message is handled once.
IDEMPOTENCY_KEY = "[Records[0].ses.mail.messageId, Records[0].ses.receipt.recipients]"
IDEMPOTENCY_SECONDS = 7 * 24 * 3600  # longer than SES or anyone would plausibly redeliver the same event


def idempotency_config() -> IdempotencyConfig:
    return IdempotencyConfig(
        event_key_jmespath=IDEMPOTENCY_KEY, raise_on_no_idempotency_key=True, expires_after_seconds=IDEMPOTENCY_SECONDS
    )


class Disposition(StrEnum):
    """What the receipt rule set does next (SES's Lambda action contract)."""

    CONTINUE = "CONTINUE"  # the rule's later actions run: the vendor desks receive the message
    # This rule's later actions are skipped, so its desks get nothing from SES; later rules,
    # the other desk groups of the same message, still run. STOP_RULE would stop them
    # too, and a message to billing@ and sales@ would never reach the sales rule.
    STOP_RULE = "STOP_RULE"


def recipients_group(recipients: Sequence[str]) -> str:
    """A short stable name for one receipt rule's recipients (SES invokes once per matching rule)."""
    return hashlib.sha256("\n".join(sorted(recipients)).encode("utf-8")).hexdigest()[:12]


@dataclass(frozen=True, slots=True)
class Delivery:
    partner_contacts: tuple[str, ...]
    desks: tuple[str, ...]
    ses_message_id: str


@dataclass(frozen=True, slots=True)
class InboundOutcome:
    message_id: str
    disposition: Disposition
    verdict: Verdict | None = None
    deliveries: tuple[Delivery, ...] = ()
    quarantined: str | None = None  # the quarantine item's id
    deferred: str | None = None  # why the message could not be handled (it waits for release)
    held: tuple[str, ...] = ()  # desks whose mail waits in quarantine

    def response(self) -> dict[str, str]:
        return {"disposition": self.disposition.value}


@dataclass(frozen=True)
class InboundFilter:
    """Everything the inbound filter talks to; the handler builds one per execution environment."""

    directory: Directory
    policy: Policy
    mail: RawMailStore
    quarantine: QuarantineStore
    mailer: MailSender
    decisions: DecisionRecorder
    filter_from: str
    metrics: CountMetric = uncounted
    logger: Log | None = None
    log_addresses: bool = False  # customer addresses are masked in logs unless this is set
    idempotency: BasePersistenceLayer | None = None  # powertools' store; None runs every event (tests, re-drive)
    idempotency_settings: IdempotencyConfig = field(default_factory=idempotency_config)

    # -- entry points -------------------------------------------------------------------------

    def handle(self, event: Any, context: LambdaContext | None = None) -> dict[str, str]:
        """The Lambda contract: any event in, a disposition out; bad input is recorded, never lost.

        The same SES message and rule processed twice returns the first disposition and
        sends nothing again (powertools idempotency on the IDEMPOTENCY_TABLE).
        """
        try:
            parsed = parse_receipt_event(event)
        except EventError as error:
            return self._unreadable_event(event, error).response()
        if self.idempotency is None:
            return self.process(parsed).response()
        if context is not None:
            self.idempotency_settings.register_lambda_context(context)

        @idempotent_function(
            data_keyword_argument="receipt",
            persistence_store=self.idempotency,
            config=self.idempotency_settings,
            key_prefix="inbound-filter",
        )
        def once(receipt: dict[str, Any]) -> dict[str, str]:
            handled.append(self.process(parsed).response())
            return handled[-1]

        handled: list[dict[str, str]] = []
        try:
            return once(receipt=event)
        except IdempotencyAlreadyInProgressError:
            # Another invocation holds this message right now and will act on it; this copy must not.
            if self.logger:
                self.logger.warning("duplicate invocation while the first is in progress", extra={"ses_message_id": parsed.mail.messageId})
            return {"disposition": Disposition.STOP_RULE.value}
        except IdempotencyPersistenceLayerError as error:
            if handled:  # the message was handled; only its idempotency record could not be written
                if self.logger:
                    self.logger.warning(
                        "idempotency record not saved", extra={"ses_message_id": parsed.mail.messageId, "error": self._text(str(error))}
                    )
                return handled[-1]
            # Without the idempotency record a second invocation could act twice: defer instead.
            return self._unreadable_event(event, EventError(f"idempotency store: {error}")).response()

    def process(self, event: ReceiptEvent) -> InboundOutcome:
        message_id = event.mail.messageId
        desks = tuple(event.receipt.recipients)
        try:
            message = receipt_message(event)
        except EventError as error:
            return self._defer(event.model_dump(mode="json", by_alias=True, exclude_unset=True), message_id, desks, str(error))
        if event.mail.headersTruncated:
            self._log("warning", "SES truncated the headers in the event; the stored message is complete", message)
        try:
            verdict = evaluate(message, self.directory, self.policy)
        except DirectoryUnavailable as error:
            return self._defer(event.model_dump(mode="json", by_alias=True, exclude_unset=True), message_id, message.recipients, str(error))
        return self._act(event, message, verdict)

    def defer(self, event: Any, reason: str) -> dict[str, str]:
        """Decide nothing (no policy could be read): keep the message as a deferred item for `quarantine release`."""
        return self._unreadable_event(event, EventError(reason)).response()

    def redrive(self, request: Mapping[str, Any], *, desks: Sequence[str] | None = None) -> InboundOutcome:
        """Run a deferred inbound quarantine item's event through the filter again (`quarantine release`).

        `request` is the item's `request` (`inbound_request`); `desks`, the item's recipients,
        limits the run to the desks the first run kept: when only a forward failed, the
        other desks were already delivered or forwarded then. Idempotency is not consulted:
        for these desks the first run delivered nothing, and this run records and acts as a fresh one.
        """
        if request.get("kind") != "deferred" or "event" not in request:
            raise ValueError("only deferred inbound items can be re-driven through the filter")
        event = parse_receipt_event(request["event"])
        if desks is not None:
            kept = {desk.lower() for desk in desks}
            event.receipt.recipients = [r for r in event.receipt.recipients if r.lower() in kept]
        return self.process(event)

    # -- acting on a verdict --------------------------------------------------------------------

    def _act(self, event: ReceiptEvent, message: Message, verdict: Verdict) -> InboundOutcome:
        try:
            self.decisions.record(verdict)
        except Exception as error:  # without a record nothing may be delivered
            return self._defer(
                event.model_dump(mode="json", by_alias=True, exclude_unset=True),
                message.message_id,
                message.recipients,
                f"decisions table: {error}",
            )

        by_action: dict[Action, list[Decision]] = {action: [] for action in Action}
        for decision in verdict.decisions:
            by_action[decision.effective].append(decision)

        deliveries: list[Delivery] = []
        held: list[tuple[Decision, str]] = [(d, d.reason) for d in by_action[Action.BLOCK]]
        failures: list[str] = []
        if by_action[Action.REROUTE]:
            try:
                raw = self.mail.read(message.message_id, max_bytes=SES_MAX_MESSAGE_BYTES)
            except StoredMessageTooLarge as error:
                held += [(d, f"Not forwarded to the partner: {error}.") for d in by_action[Action.REROUTE]]
            except MailUnavailable as error:
                return self._defer(
                    event.model_dump(mode="json", by_alias=True, exclude_unset=True),
                    message.message_id,
                    message.recipients,
                    str(error),
                    verdict,
                )
            else:
                for contacts, group in by_partner_contacts(by_action[Action.REROUTE]).items():
                    try:
                        deliveries.append(self.forward(raw, message, contacts, group))
                    except ForwardError as error:  # too large once rewritten, or nothing to forward
                        held += [(d, f"Not forwarded to the partner: {error}.") for d in group]
                    except Exception as error:  # SES refused or failed: keep it for release
                        failures.append(f"sending to {', '.join(contacts)}: {error}")
                        held += [(d, f"Forwarding to the partner failed: {error}") for d in group]

        quarantined = None
        if held:
            try:
                quarantined = self._quarantine(event, message, verdict, held, failures)
            except (MailUnavailable, ClientError, BotoCoreError) as error:  # the bucket refused: the deferred record says so
                failures.append(f"quarantine: {error}")
        if failures:
            error = "; ".join(failures)
            self._record_deferred(message.message_id, [d.recipient for d, _ in held], verdict, error)

        self._count(verdict, deferred={d.recipient for d, _ in held} if failures else set())
        disposition = Disposition.CONTINUE if by_action[Action.ALLOW] else Disposition.STOP_RULE
        outcome = InboundOutcome(
            message.message_id,
            disposition,
            verdict,
            tuple(deliveries),
            quarantined,
            "; ".join(failures) or None,
            tuple(d.recipient for d, _ in held),
        )
        self._log("info", "inbound message filtered", message, outcome=outcome)
        return outcome

    def forward(
        self,
        raw: bytes,
        message: Message,
        contacts: tuple[str, ...],
        group: Sequence[Decision],
        *,
        tags: Mapping[str, str] | None = None,
    ) -> Delivery:
        """Send the raw message, rewritten by `forward_message`, to `contacts` about the desks in `group`.

        The filter forwards to partners; `quarantine release` forwards to desks too, since
        a receipt rule that already finished can no longer deliver to them.
        """
        first = group[0]
        notice = ForwardNotice(
            filter_from=self.filter_from,
            original_sender=message.sender,
            original_recipients=tuple(d.recipient for d in group),
            partner_contacts=contacts,
            reason=first.reason,
            rule=first.rule,
            ses_message_id=message.message_id,
            customer_name=first.customer_name,
        )
        forwarded = forward_message(raw, notice)
        tags = {"direction": "inbound", "category": first.category.value, "rule": first.rule, **(tags or {})}
        ses_id = self.mailer.send(forwarded, sender=self.filter_from, recipients=contacts, tags=tags)
        return Delivery(contacts, notice.original_recipients, ses_id)

    def _quarantine(
        self, event: ReceiptEvent, message: Message, verdict: Verdict, held: list[tuple[Decision, str]], failures: list[str]
    ) -> str:
        raw = self.mail.preserve(message.message_id)
        item = self.quarantine.put(
            message_id=quarantine_message_id(message.message_id, message.recipients),
            direction=Direction.INBOUND.value,
            cloud=verdict.classification.cloud.value,
            recipients=[d.recipient for d, _ in held],
            customers=[d.customer for d, _ in held],
            request=inbound_request(
                "deferred" if failures else "blocked",
                event.model_dump(mode="json", by_alias=True, exclude_unset=True),
                raw,
                {d.recipient: reason for d, reason in held},
                "; ".join(failures) or None,
            ),
            verdict=verdict.as_dict(),
            partner_contacts={d.recipient: list(d.deliver_to) for d, _ in held if d.effective is Action.REROUTE},
        )
        return item.id

    # -- fail safe ------------------------------------------------------------------------------

    def _unreadable_event(self, event: Any, error: EventError) -> InboundOutcome:
        message_id = _message_id_of(event)
        if message_id is None:
            # Not an SES receipt event at all (a misconfigured trigger): nothing to keep or record.
            if self.logger:
                self.logger.error("not an SES receipt event", extra={"error": self._text(str(error))})
            raise error
        recipients = _recipients_of(event)
        return self._defer(event, message_id, recipients, str(error))

    def _defer(self, event: Any, message_id: str, recipients: Sequence[str], error: str, verdict: Verdict | None = None) -> InboundOutcome:
        """Nothing was delivered: a deferred quarantine item points at the stored message, and says why."""
        quarantined = None
        cloud = verdict.classification.cloud.value if verdict else self.policy.default_cloud.value
        try:
            item = self.quarantine.put(
                message_id=quarantine_message_id(message_id, recipients),
                direction=Direction.INBOUND.value,
                cloud=cloud,
                recipients=list(recipients),
                customers=[None],
                request=inbound_request("deferred", event, self.mail.location(message_id), {}, error),
                verdict=verdict.as_dict() if verdict else {},
            )
            quarantined = item.id
        except Exception as keep_error:  # the decisions table and the error log still say so
            error = f"{error}; deferred item not written: {keep_error}"
        self._record_deferred(message_id, recipients, verdict, error)
        for recipient in recipients or ("unknown",):
            category, desk_cloud = self._desk_dimensions(recipient)
            self.metrics(DEFERRED, 1, category, desk_cloud)
        if self.logger:
            self.logger.error(
                "inbound message deferred: nothing delivered, the message stays in the bucket",
                extra={"ses_message_id": message_id, "error": self._text(error), "quarantine_id": quarantined},
            )
        return InboundOutcome(message_id, Disposition.STOP_RULE, verdict, quarantined=quarantined, deferred=error, held=tuple(recipients))

    def _record_deferred(self, message_id: str, recipients: Sequence[str], verdict: Verdict | None, error: str) -> None:
        cloud = verdict.classification.cloud if verdict else self.policy.default_cloud
        try:
            # An event that names no recipient still leaves a record, under "-" as the outbound gateway does.
            self.decisions.record_outcome(message_id, Direction.INBOUND, cloud, list(recipients) or ["-"], kind="deferred", error=error)
        except Exception:  # the quarantine record and the error log still say so
            if self.logger:
                self.logger.error("deferred outcome not recorded", extra={"ses_message_id": message_id, "trace": traceback.format_exc()})

    # -- observability --------------------------------------------------------------------------

    def _desk_dimensions(self, desk: str) -> tuple[str, str]:
        entry = self.policy.desk_map.get(desk)
        cloud = entry.cloud if entry is not None and entry.cloud else self.policy.default_cloud
        return (entry.category.value if entry is not None else "general"), cloud.value

    def _count(self, verdict: Verdict, deferred: set[str]) -> None:
        count_decisions(self.metrics, verdict, cloud_of=lambda d: self._desk_dimensions(d.recipient)[1], deferred=deferred)

    def _address(self, address: str) -> str:
        return address if self.log_addresses else mask(address)

    def _text(self, text: str) -> str:
        return text if self.log_addresses else mask_in_text(text)

    def _log(self, level: str, text: str, message: Message, outcome: InboundOutcome | None = None) -> None:
        if self.logger is None:
            return
        extra: dict[str, Any] = {"ses_message_id": message.message_id, "sender": self._address(message.sender)}
        if outcome is not None:
            extra["disposition"] = outcome.disposition.value
            extra["decisions"] = [
                {"desk": d.recipient, "action": d.action.value, "effective": d.effective.value, "rule": d.rule,
                 "category": d.category.value, "customer": d.customer, "partners": list(d.partners)}
                for d in (outcome.verdict.decisions if outcome.verdict else ())
            ]  # fmt: skip
            extra["rerouted_to"] = [self._address(c) for delivery in outcome.deliveries for c in delivery.partner_contacts]
            if outcome.quarantined:
                extra["quarantine_id"] = outcome.quarantined
            if outcome.deferred:
                extra["error"] = self._text(outcome.deferred)
        log: Callable[..., None] = getattr(self.logger, level)
        log(text, extra=extra)


def build_inbound_filter(
    settings: InboundSettings,
    *,
    metrics: CountMetric = uncounted,
    logger: Log | None = None,
    idempotency: BasePersistenceLayer | None = None,
) -> InboundFilter:
    """The filter's collaborators from its settings: the function and `quarantine release` build the same one."""
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
        metrics=metrics,
        idempotency=idempotency,
    )


def quarantine_message_id(ses_message_id: str, recipients: Sequence[str]) -> str:
    """SES invokes once per matching rule with one message id; each rule's share is its own item."""
    return f"{ses_message_id}#{recipients_group(recipients)}"


def inbound_request(kind: str, event: Any, raw: Mapping[str, str], reasons: Mapping[str, str], error: str | None) -> dict[str, Any]:
    """The `request` of an inbound quarantine item: what `quarantine release` needs to act again.

    kind "blocked": the decision kept it; release delivers `raw` as the operator chooses.
    kind "deferred": the filter could not finish; release runs `event` through the filter
    again (`InboundFilter.redrive`), which reads the message from `raw`.
    """
    return {
        "kind": kind,
        "ses_message_id": _message_id_of(event) or "",
        "event": event,
        "raw": dict(raw),
        "reasons": dict(reasons),
        "error": error,
    }


def by_partner_contacts(decisions: Sequence[Decision]) -> dict[tuple[str, ...], list[Decision]]:
    """One forward per distinct set of partner contacts, naming every desk it was written to."""
    groups: dict[tuple[str, ...], list[Decision]] = {}
    for decision in decisions:
        groups.setdefault(decision.deliver_to, []).append(decision)
    return groups


def _message_id_of(event: Any) -> str | None:
    try:
        value = event["Records"][0]["ses"]["mail"]["messageId"]
    except (KeyError, IndexError, TypeError):
        return None
    return value if isinstance(value, str) and value and "/" not in value and len(value) <= 200 else None


def _recipients_of(event: Any) -> list[str]:
    try:
        values = event["Records"][0]["ses"]["receipt"]["recipients"]
    except (KeyError, IndexError, TypeError):
        return []
    return [v for v in values if isinstance(v, str)] if isinstance(values, list) else []
