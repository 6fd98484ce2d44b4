"""Blocked mail, kept in the mail bucket so that nothing is ever silently dropped.

Layout under the quarantine prefix (default "quarantine/"):

    items/YYYY/MM/DD/<id>.json             the envelope: the request, its verdict, release state
    by-customer/<tenant>/YYYY/MM/DD/<id>   an empty marker per customer, for `list --customer`

An id starts with its UTC date (`20250114-3f9c...`), so `show` and `release`
read one key and `list --since` starts its listing at the right day with
S3's StartAfter instead of scanning the bucket. The id's other half is a
digest of the message id: storing the same message twice on one day
overwrites rather than duplicates.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from botocore.client import BaseClient
from botocore.exceptions import ClientError

from mailfilter.aws import clients
from mailfilter.vocabulary.errors import QuarantineError
from mailfilter.vocabulary.holds import QuarantineItem, Release, quarantine_id

ITEMS = "items/"
BY_CUSTOMER = "by-customer/"
NO_CUSTOMER = "_none"
_ID = re.compile(r"^(\d{8})-([0-9a-f]{20})$")


def _day_path(item_id: str) -> str:
    match = _ID.match(item_id)
    if not match:
        raise QuarantineError(f"{item_id!r} is not a quarantine id (expected YYYYMMDD-<20 hex digits>)")
    day = match.group(1)
    return f"{day[:4]}/{day[4:6]}/{day[6:]}"


def _day_of_key(key: str) -> datetime | None:
    parts = key.rsplit("/", 4)
    try:
        return datetime(int(parts[-4]), int(parts[-3]), int(parts[-2]), tzinfo=UTC)
    except (ValueError, IndexError):
        return None


class Quarantine:
    def __init__(self, bucket: str, prefix: str = "quarantine/", client: BaseClient | None = None) -> None:
        self.bucket = bucket
        self.prefix = prefix if prefix.endswith("/") else prefix + "/"
        self._client = client

    @property
    def client(self) -> BaseClient:
        return self._client or clients.client("s3")

    def item_key(self, item_id: str) -> str:
        return f"{self.prefix}{ITEMS}{_day_path(item_id)}/{item_id}.json"

    def _marker_key(self, customer: str, item_id: str) -> str:
        return f"{self.prefix}{BY_CUSTOMER}{customer}/{_day_path(item_id)}/{item_id}"

    def put(
        self,
        *,
        message_id: str,
        direction: str,
        cloud: str,
        recipients: Sequence[str],
        customers: Sequence[str | None],
        request: Mapping[str, Any],
        verdict: Mapping[str, Any],
        partner_contacts: Mapping[str, Sequence[str]] | None = None,
        raw: Mapping[str, str] | None = None,
        now: datetime | None = None,
    ) -> QuarantineItem:
        """Store one message; the envelope first, so a marker never points at nothing."""
        now = now or datetime.now(UTC)
        item = QuarantineItem(
            id=quarantine_id(message_id, now),
            message_id=message_id,
            quarantined_at=now,
            direction=direction,
            cloud=cloud,
            customers=sorted({c or NO_CUSTOMER for c in customers}),
            recipients=list(recipients),
            request=dict(request),
            verdict=dict(verdict),
            partner_contacts={k: list(v) for k, v in (partner_contacts or {}).items()},
            raw=dict(raw) if raw else None,
        )
        self._write(item)
        for customer in item.customers:
            self.client.put_object(Bucket=self.bucket, Key=self._marker_key(customer, item.id), Body=b"")
        return item

    def _write(self, item: QuarantineItem) -> None:
        self.client.put_object(
            Bucket=self.bucket,
            Key=self.item_key(item.id),
            Body=item.model_dump_json().encode(),
            ContentType="application/json",
            ServerSideEncryption="AES256",
        )

    def get(self, item_id: str) -> QuarantineItem:
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self.item_key(item_id))["Body"].read()
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise QuarantineError(f"no quarantined message {item_id} in s3://{self.bucket}/{self.prefix}") from None
            raise
        return QuarantineItem.model_validate_json(body)

    def ids(self, *, customer: str | None = None, since: datetime | None = None) -> Iterator[str]:
        """Ids in date order, from `since`'s day on; only `customer`'s when given."""
        base = f"{self.prefix}{BY_CUSTOMER}{customer}/" if customer else f"{self.prefix}{ITEMS}"
        request = {"Bucket": self.bucket, "Prefix": base}
        if since is not None:
            # Keys sort by day, so StartAfter skips every earlier day without listing it.
            request["StartAfter"] = f"{base}{since.astimezone(UTC):%Y/%m/%d}"
        for page in self.client.get_paginator("list_objects_v2").paginate(**request):
            for entry in page.get("Contents", []):
                name = entry["Key"].rsplit("/", 1)[-1].removesuffix(".json")
                if _ID.match(name):
                    yield name

    def list(self, *, customer: str | None = None, since: datetime | None = None) -> Iterator[QuarantineItem]:
        for item_id in self.ids(customer=customer, since=since):
            item = self.get(item_id)
            if since is None or item.quarantined_at >= since:
                yield item

    def mark_released(self, item_id: str, release: Release) -> QuarantineItem:
        item = self.get(item_id).model_copy(update={"released": release})
        self._write(item)
        return item

    def purge(self, older_than: datetime) -> list[str]:
        """Delete every item and marker from a day before `older_than`'s; returns the purged ids."""
        cutoff = older_than.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        purged: set[str] = set()
        doomed: list[str] = []
        for base in (f"{self.prefix}{ITEMS}", f"{self.prefix}{BY_CUSTOMER}"):
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=base):
                for entry in page.get("Contents", []):
                    day = _day_of_key(entry["Key"])
                    if day is not None and day < cutoff:
                        doomed.append(entry["Key"])
                        if base.endswith(ITEMS):
                            purged.add(entry["Key"].rsplit("/", 1)[-1].removesuffix(".json"))
        for start in range(0, len(doomed), 1000):
            chunk = doomed[start : start + 1000]
            self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in chunk], "Quiet": True})
        return sorted(purged)


def to_json(item: QuarantineItem) -> str:
    return json.dumps(item.model_dump(mode="json"), indent=2, ensure_ascii=False)
