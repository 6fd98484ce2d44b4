"""The customer directory in one DynamoDB table (design: docs/directory-table.md).

Mail path: `DynamoDirectory.lookup` turns every recipient of a message into
lookup keys (exact address, untagged address, domain, parent domains), reads
them with one BatchGetItem per 100 keys, and resolves them with the same
`resolve` the in-memory directory uses. Each lookup item carries the whole
denormalised `CustomerView`, partners included, so nothing else is read.

Write side: item builders from the directory records, used by
`mailfilter directory import`; each customer also has a root item holding its
record (for export, show, stats and prune) and a digest of everything written
for it, so a re-import can skip customers that did not change.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.client import BaseClient
from botocore.exceptions import BotoCoreError, ClientError

from mailfilter.aws import clients
from mailfilter.aws.batch import LOOKUP_BACKOFF, Backoff, Item, batch_get
from mailfilter.directory.matching import ADDRESS, DOMAIN, LookupKey, keys_for, resolve
from mailfilter.directory.records import CspLink, CustomerRecord, PartnerRecord
from mailfilter.directory.view import CustomerMatch, CustomerView, PartnerLink, customer_view
from mailfilter.vocabulary.errors import BatchIncompleteError, DirectoryUnavailable
from mailfilter.vocabulary.model import Cloud

# Sort key values, which double as the item type.
ENTRY = "entry"  # one per address or domain: what the mail path reads
CUSTOMER = "customer"  # one per customer: its record, for export, show, stats, prune
PARTNER = "partner"  # one per partner: its record

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


# --- keys -------------------------------------------------------------------


def entry_key(cloud: Cloud | str, key: LookupKey) -> dict[str, dict[str, str]]:
    return {"pk": {"S": f"{cloud}#{key.kind}#{key.value}"}, "sk": {"S": ENTRY}}


def customer_key(cloud: Cloud | str, tenant_id: str) -> dict[str, dict[str, str]]:
    return {"pk": {"S": f"{cloud}#{CUSTOMER}#{tenant_id}"}, "sk": {"S": CUSTOMER}}


def partner_key(cloud: Cloud | str, partner_id: str) -> dict[str, dict[str, str]]:
    return {"pk": {"S": f"{cloud}#{PARTNER}#{partner_id}"}, "sk": {"S": PARTNER}}


def entry_of(pk: str) -> tuple[Cloud, LookupKey]:
    """The cloud and lookup key an entry item's partition key names."""
    cloud, kind, value = pk.split("#", 2)
    return Cloud(cloud), LookupKey(kind, value)


# --- item builders (write side) ----------------------------------------------


def to_item(values: Mapping[str, Any]) -> Item:
    """Plain Python values to DynamoDB's attribute-value form (lists stay lists, never sets)."""
    return {name: _serializer.serialize(value) for name, value in values.items()}


def from_item(item: Item) -> dict[str, Any]:
    """DynamoDB's attribute-value form back to plain Python values (numbers as int where whole)."""
    return {name: _plain(_deserializer.deserialize(value)) for name, value in item.items()}


def _plain(value: Any) -> Any:
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if hasattr(value, "as_integer_ratio") and not isinstance(value, bool | int | float):  # Decimal
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def _digest(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:32]


def view_values(view: CustomerView) -> dict[str, Any]:
    """A customer view as plain values: the entry item's `view`, and what a decision record keeps for replay."""
    return {
        "tenant_id": view.tenant_id,
        "name": view.name,
        "direct_relationship": view.direct_relationship,
        "direct_products": sorted(view.direct_products),
        "partners": [
            {"partner_id": p.partner_id, "name": p.name, "products": list(p.products), "contacts": list(p.contacts)} for p in view.partners
        ],
    }


def _compact(values: Any) -> str:
    return json.dumps(values, ensure_ascii=False, separators=(",", ":"))


def partner_item(record: PartnerRecord) -> Item:
    values = {"partner_id": record.partner_id, "name": record.name, "contacts": list(record.contacts)}
    return {
        **partner_key(record.cloud, record.partner_id),
        **to_item({**values, "cloud": record.cloud.value, "digest": _digest(values)}),
    }


def customer_items(record: CustomerRecord, partners: Mapping[str, PartnerRecord]) -> list[Item]:
    """The root item first, then one entry item per address and domain.

    `partners` maps the partner ids of the customer's cloud to their records;
    their names and contacts are copied onto every entry item.
    """
    view = view_values(customer_view(record, partners))
    root = record.model_dump(mode="json", exclude={"kind"})
    root["csp"] = [{"partner_id": link.partner_id, "products": list(link.products)} for link in record.csp]
    digest = _digest(root, view)
    items = [{**customer_key(record.cloud, record.tenant_id), **to_item({**root, "digest": digest})}]
    entries = [LookupKey(ADDRESS, a) for a in record.addresses] + [LookupKey(DOMAIN, d) for d in record.domains]
    # The view is one JSON string rather than nested attributes: botocore parses a
    # nested map attribute by attribute, which made it most of a lookup's client
    # time; one string per item is parsed by json.loads in C, and the item is smaller.
    compact = _compact(view)
    for key in entries:
        items.append({**entry_key(record.cloud, key), "view": {"S": compact}})
    return items


