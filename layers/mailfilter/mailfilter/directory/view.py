"""The decision-ready view of a customer: everything the policy core needs, in one object.

A `CustomerView` carries its partners' names and contacts, so deciding never
needs a second lookup; the DynamoDB items are this view, denormalised.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

from mailfilter.directory.records import CustomerRecord, PartnerRecord
from mailfilter.vocabulary.model import Cloud


@dataclass(frozen=True, slots=True)
class PartnerLink:
    """A partner that owns some of one customer's CSP subscriptions; `products == ()` means all."""

    partner_id: str
    name: str
    products: tuple[str, ...]
    contacts: tuple[str, ...]

    @property
    def owns_all(self) -> bool:
        return not self.products


@dataclass(frozen=True, slots=True)
class CustomerView:
    cloud: Cloud
    tenant_id: str
    name: str
    direct_relationship: bool
    direct_products: frozenset[str]
    partners: tuple[PartnerLink, ...]

    @property
    def is_csp_customer(self) -> bool:
        return bool(self.partners)

    def owning_partners(self, product: str | None) -> tuple[PartnerLink, ...]:
        """The partners that own `product` for this customer.

        Partners that list the product own it; if none lists it, the partners
        that own everything do, unless the customer buys it directly. With no
        product named, every partner is an owner: none can be ruled out.
        """
        if product is None:
            return self.partners
        listing = tuple([link for link in self.partners if product in link.products])
        if listing:
            return listing
        if product in self.direct_products:
            return ()
        return tuple([link for link in self.partners if link.owns_all])

    def holds_through_csp(self, product: str | None) -> bool:
        return product is not None and bool(self.owning_partners(product))


class CustomerMatch(NamedTuple):
    """The customer one address resolved to, and which directory entry matched it (one per recipient)."""

    customer: CustomerView
    matched_by: str  # "address" or "domain"
    entry: str  # the address or domain of the matching entry


def customer_view(record: CustomerRecord, partners: Mapping[str, PartnerRecord]) -> CustomerView:
    """Join a customer with its partners; every referenced partner must be in `partners`."""
    links = tuple(
        PartnerLink(
            partner_id=link.partner_id,
            name=partners[link.partner_id].name,
            products=tuple(link.products),
            contacts=tuple(partners[link.partner_id].contacts),
        )
        for link in record.csp
    )
    return CustomerView(
        cloud=record.cloud,
        tenant_id=record.tenant_id,
        name=record.name,
        direct_relationship=bool(record.direct_relationship),
        direct_products=frozenset(record.direct_products),
        partners=links,
    )
