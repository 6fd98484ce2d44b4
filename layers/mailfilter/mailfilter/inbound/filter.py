"""The inbound filter: SES receipt event -> verdict -> actions -> disposition.

The verdict comes from the policy core (`mailfilter.engine.evaluate`, which
already applies the security gates); this module only acts on each decision's
`effective` action and never re-decides:

- allow: nothing to do here; the disposition CONTINUE lets the receipt rule's
  later actions deliver the message to the vendor desk.
- reroute: the raw message is read from the mail bucket, rewritten for the
  partner (`mailfilter.inbound.forwarding`) and sent through SES v2, once per
  distinct set of partner contacts.
- block: the message is kept in quarantine with its decision (`mailfilter.inbound.hold`).

The disposition is CONTINUE if and only if at least one recipient is allowed.
When the directory or the bucket cannot be read, nothing is decided against
the rules (`mailfilter.inbound.failsafe`). Collaborators are passed in
(`InboundFilter`, built by `mailfilter.wiring`) so tests run the real path
against local or fake services.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig
from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import BotoCoreError, ClientError

from mailfilter.engine import evaluate
from mailfilter.events.ses_receipt import ReceiptEvent, parse_receipt_event, receipt_message
from mailfilter.inbound import failsafe
from mailfilter.inbound.forwarding import by_partner_contacts, forward
from mailfilter.inbound.hold import InboundHold, quarantine_message_id
from mailfilter.inbound.observe import InboundLog, count_inbound
from mailfilter.inbound.once import idempotency_config, run_once
from mailfilter.inbound.outcome import Delivery, Disposition, InboundOutcome
from mailfilter.metrics import uncounted
from mailfilter.policy.config import Policy
from mailfilter.ports import CountMetric, DecisionRecorder, Directory, Log, MailSender, QuarantineStore, RawMailStore
from mailfilter.vocabulary.errors import DirectoryUnavailable, EventError, ForwardError, MailUnavailable, StoredMessageTooLarge
from mailfilter.vocabulary.message import Message
from mailfilter.vocabulary.model import Action, Decision, Direction, Verdict
from mailfilter.vocabulary.ses import SES_MAX_MESSAGE_BYTES


@dataclass(frozen=True)
class InboundFilter:
    """Everything the inbound filter talks to; `mailfilter.wiring` builds one per execution environment."""

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

    @property
    def log(self) -> InboundLog:
        return InboundLog(self.logger, self.log_addresses)

    # -- entry points -------------------------------------------------------------------------

    def handle(self, event: Any, context: LambdaContext | None = None) -> dict[str, str]:
        """The Lambda contract: any event in, a disposition out; bad input is recorded, never lost.

        The same SES message and rule processed twice returns the first disposition and
        sends nothing again (powertools idempotency on the IDEMPOTENCY_TABLE).
        """
        try:
            parsed = parse_receipt_event(event)
        except EventError as error:
            return failsafe.unreadable_event(self, event, error).response()
        if self.idempotency is None:
            return self.process(parsed).response()
        once = run_once(self.idempotency, self.idempotency_settings, event, context, lambda: self.process(parsed).response())
        ses_id = parsed.mail.messageId
        if once.in_progress:  # another invocation holds this message right now and will act on it; this copy must not
            self.log.say("warning", "duplicate invocation while the first is in progress", ses_message_id=ses_id)
            return {"disposition": Disposition.STOP_RULE.value}
        if once.response is None:  # without the idempotency record a second invocation could act twice: defer instead
            return failsafe.unreadable_event(self, event, EventError(f"idempotency store: {once.store_error}")).response()
        if once.store_error is not None:  # the message was handled; only its idempotency record could not be written
            self.log.say("warning", "idempotency record not saved", ses_message_id=ses_id, error=self.log.text(once.store_error))
        return once.response

    def process(self, event: ReceiptEvent) -> InboundOutcome:
        message_id = event.mail.messageId
        desks = tuple(event.receipt.recipients)
        try:
            message = receipt_message(event)
        except EventError as error:
            return failsafe.defer(self, event, message_id, desks, str(error))
        if event.mail.headersTruncated:
            self.log.message("warning", "SES truncated the headers in the event; the stored message is complete", message)
        try:
            verdict = evaluate(message, self.directory, self.policy)
        except DirectoryUnavailable as error:
            return failsafe.defer(self, event, message_id, message.recipients, str(error))
        return self._act(event, message, verdict)

    def defer(self, event: Any, reason: str) -> dict[str, str]:
        """Decide nothing (no policy could be read): keep the message as a deferred item for `quarantine release`."""
        return failsafe.unreadable_event(self, event, EventError(reason)).response()

    def redrive(self, hold: InboundHold, *, desks: Sequence[str] | None = None) -> InboundOutcome:
        """Run a deferred inbound quarantine item's event through the filter again (`quarantine release`).

        `desks`, the item's recipients, limits the run to the desks the first run kept: when
        only a forward failed, the other desks were already delivered or forwarded then.
        Idempotency is not consulted: for these desks the first run delivered nothing, and
        this run records and acts as a fresh one.
        """
        if hold.kind != "deferred":
            raise ValueError("only deferred inbound items can be re-driven through the filter")
        event = hold.receipt_event().model_copy(deep=True)  # narrowed below; the hold stays as kept
        if desks is not None:
            kept = {desk.lower() for desk in desks}
            event.receipt.recipients = [r for r in event.receipt.recipients if r.lower() in kept]
        return self.process(event)

    def forward(
        self, raw: bytes, message: Message, contacts: tuple[str, ...], group: Sequence[Decision], *, tags: Mapping[str, str] | None = None
    ) -> Delivery:
        """The stored message forwarded from the filter's identity: to partners, or to desks on release."""
        return forward(self.mailer, self.filter_from, raw, message, contacts, group, tags=tags)

    # -- acting on a verdict --------------------------------------------------------------------

    def _act(self, event: ReceiptEvent, message: Message, verdict: Verdict) -> InboundOutcome:
        try:
            self.decisions.record(verdict)
        except Exception as error:  # without a record nothing may be delivered
            return failsafe.defer(self, event, message.message_id, message.recipients, f"decisions table: {error}")

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
                return failsafe.defer(self, event, message.message_id, message.recipients, str(error), verdict)
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
            failsafe.record_deferred(self, message.message_id, [d.recipient for d, _ in held], verdict, "; ".join(failures))

        count_inbound(self.metrics, self.policy, verdict, deferred={d.recipient for d, _ in held} if failures else set())
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
        self.log.message("info", "inbound message filtered", message, outcome=outcome)
        return outcome

    def _quarantine(
        self, event: ReceiptEvent, message: Message, verdict: Verdict, held: list[tuple[Decision, str]], failures: list[str]
    ) -> str:
        raw = self.mail.preserve(message.message_id)
        hold = InboundHold.of(
            "deferred" if failures else "blocked", event, raw, {d.recipient: reason for d, reason in held}, "; ".join(failures) or None
        )
        item = self.quarantine.put(
            message_id=quarantine_message_id(message.message_id, message.recipients),
            direction=Direction.INBOUND.value,
            cloud=verdict.classification.cloud.value,
            recipients=[d.recipient for d, _ in held],
            customers=[d.customer for d, _ in held],
            request=hold.model_dump(mode="json"),
            verdict=verdict.as_dict(),
            partner_contacts={d.recipient: list(d.deliver_to) for d, _ in held if d.effective is Action.REROUTE},
        )
        return item.id
