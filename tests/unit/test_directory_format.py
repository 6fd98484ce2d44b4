"""The directory file format: normalisation, and every problem reported at once with file, line and field."""

from __future__ import annotations

import json

import pytest

from mailfilter.directory.load import DirectoryFileError, dump_record, read_directory
from mailfilter.directory.records import CustomerRecord
from mailfilter_testkit.paths import EVENTS


def write(tmp_path, *rows) -> str:
    path = tmp_path / "directory.jsonl"
    path.write_text("\n".join(row if isinstance(row, str) else json.dumps(row) for row in rows) + "\n", encoding="utf-8")
    return str(path)


PARTNER = {"kind": "partner", "cloud": "commercial", "partner_id": "fabrikam", "name": "Fabrikam", "contacts": ["Desk@Fabrikam.example"]}


def customer(**overrides) -> dict:
    row = {"kind": "customer", "cloud": "commercial", "tenant_id": "t1", "name": "Contoso", "domains": ["contoso.com"]}
    row.update(overrides)
    return row


def problems(path: str) -> list[str]:
    with pytest.raises(DirectoryFileError) as caught:
        read_directory(path)
    return [str(issue) for issue in caught.value.issues]


def test_addresses_and_domains_are_normalised(tmp_path):
    path = write(tmp_path, PARTNER, customer(domains=["Contoso.COM.", "Bücher.example"], addresses=["CEO@Gmail.Example"]))
    partner, row = read_directory(path)
    assert partner.contacts == ["desk@fabrikam.example"]
    assert row.domains == ["contoso.com", "xn--bcher-kva.example"]
    assert row.addresses == ["ceo@gmail.example"]


def test_direct_products_imply_a_direct_relationship(tmp_path):
    (row,) = read_directory(write(tmp_path, customer(direct_products=["Dynamics-365"])))
    assert row.direct_relationship is True
    assert row.direct_products == ["dynamics-365"]


def test_every_problem_in_the_file_is_reported_with_line_and_field(tmp_path):
    path = write(
        tmp_path,
        PARTNER,
        customer(extra="x"),  # 2: unknown field
        customer(tenant_id="t2", cloud="mars"),  # 3: unknown cloud
        customer(tenant_id="t3", domains=["other.example"], addresses=["not an address"]),  # 4: malformed address
        customer(tenant_id="t4", domains=["elsewhere.example"], csp=[{"partner_id": "nobody"}]),  # 5: unknown partner
        "{broken json",  # 6
        customer(tenant_id="t5", domains=["contoso.com"]),  # 7: ok on its own
        customer(tenant_id="t5", domains=["fresh.example"]),  # 8: duplicate tenant
        {**PARTNER},  # 9: duplicate partner
    )
    found = problems(path)
    name = path
    assert f"{name}:2: extra: Extra inputs are not permitted" in found
    assert any(p.startswith(f"{name}:3: cloud:") for p in found)
    assert any(p.startswith(f"{name}:4: addresses.0:") and "not of the form" in p for p in found)
    assert f"{name}:5: csp.0.partner_id: unknown partner 'nobody' in cloud commercial" in found
    assert any(p.startswith(f"{name}:6: (line): not valid JSON") for p in found)
    assert any(p.startswith(f"{name}:8: tenant_id:") and "line 7" in p for p in found)
    assert any(p.startswith(f"{name}:9: partner_id:") and "line 1" in p for p in found)
    assert len(found) == 7


def test_duplicate_domain_claim_within_a_cloud_is_an_error(tmp_path):
    found = problems(write(tmp_path, customer(), customer(tenant_id="t2", domains=["CONTOSO.com"])))
    expected = "contoso.com is already claimed by tenant 't1' on line 1 in cloud commercial"
    assert found == [f"{tmp_path / 'directory.jsonl'}:2: domains: {expected}"]


def test_the_same_domain_in_two_clouds_is_two_customers(tmp_path):
    rows = read_directory(write(tmp_path, customer(), customer(cloud="usgov")))
    assert [r.cloud.value for r in rows] == ["commercial", "usgov"]


