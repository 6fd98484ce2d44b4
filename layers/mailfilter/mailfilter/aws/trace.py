"""Reading the decisions table back: message trace, newest first, one Query per key (never a Scan).

Which query answers a filter (the indexes are `mailfilter.aws.decisions`'):

| given           | query                                                                |
|-----------------|----------------------------------------------------------------------|
| a message id    | the table's partition `msg#<id>`                                     |
| a customer      | `by-customer` (customer, at) within the time range                   |
| a recipient     | `by-recipient` (recipient, at) within the time range                 |
| anything else   | `by-day`: each day of the range, each shard, merged newest first     |

Partner, rule, action, cloud, kind and direction are filters on what the query
reads. Records are yielded as they are read, so a caller can stream them; a
`Cursor` (the time and keys of the last record handed out) resumes a listing
where it stopped, whichever query answers it.
"""

from __future__ import annotations

import base64
import heapq
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.client import BaseClient
from botocore.exceptions import BotoCoreError, ClientError

from mailfilter.aws import clients
from mailfilter.aws.decisions import CUSTOMER_INDEX, DAY_INDEX, DAY_SHARDS, RECIPIENT_INDEX, _timestamp
from mailfilter.aws.directory_items import from_item
from mailfilter.vocabulary.errors import DecisionLogError


@dataclass(frozen=True)
class TraceFilter:
    """What to trace; every field given must match (partner: one of the record's partners)."""

    since: datetime
    until: datetime | None = None
    message_id: str | None = None
    customer: str | None = None
    recipient: str | None = None
    partner: str | None = None
    rule: str | None = None
    action: str | None = None
    cloud: str | None = None
    kinds: frozenset[str] = field(default_factory=frozenset)  # empty: every kind
    direction: str | None = None

    def matches(self, record: dict[str, Any]) -> bool:
        at = record.get("at", "")
        if at < _timestamp(self.since) or (self.until is not None and at > _timestamp(self.until)):
            return False
        for name in ("message_id", "customer", "recipient", "rule", "cloud", "direction"):
            wanted = getattr(self, name)
            if wanted is not None and record.get(name) != wanted:
                return False
        if self.action is not None and self.action not in (record.get("action"), record.get("kind")):
            return False  # "deferred", "rejected", "released", "violation" are kinds; allow/reroute/block actions
        if self.partner is not None and self.partner not in (record.get("partners") or ()):
            return False
        return not self.kinds or record.get("kind") in self.kinds


@dataclass(frozen=True)
class Cursor:
    """Where a listing stopped: the `at` of the last record handed out and the keys already handed out at that time."""

    at: str
    seen: tuple[str, ...]

    def encode(self) -> str:
        text = json.dumps({"at": self.at, "seen": list(self.seen)}, separators=(",", ":"))
        return base64.urlsafe_b64encode(text.encode("utf-8")).decode("ascii").rstrip("=")

    @classmethod
    def decode(cls, token: str) -> Cursor:
        try:
            data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
            return cls(str(data["at"]), tuple(str(key) for key in data["seen"]))
        except (ValueError, KeyError, TypeError) as error:
            raise ValueError(f"not a continuation token from `mailfilter trace`: {token!r}") from error

    @staticmethod
    def after(records: Iterable[dict[str, Any]]) -> Cursor | None:
        """The cursor after the last of `records` (the records of that same time among them, too)."""
        records = list(records)
        if not records:
            return None
        last = records[-1]["at"]
        return Cursor(last, tuple(_key(r) for r in records if r["at"] == last))


def _key(record: dict[str, Any]) -> str:
    return f"{record['pk']}|{record['sk']}"


class DecisionTrace:
    """Queries the decisions table (`DECISIONS_TABLE`) for `mailfilter trace`, `policy replay` and `report`."""

    def __init__(self, table_name: str, *, client: BaseClient | None = None) -> None:
        self.table_name = table_name
        self._client = client

    @property
    def client(self) -> BaseClient:
        return self._client or clients.client("dynamodb")

    def query_plan(self, wanted: TraceFilter) -> str:
        """Which query answers `wanted`: "message", "by-customer", "by-recipient" or "by-day"."""
        if wanted.message_id:
            return "message"
        if wanted.customer:
            return CUSTOMER_INDEX
        if wanted.recipient:
            return RECIPIENT_INDEX
        return DAY_INDEX

    def records(self, wanted: TraceFilter, *, cursor: Cursor | None = None) -> Iterator[dict[str, Any]]:
        """Every matching record, newest first, starting after `cursor`."""
        until = wanted.until or datetime.now(UTC)
        upper = _timestamp(until)
        if cursor is not None:
            upper = min(upper, cursor.at)
        lower = _timestamp(wanted.since)
        plan = self.query_plan(wanted)
        if plan == "message":
            found = self._query(
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": {"S": f"msg#{wanted.message_id}"}},
                ConsistentRead=True,
            )
            source: Iterator[dict[str, Any]] = iter(sorted(found, key=_newest_first))
        elif plan in (CUSTOMER_INDEX, RECIPIENT_INDEX):
            attribute = "customer" if plan == CUSTOMER_INDEX else "recipient"
            value = wanted.customer if plan == CUSTOMER_INDEX else wanted.recipient
            source = self._indexed(plan, attribute, str(value), lower, upper)
        else:
            source = self._by_day(wanted.since, until, lower, upper)
        seen = set(cursor.seen) if cursor else set()
        for record in source:
            if cursor is not None and record["at"] == cursor.at and _key(record) in seen:
                continue
            if record["at"] > upper:
                continue
            if wanted.matches(record):
                yield record

    def _indexed(self, index: str, attribute: str, value: str, lower: str, upper: str) -> Iterator[dict[str, Any]]:
        return self._pages(
            IndexName=index,
            KeyConditionExpression="#key = :key AND #at BETWEEN :lower AND :upper",
            ExpressionAttributeNames={"#key": attribute, "#at": "at"},
            ExpressionAttributeValues={":key": {"S": value}, ":lower": {"S": lower}, ":upper": {"S": upper}},
            ScanIndexForward=False,
        )

    def _by_day(self, since: datetime, until: datetime, lower: str, upper: str) -> Iterator[dict[str, Any]]:
        day = until.astimezone(UTC).date()
        first = since.astimezone(UTC).date()
        while day >= first:
            shards = [self._indexed(DAY_INDEX, "day", f"{day:%Y-%m-%d}#{shard}", lower, upper) for shard in range(DAY_SHARDS)]
            yield from heapq.merge(*shards, key=_newest_first)
            day -= timedelta(days=1)

    def _pages(self, **query: Any) -> Iterator[dict[str, Any]]:
        try:
            for page in self.client.get_paginator("query").paginate(TableName=self.table_name, **query):
                for item in page["Items"]:
                    yield from_item(item)
        except (ClientError, BotoCoreError) as error:
            raise DecisionLogError(f"decisions table {self.table_name}: {error}") from error

    def _query(self, **query: Any) -> list[dict[str, Any]]:
        return list(self._pages(**query))


def _newest_first(record: dict[str, Any]) -> tuple[str, str]:
    # heapq.merge and sorted want ascending keys: invert the characters of the time stamp.
    return (_invert(record["at"]), _invert(_key(record)))


def _invert(text: str) -> str:
    return "".join(chr(0x10FFFF - ord(ch)) for ch in text)
