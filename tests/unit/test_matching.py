"""How an address finds its customer: exact address over domain, subdomains, tags, case, IDN, clouds."""

from __future__ import annotations

import pytest

from mailfilter.directory.memory import InMemoryDirectory
from mailfilter.directory.records import CustomerRecord
from mailfilter.vocabulary.addresses import normalise_address
from mailfilter.vocabulary.errors import InvalidAddressError
from mailfilter.vocabulary.model import Cloud

C = Cloud.COMMERCIAL


def customer(tenant: str, cloud: Cloud = C, domains=(), addresses=()) -> CustomerRecord:
    return CustomerRecord(kind="customer", cloud=cloud, tenant_id=tenant, name=tenant, domains=list(domains), addresses=list(addresses))


DIRECTORY = InMemoryDirectory(
    [
        customer("contoso", domains=["contoso.com"]),
        customer("contoso-eu", domains=["eu.contoso.com"]),
        customer("ceo-personal", addresses=["ceo@contoso.com", "boss@gmail.example"]),
        customer("bakery", domains=["bäckerei.example"]),
        customer("contoso-gov", cloud=Cloud.USGOV, domains=["contoso.com"]),
    ]
)


def tenant_of(address: str, cloud: Cloud = C) -> str | None:
    normalised = normalise_address(address)
    match = DIRECTORY.lookup(cloud, [normalised])[normalised]
    return match.customer.tenant_id if match else None


def test_exact_address_entry_beats_the_domain_entry():
    assert tenant_of("ceo@contoso.com") == "ceo-personal"
    assert tenant_of("cfo@contoso.com") == "contoso"


def test_domain_entry_covers_its_subdomains():
    assert tenant_of("it@mail.us.contoso.com") == "contoso"


def test_more_specific_domain_entry_wins_for_its_subdomains():
    assert tenant_of("it@eu.contoso.com") == "contoso-eu"
    assert tenant_of("it@paris.eu.contoso.com") == "contoso-eu"


def test_matching_ignores_case_and_trailing_dot():
    assert tenant_of("CEO@Contoso.COM.") == "ceo-personal"


def test_subaddress_tag_matches_the_untagged_address():
    assert tenant_of("ceo+billing@contoso.com") == "ceo-personal"
    assert tenant_of("boss+x@gmail.example") == "ceo-personal"


def test_internationalised_domain_matches_in_either_form():
    assert tenant_of("anna@BÄCKEREI.example") == "bakery"
    assert tenant_of("anna@xn--bckerei-5wa.example") == "bakery"


def test_lookup_is_per_cloud_and_clouds_never_mix():
    assert tenant_of("it@contoso.com", Cloud.USGOV) == "contoso-gov"
    assert tenant_of("ceo@contoso.com", Cloud.USGOV) == "contoso-gov"
    assert tenant_of("it@contoso.com", Cloud.GERMANY) is None


def test_a_similar_but_different_domain_does_not_match():
    assert tenant_of("it@notcontoso.com") is None
    assert tenant_of("it@contoso.com.evil.example") is None


def test_matched_by_says_which_entry_decided():
    address = normalise_address("ceo+x@contoso.com")
    match = DIRECTORY.lookup(C, [address])[address]
    assert (match.matched_by, match.entry) == ("address", "ceo@contoso.com")


@pytest.mark.parametrize("bad", ["no-at-sign", "a@b", "two@@x.example", "a b@x.example", "x\r\n@x.example", '"q"@x.example', "@x.example"])
def test_malformed_addresses_are_rejected_with_a_reason(bad):
    with pytest.raises(InvalidAddressError):
        normalise_address(bad)
