"""The directory on DynamoDB (DynamoDB Local): same answers as the in-memory directory, in one request."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import boto3
import pytest

from mailfilter.aws.batch import Backoff, batch_write
from mailfilter.aws.directory_items import customer_items, partner_item
from mailfilter.aws.directory_table import DynamoDirectory
from mailfilter.directory.memory import InMemoryDirectory
from mailfilter.directory.records import CustomerRecord, PartnerRecord
from mailfilter.vocabulary.errors import DirectoryUnavailable
from mailfilter.vocabulary.model import Cloud

C, GOV = Cloud.COMMERCIAL, Cloud.USGOV
NO_WAIT = Backoff(attempts=3, base=0, cap=0, sleep=lambda _: None)


def partner(pid: str, cloud: Cloud = C, contacts: Iterable[str] = ()) -> PartnerRecord:
    return PartnerRecord(kind="partner", cloud=cloud, partner_id=pid, name=f"Partner {pid}", contacts=list(contacts))


def customer(tenant: str, cloud: Cloud = C, domains: Iterable[str] = (), addresses: Iterable[str] = (), **more: Any) -> CustomerRecord:
    return CustomerRecord(
        kind="customer", cloud=cloud, tenant_id=tenant, name=tenant.title(), domains=list(domains), addresses=list(addresses), **more
    )


RECORDS = [
    partner("alpha", contacts=["desk@alpha.example"]),
    partner("alpha", GOV, contacts=["gov@alpha.example"]),
    customer("contoso", domains=["contoso.com"], direct_products=["dynamics-365"], csp=[{"partner_id": "alpha", "products": ["azure"]}]),
    customer("contoso-eu", domains=["eu.contoso.com"]),
    customer("ceo", addresses=["ceo@contoso.com"], csp=[{"partner_id": "alpha"}]),
    customer("tagged", addresses=["it+billing@contoso.com"]),
    customer("contoso-gov", GOV, domains=["contoso.com"], csp=[{"partner_id": "alpha"}]),
]

ADDRESSES = [
    "someone@contoso.com",  # domain entry
    "someone@mail.contoso.com",  # subdomain of a domain entry
    "someone@mail.eu.contoso.com",  # the more specific domain entry wins
    "ceo@contoso.com",  # exact address beats domain
    "ceo+news@contoso.com",  # tag ignored: the untagged address has an entry
    "it+billing@contoso.com",  # a tagged address with its own entry
    "it+other@contoso.com",  # tag ignored, no entry for it@: falls back to the domain
    "nobody@elsewhere.example",  # not in the directory
    "someone@com.example",  # no entry for a bare parent
]


def load(table: str, records: list[PartnerRecord | CustomerRecord], client: Any = None) -> None:
    partners = {cloud: {r.partner_id: r for r in records if isinstance(r, PartnerRecord) and r.cloud == cloud} for cloud in Cloud}
    items = []
    for record in records:
        items.extend([partner_item(record)] if isinstance(record, PartnerRecord) else customer_items(record, partners[record.cloud]))
    batch_write(client or boto3.client("dynamodb"), table, [{"PutRequest": {"Item": item}} for item in items])


def counted_client() -> tuple[Any, list[str]]:
    """A fresh client whose every HTTP request to DynamoDB is recorded by name (retries included)."""
    client = boto3.client("dynamodb")
    sent: list[str] = []
    client.meta.events.register("before-send.dynamodb", lambda request, **_: sent.append(request.headers["X-Amz-Target"].decode()))
    return client, sent


@pytest.fixture
def loaded(directory_table: str) -> str:
    load(directory_table, RECORDS)
    return directory_table


@pytest.mark.parametrize("cloud", list(Cloud))
def test_lookup_resolves_exactly_like_the_in_memory_directory(loaded: str, cloud: Cloud) -> None:
    dynamo = DynamoDirectory(loaded, cache_ttl_seconds=0)
    assert dynamo.lookup(cloud, ADDRESSES) == InMemoryDirectory(RECORDS).lookup(cloud, ADDRESSES)


def test_exact_address_beats_domain_and_specific_domain_beats_parent(loaded: str) -> None:
    found = DynamoDirectory(loaded).lookup(C, ["ceo@contoso.com", "x@mail.eu.contoso.com", "x@mail.contoso.com"])
    assert (found["ceo@contoso.com"].customer.tenant_id, found["ceo@contoso.com"].matched_by) == ("ceo", "address")
    assert found["x@mail.eu.contoso.com"].entry == "eu.contoso.com"
    assert (found["x@mail.contoso.com"].customer.tenant_id, found["x@mail.contoso.com"].entry) == ("contoso", "contoso.com")


def test_clouds_never_mix(loaded: str) -> None:
    directory = DynamoDirectory(loaded)
    assert directory.lookup(GOV, ["a@contoso.com"])["a@contoso.com"].customer.tenant_id == "contoso-gov"
    assert directory.lookup(Cloud.GERMANY, ["a@contoso.com"])["a@contoso.com"] is None


def test_lookup_item_carries_the_partners_names_products_and_contacts(loaded: str) -> None:
    view = DynamoDirectory(loaded).lookup(C, ["a@contoso.com"])["a@contoso.com"].customer
    assert view.direct_products == frozenset({"dynamics-365"})
    assert [(p.partner_id, p.name, p.products, p.contacts) for p in view.partners] == [
        ("alpha", "Partner alpha", ("azure",), ("desk@alpha.example",))
    ]


def test_33_recipients_with_domain_and_parent_cost_one_request(loaded: str) -> None:
    client, sent = counted_client()
    recipients = [f"user{i}@mail.tenant{i}.example" for i in range(33)]  # 3 keys each: 99 keys
    DynamoDirectory(loaded, client=client).lookup(C, recipients)
    assert sent == ["DynamoDB_20120810.BatchGetItem"]


def test_more_than_100_keys_take_one_request_per_100(loaded: str) -> None:
    client, sent = counted_client()
    DynamoDirectory(loaded, client=client).lookup(C, [f"user{i}@mail.tenant{i}.example" for i in range(40)])  # 120 keys
    assert len(sent) == 2


def test_warm_cache_answers_found_and_not_found_without_a_request(loaded: str) -> None:
    client, sent = counted_client()
    directory = DynamoDirectory(loaded, client=client)
    first = directory.lookup(C, ADDRESSES)
    sent.clear()
    assert directory.lookup(C, ADDRESSES) == first
    assert sent == []


def test_cache_entries_expire_after_their_time_to_live(loaded: str) -> None:
    now = [0.0]
    client, sent = counted_client()
    directory = DynamoDirectory(loaded, client=client, cache_ttl_seconds=60, clock=lambda: now[0])
    directory.lookup(C, ["a@contoso.com"])
    now[0] = 59.0
    directory.lookup(C, ["a@contoso.com"])
    assert len(sent) == 1
    now[0] = 61.0
    directory.lookup(C, ["a@contoso.com"])
    assert len(sent) == 2


def test_cache_is_bounded(loaded: str) -> None:
    directory = DynamoDirectory(loaded, cache_size=5)
    directory.lookup(C, ADDRESSES)
    assert len(directory._cache) == 5


def _leave_unprocessed(table: str, how_many: int | None, calls: list[int]) -> Any:
    """An after-call hook that moves found items back into UnprocessedKeys, as a throttled table does."""

    def hook(parsed: dict[str, Any], **_: Any) -> None:
        calls.append(1)
        if how_many is not None and len(calls) > 1:
            return
        items = parsed["Responses"][table]
        moved = items if how_many is None else items[:how_many]
        parsed["Responses"][table] = items[len(moved) :]
        if moved:
            keys = [{"pk": i["pk"], "sk": {"S": "entry"}} for i in moved]
            parsed["UnprocessedKeys"] = {
                table: {"Keys": keys, "ProjectionExpression": "pk, #view", "ExpressionAttributeNames": {"#view": "view"}}
            }

    return hook


def test_unprocessed_keys_are_retried_until_every_key_is_read(loaded: str) -> None:
    client, sent = counted_client()
    calls: list[int] = []
    client.meta.events.register("after-call.dynamodb.BatchGetItem", _leave_unprocessed(loaded, 2, calls))
    found = DynamoDirectory(loaded, client=client, backoff=NO_WAIT).lookup(C, ADDRESSES)
    assert found == InMemoryDirectory(RECORDS).lookup(C, ADDRESSES)
    assert len(sent) == 2


def test_keys_still_unprocessed_after_every_retry_raise_directory_unavailable(loaded: str) -> None:
    client, _ = counted_client()
    client.meta.events.register("after-call.dynamodb.BatchGetItem", _leave_unprocessed(loaded, None, []))
    with pytest.raises(DirectoryUnavailable, match="unprocessed after 3 attempts"):
        DynamoDirectory(loaded, client=client, backoff=NO_WAIT).lookup(C, ["a@contoso.com"])


def test_a_missing_table_raises_directory_unavailable(dynamodb_local: str) -> None:
    with pytest.raises(DirectoryUnavailable, match="ResourceNotFoundException"):
        DynamoDirectory("no-such-table").lookup(C, ["a@contoso.com"])


def test_a_failed_lookup_is_not_cached_as_not_found(loaded: str) -> None:
    client, sent = counted_client()
    failing = [True]
    hook = _leave_unprocessed(loaded, None, [])
    client.meta.events.register("after-call.dynamodb.BatchGetItem", lambda **kw: hook(**kw) if failing[0] else None)
    directory = DynamoDirectory(loaded, client=client, backoff=NO_WAIT)
    with pytest.raises(DirectoryUnavailable):
        directory.lookup(C, ["a@contoso.com"])
    failing[0] = False
    sent.clear()
    assert directory.lookup(C, ["a@contoso.com"])["a@contoso.com"].customer.tenant_id == "contoso"
    assert len(sent) == 1


def test_a_table_name_is_required() -> None:
    with pytest.raises(ValueError, match="DIRECTORY_TABLE"):
        DynamoDirectory("")
