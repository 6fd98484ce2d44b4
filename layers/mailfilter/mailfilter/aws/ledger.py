"""Each send request handled once, in as few DynamoDB calls as that takes: claim, mark, finish.

One item per message in the idempotency table (`id = "ledger#<message id>"`, expired by
its TTL attribute) is at once the claim, the progress and the result:

- `claim` is one conditional UpdateItem. It takes the message when no one holds it (no item,
  an expired one, or a claim whose lease ran out) and returns the steps an earlier, failed
  attempt completed, so the gateway resumes instead of repeating. When the message is done
  it returns the stored result (a replay); when another invocation holds a live lease it
  raises `MessageInProgress`, and SQS delivers the record again later. The gateway runs it
  beside the directory read, so it costs no round trip of its own.
- `mark` records a send SES accepted, between two sends of one message (ADD to a string set).
- `finish` is one TransactWriteItems: the decision records and "done" with the result, so a
  message is never done without its records, nor recorded twice.

A single-customer message thus costs four calls (claim, directory, send, finish) in three
round trips one after the other. powertools' idempotency utility takes two writes of its
own (in progress, then completed) and cannot keep progress or write records with its
completion, which is why the gateway does not use it (docs/outbound.md, "Exactly once").

The lease is the invocation's remaining time (`register`), so a claim outlives no Lambda
that could still be sending; a failed attempt gives its lease up (`abandon`) so the retry
need not wait. A crash between SES accepting a send and its mark can still repeat that one
send: SES takes no idempotency key, so that instant is the one exactly-once cannot close.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import Any

from botocore.client import BaseClient
from botocore.exceptions import BotoCoreError, ClientError

from mailfilter.aws import clients
from mailfilter.aws.batch import Backoff
from mailfilter.ports import Claim, Done
from mailfilter.vocabulary.errors import LedgerError, MessageInProgress

KEY_PREFIX = "ledger#"
CLAIMED, DONE = "claimed", "done"
DEFAULT_LEASE_SECONDS = 60  # without a Lambda context: the function's timeout in template.yaml
# After botocore's three attempts, five more over at most about 3 s: a mark lost after SES
# accepted a send makes the retry send that mail again.
WRITE_BACKOFF = Backoff(attempts=6, base=0.05, cap=1.0)


class MessageLedger:
    def __init__(self, table_name: str, *, ttl_seconds: int, client: BaseClient | None = None) -> None:
        self.table_name = table_name
        self.ttl_seconds = ttl_seconds
        self._client = client
        self._remaining_ms: Any = None

    @property
    def client(self) -> BaseClient:
        return self._client or clients.client("dynamodb")

    def register(self, context: Any) -> None:
        """The Lambda context of the invocation running now: a claim's lease ends with it."""
        self._remaining_ms = getattr(context, "get_remaining_time_in_millis", None)

    def _key(self, message_id: str) -> dict[str, Any]:
        return {"id": {"S": KEY_PREFIX + message_id}}

    def claim(self, message_id: str) -> Claim | Done:
        now = int(time.time())
        lease = self._remaining_ms() / 1000 if self._remaining_ms else DEFAULT_LEASE_SECONDS
        try:
            response = self.client.update_item(
                TableName=self.table_name,
                Key=self._key(message_id),
                UpdateExpression="SET #state = :claimed, lease_until = :lease, expiration = :expiration",
                ConditionExpression="attribute_not_exists(id) OR expiration < :now OR (#state = :claimed AND lease_until < :now)",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={
                    ":claimed": {"S": CLAIMED},
                    ":lease": {"N": str(int(now + lease) + 1)},
                    ":expiration": {"N": str(now + self.ttl_seconds)},
                    ":now": {"N": str(now)},
                },
                ReturnValues="ALL_OLD",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise LedgerError(f"{self.table_name}: {error}") from error
            held = error.response.get("Item", {})
            if held.get("state", {}).get("S") == DONE:
                return Done(json.loads(held.get("result", {}).get("S", "{}")))
            until = held.get("lease_until", {}).get("N")
            raise MessageInProgress(f"{message_id} is being handled by another invocation until {until}") from None
        except BotoCoreError as error:
            raise LedgerError(f"{self.table_name}: {error}") from error
        old = response.get("Attributes", {})
        if int(old.get("expiration", {}).get("N", "0")) < now:
            return Claim()  # nothing, or what an expired attempt left: start afresh
        return Claim(frozenset(old.get("steps", {}).get("SS", [])))

    def mark(self, message_id: str, step: str) -> None:
        """Record a send SES accepted, retried well past botocore's own attempts."""
        self._retried(
            lambda: self.client.update_item(
                TableName=self.table_name,
                Key=self._key(message_id),
                UpdateExpression="ADD steps :step",
                ExpressionAttributeValues={":step": {"SS": [step]}},
            )
        )

    def finish(
        self, message_id: str, result: dict[str, Any], records: Sequence[tuple[str, dict[str, Any]]], step: str | None = None
    ) -> None:
        """The message's records (`(table, item)`, DynamoDB-typed) and "done" with its result, in one transaction."""
        update = "SET #state = :done, #result = :result REMOVE lease_until"
        values: dict[str, Any] = {":done": {"S": DONE}, ":result": {"S": json.dumps(result, separators=(",", ":"))}}
        if step is not None:
            update += " ADD steps :step"
            values[":step"] = {"SS": [step]}
        actions = [{"Put": {"TableName": table, "Item": item}} for table, item in records]
        actions.append(
            {
                "Update": {
                    "TableName": self.table_name,
                    "Key": self._key(message_id),
                    "UpdateExpression": update,
                    "ExpressionAttributeNames": {"#state": "state", "#result": "result"},
                    "ExpressionAttributeValues": values,
                }
            }
        )
        self._retried(lambda: self.client.transact_write_items(TransactItems=actions))

    def once(self, key: str, work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """`work` once per key, for work with no records of its own (the digests): claim, work, finish.

        Done before, or held by a live claim elsewhere, it answers `{"replayed": True, ...}` without
        running `work`; a failed `work` gives the claim up, so a retry runs it.
        """
        try:
            held = self.claim(key)
        except MessageInProgress:
            return {"replayed": True, "in_progress": True}
        if isinstance(held, Done):
            return {**held.result, "replayed": True}
        try:
            result = work()
        except Exception:
            self.abandon(key)
            raise
        self.finish(key, result, [])
        return result

    def abandon(self, message_id: str) -> None:
        """Give the lease up after a failure, so SQS's retry claims at once; best effort (the lease expires anyway)."""
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=self._key(message_id),
                UpdateExpression="SET lease_until = :zero",
                ConditionExpression="#state = :claimed",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={":zero": {"N": "0"}, ":claimed": {"S": CLAIMED}},
            )
        except (ClientError, BotoCoreError):
            return

    def _retried(self, write: Any) -> None:
        for attempt in range(WRITE_BACKOFF.attempts):
            if attempt:
                WRITE_BACKOFF.wait(attempt)
            try:
                write()
                return
            except (ClientError, BotoCoreError) as error:
                if attempt == WRITE_BACKOFF.attempts - 1 or not _transient(error):
                    raise LedgerError(f"{self.table_name}: {error}") from error


def _transient(error: ClientError | BotoCoreError) -> bool:
    if isinstance(error, BotoCoreError):
        return True  # timeouts and connection errors
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    code = error.response.get("Error", {}).get("Code", "")
    if code == "TransactionCanceledException":  # retried when every cancelled part was throttled or in conflict
        reasons = {reason.get("Code") for reason in error.response.get("CancellationReasons", [])} - {"None"}
        return reasons <= {"ThrottlingError", "TransactionConflict", "ProvisionedThroughputExceeded"}
    return status >= 500 or "Throttl" in code or code in ("ProvisionedThroughputExceededException", "RequestLimitExceeded")
