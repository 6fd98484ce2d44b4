"""The decisions log: one item per recipient per message, kept for a retention period.

Layout (docs/directory-table.md): partition `msg#<message id>`, sort key
`<kind>#<recipient>`, so a retried function overwrites its own record instead
of adding a second one, while a later "released" record sits beside the
original "decision". The `by-customer` index (customer, at) answers "what did
customer X receive or not receive", newest first; records without a customer
(deferred and rejected messages) stay out of it. `by-recipient` (recipient, at)
answers the same for one address, and `by-day` (`day`, at) every record of a
day, spread over DAY_SHARDS partitions (`YYYY-MM-DD#n`, n from the message id)
so a busy day is not one hot index partition; `mailfilter trace` queries them.

Each decision also carries what `mailfilter policy replay` needs to decide it
again on the same facts (`replay_values`): the message's classification with
every source, the segment, the customer as matched (direct products, partners
with what they own and their contacts) and, inbound, whether the sender was
authenticated.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.client import BaseClient
from botocore.exceptions import BotoCoreError, ClientError

from mailfilter.aws import clients
from mailfilter.aws.batch import batch_write
from mailfilter.aws.directory_items import from_item, to_item, view_values
from mailfilter.vocabulary.errors import BatchIncompleteError, DecisionLogError
from mailfilter.vocabulary.model import Cloud, Decision, Direction, Verdict

CUSTOMER_INDEX = "by-customer"
RECIPIENT_INDEX = "by-recipient"
DAY_INDEX = "by-day"
DAY_SHARDS = 4
KINDS = frozenset({"decision", "violation", "deferred", "rejected", "released"})


def _timestamp(moment: datetime) -> str:
    # Fixed width, so the index's string sort key orders by time.
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def day_key(message_id: str, moment: datetime) -> str:
    """The `by-day` partition of a message's records: its UTC day and a shard stable for the message."""
    shard = zlib.crc32(message_id.encode("utf-8")) % DAY_SHARDS
    return f"{moment.astimezone(UTC):%Y-%m-%d}#{shard}"


def replay_values(verdict: Verdict, decision: Decision) -> dict[str, Any]:
    """The facts one decision was made on, for `mailfilter policy replay` (docs/operate.md)."""
    from mailfilter.policy.decide import segment_of  # noqa: PLC0415 - the policy core only when a verdict is recorded

    c = verdict.classification
    values: dict[str, Any] = {
        "classification": {
            "category": c.category.value,
            "category_source": c.category_source.value,
            "product": c.product,
            "product_source": c.product_source.value,
            "products": list(c.products),
            "cloud": c.cloud.value,
            "cloud_source": c.cloud_source.value,
            "evidence": [{"kind": e.kind, "value": str(e.value), "source": e.source.value} for e in c.evidence],
        },
    }
    if verdict.authenticated is not None:
        values["authenticated"] = verdict.authenticated
    match = decision.match
    if match is None:
        if decision.customer is None:  # decided with no directory entry: the facts are complete
            values["segment"] = segment_of(None).value
        return values
    view = match.customer
    values["segment"] = segment_of(view).value
    values["customer_view"] = {"cloud": view.cloud.value, **view_values(view), "matched_by": match.matched_by, "entry": match.entry}
    return values


