"""The outbound gateway's work for one send request: validate, decide, then act on each decision.

`OutboundGateway.handle` is what the SQS handler runs per record. It receives
every collaborator (directory, policy, mailer, quarantine, decisions log,
ledger) in its constructor, so tests build one with local or fake parts and
nothing is patched.

The path of one valid request, each step done at most once per message:

1. claim the message in the ledger, while the message is read and its recipients
   looked up in the directory (`evaluate`): the claim costs no round trip of its own;
2. block: the request and its verdict into the S3 quarantine (an overwrite when repeated);
3. allow: one SES send to the allowed recipients, To/Cc/Bcc kept for them only;
4. reroute: one notice per (customer, partner contacts), the original attached;
5. finish: the decision records and "done" in one DynamoDB transaction.

A redelivered record or a repeated `message_id` finds the message done and sends
nothing; a retry after a partial failure resumes after the sends the ledger marked
(`mailfilter.aws.ledger`). A single-customer message costs four AWS calls, three
one after the other: claim with the directory read, the send, the finish.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools import Logger

from mailfilter.delivery.copies import allowed_copy, partner_notice, reroute_groups
from mailfilter.engine import evaluate
from mailfilter.events.send_request import decode_json, parse_send_request
from mailfilter.metrics import count_decisions, uncounted
from mailfilter.outbound.rejection import given_cloud, given_id, given_recipients, loose_json
from mailfilter.outbound.request import OutboundRequest, RefusedRequest, read_request
from mailfilter.policy.config import Policy
from mailfilter.ports import Claim, CountMetric, DecisionRecorder, Directory, Done, Ledger, MailSender, QuarantineStore, StoredMail
from mailfilter.vocabulary.addresses import mask, mask_in_text
from mailfilter.vocabulary.errors import EventError
from mailfilter.vocabulary.model import Action, Decision, Direction, Verdict

ALLOW_STEP = "allow"
NO_RECIPIENT = "-"  # the recipient recorded for a request too broken to name one


@dataclass
class OutboundGateway:
    directory: Directory
    policy: Policy
    mailer: MailSender
    quarantine: QuarantineStore
    decisions: DecisionRecorder
    ledger: Ledger
    from_address: str
    stored: StoredMail | None = None  # reads the messages `raw_key` names, and keeps blocked ones
    count: CountMetric = uncounted
    logger: Logger = field(default_factory=lambda: Logger(service="csp-mail-filter"))
    log_addresses: bool = False
    # The claim runs here while the handler reads the message and the directory.
    claims: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(max_workers=1, thread_name_prefix="claim"))

    def _show(self, addresses: Sequence[str]) -> list[str]:
        return list(addresses) if self.log_addresses else [mask(a) for a in addresses]

    def handle(self, body: str, *, fallback_id: str = "") -> dict[str, Any]:
        """Process one queue message body. Invalid requests are recorded and return normally (no retry)."""
        try:
            data = decode_json(body)
        except (ValueError, RecursionError) as error:  # not JSON, nested too deep, a number too long, a key twice
            loose = loose_json(body)  # only to record the refusal where the sender looks for it
            return self._reject(given_id(loose, fallback_id), loose, f"the queue message body is not JSON: {error}")
        try:
            request = parse_send_request(data)
        except EventError as error:
            return self._reject(given_id(data, fallback_id), data, str(error))
        message_id = request.effective_message_id
        self.logger.set_correlation_id(message_id)
        claim = self.claims.submit(self.ledger.claim, message_id)
        try:
            reading: OutboundRequest | RefusedRequest = read_request(request, self.policy, self.stored)
            if isinstance(reading, OutboundRequest):
                verdict = evaluate(reading.message, self.directory, self.policy)
        except RefusedRequest as refused:
            reading = refused
        except Exception:
            _abandon_when_claimed(claim, self.ledger, message_id)
            raise
        held = claim.result()  # MessageInProgress or LedgerError: the record is retried
        if isinstance(held, Done):
            self.logger.info("send request already processed; nothing sent again", extra={"message_id": message_id})
            self.count("Duplicates", 1, "none", (request.cloud or self.policy.default_cloud).value)
            return {**held.result, "replayed": True}
        try:
            if isinstance(reading, RefusedRequest):
                return self._reject(message_id, data, str(reading), finish=True)
            return self._deliver(reading, verdict, held.steps)
        except Exception:
            self.ledger.abandon(message_id)
            raise

    def _reject(self, message_id: str, data: Any, error: str, *, finish: bool = False) -> dict[str, Any]:
        """Record why a request is not sent; `finish`: through the ledger, so a redelivery answers the same at once."""
        message_id = message_id or "unidentified"
        recipients = given_recipients(data) or [NO_RECIPIENT]
        cloud = given_cloud(data) or self.policy.default_cloud
        result = {"message_id": message_id, "status": "rejected", "error": error}
        if finish:
            items = self.decisions.outcome_items(message_id, Direction.OUTBOUND, cloud, recipients, kind="rejected", error=error)
            self.ledger.finish(message_id, result, [(self.decisions.table_name, item) for item in items])
        else:
            self.decisions.record_outcome(message_id, Direction.OUTBOUND, cloud, recipients, kind="rejected", error=error)
        self.count("Rejected", 1, "none", cloud.value)
        self.logger.set_correlation_id(message_id)
        shown = error if self.log_addresses else mask_in_text(error)
        self.logger.warning("send request rejected", extra={"message_id": message_id, "error": shown})
        return result

    def _deliver(self, reading: OutboundRequest, verdict: Verdict, done: frozenset[str]) -> dict[str, Any]:
        request, original = reading.request, reading.original
        message_id = request.effective_message_id
        cloud = verdict.classification.cloud.value
        tags = {"category": verdict.classification.category.value, "cloud": cloud}

        blocked = [d for d in verdict.decisions if d.effective is Action.BLOCK]
        quarantine_id = None
        if blocked:  # before any send; an item stored again on a retry overwrites itself
            item = self.quarantine.put(
                message_id=message_id,
                direction=Direction.OUTBOUND.value,
                cloud=cloud,
                recipients=[d.recipient for d in blocked],
                customers=[d.customer for d in blocked],
                request=request.model_dump(mode="json", by_alias=True, exclude_none=True),
                verdict=verdict.as_dict(),
                partner_contacts=_partner_contacts(blocked),
                raw=self._kept(request.raw_key, message_id),
            )
            quarantine_id = item.id

        # Every send the verdict asks for, by its step name, less those an earlier attempt completed.
        allowed = [d.recipient for d in verdict.decisions if d.effective is Action.ALLOW]
        notices = {group.step: group for group in reroute_groups(verdict.decisions)}
        todo = [step for step in ([ALLOW_STEP] if allowed else []) + list(notices) if step not in done]
        sent: dict[str, str] = {}
        for step in todo:
            if step == ALLOW_STEP:
                mail, sender, recipients = allowed_copy(original, request, set(allowed)), request.sender, allowed
            else:
                group = notices[step]
                mail = partner_notice(original, request, verdict, group, self.from_address)
                sender, recipients = self.from_address, list(group.deliver_to)
            sent[step] = self.mailer.send(mail, sender=sender, recipients=recipients, tags=tags)
            if step != todo[-1]:
                self.ledger.mark(message_id, step)  # the last send is marked by the finish, with the records

        result = {
            "message_id": message_id,
            "status": "processed",
            "allowed": len(allowed),
            "rerouted": sum(d.effective is Action.REROUTE for d in verdict.decisions),
            "blocked": len(blocked),
            "ses_message_ids": sent,
            "quarantine_id": quarantine_id,
        }
        records = [(self.decisions.table_name, item) for item in self.decisions.items(verdict)]
        self.ledger.finish(message_id, result, records, step=todo[-1] if todo else None)
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
        count_decisions(self.count, verdict)
        return result

    def _kept(self, raw_key: str | None, message_id: str) -> dict[str, str] | None:
        """A stored message copied beside the quarantine, so it outlives outgoing/'s expiry."""
        if raw_key is None:
            return None
        if self.stored is None:  # read_request refuses a raw_key without a mail bucket
            raise RuntimeError("a stored message was read without a mail bucket")
        return self.stored.preserve_outgoing(raw_key, message_id)


def _abandon_when_claimed(claim: Future[Claim | Done], ledger: Ledger, message_id: str) -> None:
    """After a failure before delivery: give the claim up if this invocation got it."""
    try:
        held = claim.result()
    except Exception:  # the claim's own failure adds nothing to the one being raised
        return
    if isinstance(held, Claim):
        ledger.abandon(message_id)


def _partner_contacts(blocked: Sequence[Decision]) -> dict[str, list[str]]:
    """For each blocked recipient, the contacts of the partners its customer buys through."""
    contacts: dict[str, list[str]] = {}
    for decision in blocked:
        match = decision.match  # the directory entry the decision was made on
        if match is None:
            continue
        partners = [p for p in match.customer.partners if p.partner_id in decision.partners] or list(match.customer.partners)
        found = list(dict.fromkeys(c for p in partners for c in p.contacts))
        if found:
            contacts[decision.recipient] = found
    return contacts