@pytest.mark.parametrize(
    ("row", "field", "fragment"),
    [
        (customer(domains=[], addresses=[]), "(record)", "at least one entry"),
        (customer(direct_relationship=False, direct_products=["azure"]), "(record)", "implies direct_relationship"),
        (customer(name="Bad\nName"), "name", "String should match pattern"),
        (customer(domains=["localhost"]), "domains.0", "has no dot"),
        ({"kind": "reseller"}, "(record)", "does not match any of the expected tags"),
        ({"kind": "partner", "cloud": "commercial", "name": "X"}, "partner_id", "Field required"),
    ],
)
def test_invalid_rows_name_the_field_and_the_problem(tmp_path, row, field, fragment):
    (problem,) = problems(write(tmp_path, row))
    assert f":1: {field}: " in problem
    assert fragment in problem


def test_a_record_written_back_reads_the_same(tmp_path):
    original = read_directory(write(tmp_path, PARTNER, customer(csp=[{"partner_id": "fabrikam", "products": ["azure"]}])))
    again = read_directory(write(tmp_path, *[dump_record(r) for r in original]))
    assert again == original


PUBLIC_SUFFIX = "is a public suffix"


@pytest.mark.parametrize(
    ("domain", "shown"),
    [
        ("co.uk", "co.uk"),  # ICANN section
        ("com.au", "com.au"),
        ("github.io", "github.io"),  # private section
        ("s3.amazonaws.com", "s3.amazonaws.com"),
        ("xn--55qx5d.cn", "xn--55qx5d.cn (公司.cn)"),  # an IDN suffix, written as punycode
        ("公司.cn", "xn--55qx5d.cn (公司.cn)"),  # the same suffix written in Unicode
        ("CO.UK.", "co.uk"),  # upper case and a trailing dot normalise first
    ],
)
def test_a_public_suffix_is_refused_as_a_customer_domain(tmp_path, domain, shown):
    path = write(tmp_path, customer(domains=[domain]))
    assert problems(path) == [
        f"{path}:1: domains.0: {shown} {PUBLIC_SUFFIX}: it would match every domain registered under it; list the customer's own domains"
    ]


def test_the_public_suffix_is_named_at_its_position_in_the_line_as_written(tmp_path):
    # domains loses the duplicate contoso.com, so the record's index (1) is not the file's (2)
    path = write(tmp_path, customer(domains=["contoso.com", "Contoso.com.", "co.uk"], addresses=["ceo@co.uk"]))
    (problem,) = problems(path)
    assert problem.startswith(f"{path}:1: domains.2: co.uk {PUBLIC_SUFFIX}")


def test_a_public_suffix_listed_by_two_customers_is_refused_twice_not_reported_as_claimed(tmp_path):
    path = write(tmp_path, customer(domains=["co.uk"]), customer(tenant_id="t2", domains=["co.uk"]))
    assert [p.split(": ", 2)[:2] for p in problems(path)] == [[f"{path}:1", "domains.0"], [f"{path}:2", "domains.0"]]


@pytest.mark.parametrize("domain", ["contoso.co.uk", "contoso.com.au", "contoso.github.io", "xn--fiqs8s.xn--55qx5d.cn", "contoso.example"])
def test_a_domain_registered_under_a_public_suffix_is_accepted(tmp_path, domain):
    (row,) = read_directory(write(tmp_path, customer(domains=[domain])))
    assert row.domains == [domain]


def test_the_sample_directory_imports():
    rows = read_directory(EVENTS / "directory.jsonl")
    assert any(isinstance(row, CustomerRecord) and row.domains for row in rows)


def test_an_address_at_a_public_suffix_host_is_left_alone(tmp_path):
    # addresses are whole mailboxes; a public suffix that takes mail itself (rare) matches only that mailbox
    (row,) = read_directory(write(tmp_path, customer(domains=[], addresses=["hostmaster@github.io"])))
    assert row.addresses == ["hostmaster@github.io"]