class DecisionLog:
    """Writes each message's decisions in one BatchWriteItem (25 recipients per request) and reads them back."""

    def __init__(
        self,
        table_name: str,
        *,
        client: BaseClient | None = None,
        retention_days: int = 90,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if not table_name:
            raise ValueError("DecisionLog needs a table name (DECISIONS_TABLE)")
        if retention_days < 1:
            raise ValueError(f"retention_days must be at least 1, not {retention_days}")
        self.table_name = table_name
        self.retention = timedelta(days=retention_days)
        self._client = client
        self._clock = clock

    @property
    def client(self) -> BaseClient:
        return self._client or clients.client("dynamodb")

    def _common(self, message_id: str, direction: Direction, cloud: Cloud, kind: str) -> dict[str, Any]:
        if kind not in KINDS:
            raise ValueError(f"unknown record kind {kind!r}; expected one of {', '.join(sorted(KINDS))}")
        if not message_id:
            raise ValueError("a decision record needs a message id")
        now = self._clock()
        return {
            "pk": f"msg#{message_id}",
            "message_id": message_id,
            "direction": direction.value,
            "cloud": cloud.value,
            "kind": kind,
            "at": _timestamp(now),
            "day": day_key(message_id, now),
            "expires_at": int((now + self.retention).timestamp()),  # DynamoDB TTL: epoch seconds
        }

    def record(self, verdict: Verdict, *, kind: str = "decision") -> None:
        """Record every decision of a verdict: one item per recipient, in one request per 25 recipients."""
        self._write(self.items(verdict, kind=kind))

    def items(self, verdict: Verdict, *, kind: str = "decision") -> list[dict[str, Any]]:
        """The verdict's records as DynamoDB items, one per recipient, for `record` or a caller's own transaction."""
        common = self._common(verdict.message_id, verdict.direction, verdict.classification.cloud, kind)
        common["mode"] = verdict.mode.value
        if verdict.sender is not None:  # outbound: who sent it and its subject, for the digests (docs/policy.md)
            common["sender"], common["subject"] = verdict.sender, verdict.subject
        items = []
        for decision in verdict.decisions:
            values = {
                **common,
                "sk": f"{kind}#{decision.recipient}",
                "recipient": decision.recipient,
                "action": decision.action.value,
                "effective": decision.effective.value,
                "deliver_to": list(decision.deliver_to),
                "rule": decision.rule,
                "seed_rule": decision.seed_rule,
                "reason": decision.reason,
                "category": decision.category.value,
                "product": decision.product,
                "customer": decision.customer,
                "customer_name": decision.customer_name,
                "matched_by": decision.matched_by,
                "partners": list(decision.partners),
                **replay_values(verdict, decision),
            }
            # None is left out rather than stored as NULL: `customer` keys a sparse index.
            items.append(to_item({k: v for k, v in values.items() if v is not None}))
        return items

    def record_outcome(
        self, message_id: str, direction: Direction, cloud: Cloud, recipients: Sequence[str], *, kind: str, error: str
    ) -> None:
        """Record an outcome reached without a verdict (deferred, rejected), one item per recipient."""
        self._write(self.outcome_items(message_id, direction, cloud, recipients, kind=kind, error=error))

    def outcome_items(
        self, message_id: str, direction: Direction, cloud: Cloud, recipients: Sequence[str], *, kind: str, error: str
    ) -> list[dict[str, Any]]:
        """An outcome's records as DynamoDB items, for `record_outcome` or a caller's own transaction."""
        common = self._common(message_id, direction, cloud, kind)
        return [to_item({**common, "sk": f"{kind}#{recipient}", "recipient": recipient, "error": error}) for recipient in recipients]

    def _write(self, items: list[dict[str, Any]]) -> None:
        requests = [{"PutRequest": {"Item": item}} for item in items]
        try:
            batch_write(self.client, self.table_name, requests)
        except (BatchIncompleteError, ClientError, BotoCoreError) as error:
            raise DecisionLogError(f"decisions table {self.table_name}: {error}") from error

    def for_message(self, message_id: str) -> list[dict[str, Any]]:
        """Every record of one message, oldest first."""
        records = self._query(
            KeyConditionExpression="pk = :pk", ExpressionAttributeValues=to_item({":pk": f"msg#{message_id}"}), ConsistentRead=True
        )
        return sorted(records, key=lambda record: (record["at"], record["sk"]))

    def for_customer(self, tenant_id: str, cloud: Cloud | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """The latest `limit` records for one customer (tenant id), newest first, optionally in one cloud."""
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        query: dict[str, Any] = {
            "IndexName": CUSTOMER_INDEX,
            "KeyConditionExpression": "customer = :customer",
            "ExpressionAttributeValues": to_item({":customer": tenant_id}),
            "ScanIndexForward": False,
        }
        if cloud is not None:
            query["FilterExpression"] = "cloud = :cloud"
            query["ExpressionAttributeValues"] |= to_item({":cloud": cloud.value})
        return self._query(limit=limit, **query)

    def _query(self, *, limit: int | None = None, **query: Any) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        try:
            if limit is not None:
                query["PaginationConfig"] = {"PageSize": limit}  # read only what is needed, page by page
            for page in self.client.get_paginator("query").paginate(TableName=self.table_name, **query):
                records.extend(from_item(item) for item in page["Items"])
                if limit is not None and len(records) >= limit:
                    return records[:limit]
        except (ClientError, BotoCoreError) as error:
            raise DecisionLogError(f"decisions table {self.table_name}: {error}") from error
        return records
