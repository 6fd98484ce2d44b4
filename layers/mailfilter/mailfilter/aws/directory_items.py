"""The directory table's layout: its keys, its three kinds of item, and how records become items and back.

Design: docs/directory-table.md. This module is the only one that spells the
table's keys and attributes; everything else goes through it:

- `DynamoDirectory` (mailfilter.aws.directory_table) reads entry items on the mail path;
- `mailfilter directory` (mailfilter_cli.directory_import, directory_export) writes,
  prunes, exports and counts them;
- the decisions log keeps a matched customer's `view_values`, the entry item's own shape.

Items are in DynamoDB's attribute-value form; `to_item` and `from_item` convert
plain Python values with boto3's own TypeSerializer and TypeDeserializer.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from mailfilter.aws.batch import Item
from mailfilter.directory.matching import ADDRESS, DOMAIN, LookupKey
from mailfilter.directory.records import CspLink, CustomerRecord, PartnerRecord
from mailfilter.directory.view import CustomerView, PartnerLink, customer_view
from mailfilter.vocabulary.model import Cloud

# Sort key values, which double as the item type.
ENTRY = "entry"  # one per address or domain: what the mail path reads
CUSTOMER = "customer"  # one per customer: its record, for export, show, stats, prune
PARTNER = "partner"  # one per partner: its record
KINDS = (ENTRY, CUSTOMER, PARTNER)

# What the readers ask for: projections, with the names of reserved words.
ENTRY_PROJECTION = "pk, #view"  # the mail path: the key names the entry, the view is the customer
ENTRY_NAMES = {"#view": "view"}  # "view" is one of DynamoDB's reserved words
ROOT_STATE_PROJECTION = "#pk, #digest, #domains, #addresses"  # import: what a stored root holds, to skip or clean up
ROOT_STATE_NAMES = {"#pk": "pk", "#digest": "digest", "#domains": "domains", "#addresses": "addresses"}
KEY_PROJECTION = "pk, sk"  # prune: which items there are
STATS_PROJECTION = "pk, sk, csp"  # stats: which items there are, and which customers have CSP partners

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


# --- plain values and attribute values ----------------------------------------


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


def _attribute(item: Item, name: str, default: Any = None) -> Any:
    return _plain(_deserializer.deserialize(item[name])) if name in item else default


# --- keys -------------------------------------------------------------------


def entry_key(cloud: Cloud | str, key: LookupKey) -> Item:
    # On the mail path (a few keys per recipient): spelled in attribute-value form, which
    # costs a tenth of TypeSerializer's 1.8 microseconds a key.
    return {"pk": {"S": f"{cloud}#{key.kind}#{key.value}"}, "sk": {"S": ENTRY}}


def customer_key(cloud: Cloud | str, tenant_id: str) -> Item:
    return to_item({"pk": f"{cloud}#{CUSTOMER}#{tenant_id}", "sk": CUSTOMER})


def partner_key(cloud: Cloud | str, partner_id: str) -> Item:
    return to_item({"pk": f"{cloud}#{PARTNER}#{partner_id}", "sk": PARTNER})


def key_of(item: Item) -> Item:
    """The item's key (pk and sk), e.g. to delete it."""
    return {"pk": item["pk"], "sk": item["sk"]}


def partition_of(item: Item) -> str:
    """The item's partition key: what tells one customer's or partner's root item from another's."""
    return _attribute(item, "pk")


@dataclass(frozen=True)
class ItemKey:
    """What a directory item's key names."""

    kind: str  # ENTRY, CUSTOMER or PARTNER
    cloud: Cloud
    entry: LookupKey | None = None  # an entry's address or domain
    id: str = ""  # a customer's tenant id, a partner's id


def parse_key(item: Item) -> ItemKey | None:
    """The cloud and what an item is about, from its key; None for an item that is not the directory's."""
    kind = _attribute(item, "sk")
    if kind not in KINDS:
        return None
    cloud, _, rest = partition_of(item).partition("#")
    if kind == ENTRY:
        entry_kind, _, value = rest.partition("#")
        return ItemKey(kind, Cloud(cloud), entry=LookupKey(entry_kind, value))
    return ItemKey(kind, Cloud(cloud), id=rest.removeprefix(f"{kind}#"))


def kind_filter(kind: str) -> dict[str, Any]:
    """Scan arguments that keep only items of one kind (ENTRY, CUSTOMER or PARTNER)."""
    return {"FilterExpression": "sk = :sk", "ExpressionAttributeValues": to_item({":sk": kind})}


# --- item builders (write side) ----------------------------------------------


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
    # The view is one JSON string rather than nested attributes: botocore parses a
    # nested map attribute by attribute, which made it most of a lookup's client
    # time; one string per item is parsed by json.loads in C, and the item is smaller.
    compact = to_item({"view": _compact(view)})
    for key in entries_of(record):
        items.append({**entry_key(record.cloud, key), **compact})
    return items


def entries_of(record: CustomerRecord) -> list[LookupKey]:
    """The entries a customer record defines: its addresses, then its domains."""
    return [LookupKey(ADDRESS, a) for a in record.addresses] + [LookupKey(DOMAIN, d) for d in record.domains]


# --- reading items back --------------------------------------------------------


def same_digest(item: Item, stored: Item | None) -> bool:
    """Whether a stored root item (or None: not stored) already holds what `item` would write."""
    return stored is not None and stored.get("digest") == item["digest"]


def stored_entries(root: Item) -> list[LookupKey]:
    """The entries a stored customer root lists (read with ROOT_STATE_PROJECTION): addresses, then domains."""
    return [LookupKey(ADDRESS, a) for a in _attribute(root, "addresses", [])] + [
        LookupKey(DOMAIN, d) for d in _attribute(root, "domains", [])
    ]


def has_partners(root: Item) -> bool:
    """Whether a customer root item names any CSP partner (read with STATS_PROJECTION)."""
    return bool(_attribute(root, "csp"))


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
    raise ValueError(f"item {partition_of(item)!r} is a {kind} item, not a partner or customer")


def view_of(item: Item, cloud: Cloud) -> CustomerView:
    """An entry item (read with ENTRY_PROJECTION) to the CustomerView the policy core decides on."""
    values = json.loads(item["view"]["S"])  # the mail path: a string attribute read as such, not through TypeDeserializer
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


def lookup_key_of(item: Item) -> LookupKey:
    """The address or domain an entry item (read with ENTRY_PROJECTION) is the entry of."""
    _, _, rest = item["pk"]["S"].partition("#")  # the mail path, as in `view_of`
    kind, _, value = rest.partition("#")
    return LookupKey(kind, value)