def record_of(item: Item) -> PartnerRecord | CustomerRecord:
    """A partner or customer root item back to its directory record (for export)."""
    values = from_item(item)
    kind = values["sk"]
    for name in ("pk", "sk", "digest"):
        values.pop(name, None)
    if kind == PARTNER:
        return PartnerRecord(kind="partner", **values)
    if kind == CUSTOMER:
        values["csp"] = [CspLink(**link) for link in values.get("csp", [])]
        return CustomerRecord(kind="customer", **values)
    raise ValueError(f"item {item['pk']['S']!r} is a {kind} item, not a partner or customer")


def view_of(item: Item, cloud: Cloud) -> CustomerView:
    """An entry item to the CustomerView the policy core decides on."""
    values = json.loads(item["view"]["S"])
    return CustomerView(
        cloud=cloud,
        tenant_id=values["tenant_id"],
        name=values["name"],
        direct_relationship=values["direct_relationship"],
        direct_products=frozenset(values["direct_products"]),
        partners=tuple(
            PartnerLink(partner_id=p["partner_id"], name=p["name"], products=tuple(p["products"]), contacts=tuple(p["contacts"]))
            for p in values["partners"]
        ),
    )


# --- read side (mail path) ---------------------------------------------------

_ABSENT = object()
_VIEW = {"#view": "view"}  # "view" is one of DynamoDB's reserved words


class _TtlCache:
    """A bounded least-recently-used cache whose entries also expire; None (not found) is cached too."""

    def __init__(self, ttl: float, size: int, clock: Callable[[], float]) -> None:
        self.ttl = ttl
        self.size = size
        self.clock = clock
        self._entries: OrderedDict[Any, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Any) -> Any:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return _ABSENT
            if entry[0] <= self.clock():
                del self._entries[key]
                return _ABSENT
            self._entries.move_to_end(key)
            return entry[1]

    def put_many(self, values: Iterable[tuple[Any, Any]]) -> None:
        if self.ttl <= 0 or self.size <= 0:
            return
        expires = self.clock() + self.ttl
        with self._lock:
            for key, value in values:
                self._entries[key] = (expires, value)
                self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


class DynamoDirectory:
    """The `Directory` protocol over the directory table: one BatchGetItem per message (up to 100 keys).

    Found and not-found keys are cached for `cache_ttl_seconds` (0 disables
    the cache), so a warm function resolving a known recipient again makes no
    request. The cache is bounded to `cache_size` keys, least recently used first out.
    """

    def __init__(
        self,
        table_name: str,
        *,
        client: BaseClient | None = None,
        cache_ttl_seconds: float = 60.0,
        cache_size: int = 10_000,
        backoff: Backoff = LOOKUP_BACKOFF,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not table_name:
            raise ValueError("DynamoDirectory needs a table name (DIRECTORY_TABLE)")
        self.table_name = table_name
        self._client = client
        self._backoff = backoff
        self._cache = _TtlCache(cache_ttl_seconds, cache_size, clock)

    @property
    def client(self) -> BaseClient:
        return self._client or clients.client("dynamodb")

    def lookup(self, cloud: Cloud, addresses: Sequence[str]) -> dict[str, CustomerMatch | None]:
        found: dict[LookupKey, CustomerView] = {}
        missing: list[LookupKey] = []
        for key in keys_for(addresses):
            cached = self._cache.get((cloud, key))
            if cached is _ABSENT:
                missing.append(key)
            elif cached is not None:
                found[key] = cached
        if missing:
            fetched = self._fetch(cloud, missing)
            found.update(fetched)
            self._cache.put_many(((cloud, key), fetched.get(key)) for key in missing)
        return {address: resolve(address, found) for address in addresses}

    def _fetch(self, cloud: Cloud, keys: Sequence[LookupKey]) -> dict[LookupKey, CustomerView]:
        try:
            keys_ = [entry_key(cloud, key) for key in keys]
            items = batch_get(self.client, self.table_name, keys_, projection="pk, #view", names=_VIEW, backoff=self._backoff)
        except BatchIncompleteError as error:
            raise DirectoryUnavailable(f"directory table {self.table_name}: {error}") from error
        except (ClientError, BotoCoreError) as error:
            raise DirectoryUnavailable(f"directory table {self.table_name}: {error}") from error
        return {entry_of(item["pk"]["S"])[1]: view_of(item, cloud) for item in items}
