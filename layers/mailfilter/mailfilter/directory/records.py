"""The directory format operators write: JSON Lines of partner and customer records.

These pydantic models are the contract. Unknown fields are errors, and
addresses, domains and product names are normalised on the way in.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from mailfilter.vocabulary.addresses import normalise_address, normalise_domain
from mailfilter.vocabulary.errors import InvalidAddressError
from mailfilter.vocabulary.model import Cloud

_PRODUCT = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


def _address(value: str) -> str:
    try:
        return normalise_address(value)
    except InvalidAddressError as error:
        raise ValueError(str(error)) from None


def _domain(value: str) -> str:
    try:
        return normalise_domain(value)
    except InvalidAddressError as error:
        raise ValueError(str(error)) from None


def _product(value: str) -> str:
    if not _PRODUCT.match(value):
        raise ValueError(f"product {value!r} must be 1-64 characters of a-z, 0-9, '.', '_' or '-'")
    return value


Address = Annotated[str, AfterValidator(_address)]
Domain = Annotated[str, AfterValidator(_domain)]
Product = Annotated[str, StringConstraints(strip_whitespace=True, to_lower=True), AfterValidator(_product)]
Identifier = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")
]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=256, pattern=r"^[^\x00-\x1f\x7f]*$")]


class _Record(BaseModel):
    # defer_build, here and on the project's other models: a validator is built on first use,
    # so a cold start pays only for the models its messages need (bench/cold_start.py).
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True, defer_build=True)


class PartnerRecord(_Record):
    """A CSP partner: who receives rerouted mail for the customers it owns."""

    kind: Literal["partner"]
    cloud: Cloud
    partner_id: Identifier
    name: Name
    contacts: list[Address] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_contacts(self) -> PartnerRecord:
        object.__setattr__(self, "contacts", list(dict.fromkeys(self.contacts)))
        return self


class CspLink(_Record):
    """One partner that owns some (or, with an empty list, all) of the customer's CSP subscriptions."""

    partner_id: Identifier
    products: list[Product] = Field(default_factory=list)


class CustomerRecord(_Record):
    """A customer tenant in one cloud, the addresses that reach it, and who owns its relationship."""

    kind: Literal["customer"]
    cloud: Cloud
    tenant_id: Identifier
    name: Name
    domains: list[Domain] = Field(default_factory=list)
    addresses: list[Address] = Field(default_factory=list)
    direct_relationship: bool | None = None
    direct_products: list[Product] = Field(default_factory=list)
    csp: list[CspLink] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> CustomerRecord:
        if not self.domains and not self.addresses:
            raise ValueError("a customer needs at least one entry in domains or addresses")
        if self.direct_relationship is False and self.direct_products:
            raise ValueError("direct_products implies direct_relationship, which is false")
        partner_ids = [link.partner_id for link in self.csp]
        if len(set(partner_ids)) != len(partner_ids):
            raise ValueError("csp names the same partner twice")
        object.__setattr__(self, "domains", list(dict.fromkeys(self.domains)))
        object.__setattr__(self, "addresses", list(dict.fromkeys(self.addresses)))
        object.__setattr__(self, "direct_products", list(dict.fromkeys(self.direct_products)))
        if self.direct_relationship is None:
            object.__setattr__(self, "direct_relationship", bool(self.direct_products))
        return self

    @property
    def is_csp_customer(self) -> bool:
        return bool(self.csp)


DirectoryRecord = Annotated[PartnerRecord | CustomerRecord, Field(discriminator="kind")]
