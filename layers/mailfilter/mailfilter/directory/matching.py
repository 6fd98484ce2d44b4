"""Which directory entry an address matches.

Rules: an exact address entry beats a domain entry; a domain entry covers its
subdomains unless a more specific domain entry exists; a sub-address tag
(alice+billing@) is ignored if the tagged address has no entry of its own.
Lookup keys are computed first, fetched in one round trip by whichever store
holds the directory, and resolved here, so every store matches the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import NamedTuple

from mailfilter.directory.view import CustomerMatch, CustomerView
from mailfilter.vocabulary.addresses import SUBADDRESS_SEPARATOR, address_candidates, domain_and_parents, domain_of

ADDRESS = "address"
DOMAIN = "domain"


class LookupKey(NamedTuple):
    kind: str  # ADDRESS or DOMAIN
    value: str


def lookup_keys(address: str) -> list[LookupKey]:
    """The entries that could match a normalised address, most specific first."""
    keys = [LookupKey(ADDRESS, candidate) for candidate in address_candidates(address)]
    keys.extend(LookupKey(DOMAIN, domain) for domain in domain_and_parents(domain_of(address)))
    return keys


def keys_for(addresses: Iterable[str]) -> list[LookupKey]:
    """The de-duplicated keys for several addresses, in a stable order."""
    return list(dict.fromkeys(key for address in addresses for key in lookup_keys(address)))


def resolve(address: str, found: Mapping[LookupKey, CustomerView]) -> CustomerMatch | None:
    """The most specific entry among those `found` for this address, if any.

    Walks the same order as `lookup_keys`, lazily: most addresses match on their first domain.
    Probes use plain tuples, which hash and compare equal to `LookupKey`s, because this runs
    once per recipient on the mail path.
    """
    candidates = address_candidates(address) if SUBADDRESS_SEPARATOR in address else (address,)
    for candidate in candidates:
        customer = found.get((ADDRESS, candidate))
        if customer is not None:
            return CustomerMatch(customer, ADDRESS, candidate)
    domain = domain_of(address)
    while "." in domain:  # the domain, then each parent; never the top-level label alone (`domain_and_parents`)
        customer = found.get((DOMAIN, domain))
        if customer is not None:
            return CustomerMatch(customer, DOMAIN, domain)
        domain = domain.partition(".")[2]
    return None
