"""Each digest sent once per period, on the idempotency table: a conditional claim, then "done".

One item per digest (`id = "digest#<kind>#<period>#<identity or partner>"`, expired by the
table's TTL attribute `expiration`). `once(key, work)`:

1. claims the key with one conditional UpdateItem: it succeeds when no one holds the key (no
   item, an expired one, or a claim whose lease ran out);
2. runs `work` (the SES send) and stores "done" with its result;
3. when the key is done already, answers `{"replayed": True, ...}` without running `work`;
   when another invocation holds a live claim (the schedule fired twice at once), answers
   `{"replayed": True, "in_progress": True}`: that invocation sends it.

A failed send gives the claim up at once, so the schedule's retry sends it. A crash between SES
accepting the digest and "done" being written leaves a claim that a run after its lease (the
invocation's remaining time) sends again: at least once at that instant, as for the gateway's
sends (`mailfilter.aws.ledger`); SES takes no idempotency key. Every call is an UpdateItem, so
the function needs nothing else of the table.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from botocore.client import BaseClient
from botocore.exceptions import BotoCoreError, ClientError

from mailfilter.aws import clients
from mailfilter.aws.batch import Backoff

KEY_PREFIX = "digest#"
CLAIMED, DONE = "claimed", "done"
DEFAULT_LEASE_SECONDS = 300  # without a Lambda context: the function's timeout in template.yaml
DEFAULT_TTL_SECONDS = 40 * 24 * 3600  # longer than any period a schedule's retry or an operator's re-run asks for again
DONE_BACKOFF = Backoff(attempts=6, base=0.05, cap=1.0)  # "done" lost after SES accepted means a second digest later


class DigestLedgerError(RuntimeError):
    """The idempotency table could not be written."""


class DigestLedger:
    def __init__(self, table_name: str, *, ttl_seconds: int = DEFAULT_TTL_SECONDS, client: BaseClient | None = None) -> None:
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

    def _key(self, key: str) -> dict[str, Any]:
        return {"id": {"S": KEY_PREFIX + key}}

    def __call__(self, key: str, work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        held = self._claim(key)
        if held is not None:
            return held
        try:
            result = work()
        except Exception:
            self._abandon(key)
            raise
        self._done(key, result)
        return result

    def _claim(self, key: str) -> dict[str, Any] | None:
        """None when this invocation now holds the key; otherwise what answers for it."""
        now = int(time.time())
        lease = self._remaining_ms() / 1000 if self._remaining_ms else DEFAULT_LEASE_SECONDS
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=self._key(key),
                UpdateExpression="SET #state = :claimed, lease_until = :lease, expiration = :expiration REMOVE #result",
                ConditionExpression="attribute_not_exists(id) OR expiration < :now OR (#state = :claimed AND lease_until < :now)",
                ExpressionAttributeNames={"#state": "state", "#result": "result"},
                ExpressionAttributeValues={
                    ":claimed": {"S": CLAIMED},
                    ":lease": {"N": str(int(now + lease) + 1)},
                    ":expiration": {"N": str(now + self.ttl_seconds)},
                    ":now": {"N": str(now)},
                },
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise DigestLedgerError(f"{self.table_name}: {error}") from error
            held = error.response.get("Item", {})
            if held.get("state", {}).get("S") == DONE:
                return {**json.loads(held.get("result", {}).get("S", "{}")), "replayed": True}
            return {"replayed": True, "in_progress": True}
        except BotoCoreError as error:
            raise DigestLedgerError(f"{self.table_name}: {error}") from error
        return None

    def _done(self, key: str, result: dict[str, Any]) -> None:
        for attempt in range(DONE_BACKOFF.attempts):
            if attempt:
                DONE_BACKOFF.wait(attempt)
            try:
                self.client.update_item(
                    TableName=self.table_name,
                    Key=self._key(key),
                    UpdateExpression="SET #state = :done, #result = :result REMOVE lease_until",
                    ExpressionAttributeNames={"#state": "state", "#result": "result"},
                    ExpressionAttributeValues={":done": {"S": DONE}, ":result": {"S": json.dumps(result, separators=(",", ":"))}},
                )
                return
            except (ClientError, BotoCoreError) as error:
                if attempt == DONE_BACKOFF.attempts - 1:
                    raise DigestLedgerError(f"{self.table_name}: {error}") from error

    def _abandon(self, key: str) -> None:
        """Give the claim up after a failed send; best effort (the lease expires anyway)."""
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=self._key(key),
                UpdateExpression="SET lease_until = :zero",
                ConditionExpression="#state = :claimed",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={":zero": {"N": "0"}, ":claimed": {"S": CLAIMED}},
            )
        except (ClientError, BotoCoreError):
            return
