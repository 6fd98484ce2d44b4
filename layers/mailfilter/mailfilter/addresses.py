"""Address and domain normalisation, and the lookup keys one recipient produces.

Every address that enters the filter (directory rows, event recipients, senders)
goes through these functions, so that "Alice@Contoso.COM." and
"alice+billing@contoso.com" meet the same directory entry.
"""

from __future__ import annotations

import re

import idna

# A conservative local part: RFC 5322 dot-atom characters. Quoted local parts
# are legal but never appear in customer directories; rejecting them keeps
# header injection (CR, LF, NUL, quotes) out of everything downstream.
_LOCAL_PART = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
_MAX_ADDRESS_LENGTH = 254
_MAX_LOCAL_LENGTH = 64
SUBADDRESS_SEPARATOR = "+"


class InvalidAddressError(ValueError):
    """An address or domain that cannot be used as a mail address."""


def normalise_domain(domain: str) -> str:
    """Lower-case a domain, drop a trailing dot, and encode it as IDNA (punycode)."""
    candidate = domain.strip().rstrip(".")
    if not candidate:
        raise InvalidAddressError("empty domain")
    try:
        ascii_domain = idna.encode(candidate, uts46=True).decode("ascii")
    except idna.IDNAError as error:
        raise InvalidAddressError(f"invalid domain {domain!r}: {error}") from None
    if "." not in ascii_domain:
        raise InvalidAddressError(f"domain {domain!r} has no dot")
    return ascii_domain.lower()


def normalise_address(address: str) -> str:
    """Return the canonical form of one address: local part lower-cased, domain as IDNA."""
    candidate = address.strip()
    local, at, domain = candidate.rpartition("@")
    if not at or not local:
        raise InvalidAddressError(f"{address!r} is not of the form local@domain")
    if len(local) > _MAX_LOCAL_LENGTH or not _LOCAL_PART.match(local):
        raise InvalidAddressError(f"{address!r} has an invalid local part")
    normalised = f"{local.lower()}@{normalise_domain(domain)}"
    if len(normalised) > _MAX_ADDRESS_LENGTH:
        raise InvalidAddressError(f"{address!r} is longer than {_MAX_ADDRESS_LENGTH} characters")
    return normalised


def without_subaddress(address: str) -> str:
    """Strip a sub-address tag: alice+billing@contoso.com -> alice@contoso.com."""
    local, _, domain = address.partition("@")
    base, separator, _tag = local.partition(SUBADDRESS_SEPARATOR)
    return f"{base}@{domain}" if separator and base else address


def domain_of(address: str) -> str:
    return address.rpartition("@")[2]


def domain_and_parents(domain: str) -> list[str]:
    """contoso.com's mail.eu.contoso.com -> [mail.eu.contoso.com, eu.contoso.com, contoso.com].

    A bare top-level domain is never a candidate: no customer owns "com".
    """
    labels = domain.split(".")
    return [".".join(labels[index:]) for index in range(len(labels) - 1)]


def address_candidates(address: str) -> list[str]:
    """Exact address first, then the address without its sub-address tag."""
    base = without_subaddress(address)
    return [address] if base == address else [address, base]


_ADDRESS_IN_TEXT = re.compile(r"[^\s'\"<>(),;:\\\[\]]+@[^\s'\"<>(),;:\\\[\]]+")


def mask(address: str) -> str:
    """alice@contoso.com -> a***@contoso.com: enough for an operator to follow a message, not to harvest addresses."""
    local, at, domain = address.rpartition("@")
    return f"{local[:1]}***@{domain}" if at else "***"


def mask_in_text(text: str) -> str:
    """Every address-like word of a free text (a validation error echoes its input) masked as `mask` does."""
    return _ADDRESS_IN_TEXT.sub(lambda found: mask(found.group(0)), text)
