"""The generated directory: customers of every segment in all three clouds, partners with and without contacts.

The same domains are reused across clouds with different relationships, so a lookup in the
wrong cloud shows up as a wrong decision.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

CLOUDS = ("commercial", "usgov", "germany")
PARTNERS = {
    "alpha": lambda cloud: [f"desk@alpha-{cloud}.example", f"billing@alpha-{cloud}.example"],
    "beta": lambda cloud: [f"csp@beta-{cloud}.example"],
    "mute": lambda cloud: [],  # a partner without a contact address: its reroutes are kept, never allowed
}
# (CSP links, direct products, direct relationship): every segment and product condition of the table.
ARCHETYPES = (
    ((), ("azure",), True),  # no CSP partner
    ((("alpha", ()),), (), False),  # CSP only, the partner owns everything
    ((("beta", ("microsoft-365",)),), (), False),  # CSP only, the partner owns one product
    ((("alpha", ("azure", "microsoft-365")),), ("dynamics-365",), True),  # CSP and direct
    ((("beta", ()),), ("azure",), True),  # CSP and direct, the partner owns what is not bought directly
    ((("alpha", ("azure",)), ("beta", ("microsoft-365",))), (), False),  # two partners
    ((("mute", ()),), (), False),  # the partner has no contact
)


@dataclass(frozen=True)
class Customer:
    cloud: str
    tenant_id: str
    domain: str
    csp: tuple[tuple[str, tuple[str, ...]], ...]
    direct_products: tuple[str, ...]
    direct: bool


def generate_directory(customers_per_cloud: int) -> tuple[list[dict[str, Any]], dict[tuple[str, str], Customer]]:
    """Directory records, and the customers by (cloud, domain). Domain c<i>.example exists in every cloud."""
    records: list[dict[str, Any]] = []
    customers: dict[tuple[str, str], Customer] = {}
    for cloud_index, cloud in enumerate(CLOUDS):
        for partner_id, contacts in PARTNERS.items():
            records.append(
                {"kind": "partner", "cloud": cloud, "partner_id": partner_id, "name": f"Partner {partner_id}", "contacts": contacts(cloud)}
            )
        for i in range(customers_per_cloud):
            csp, direct_products, direct = ARCHETYPES[(i + cloud_index) % len(ARCHETYPES)]
            customer = Customer(cloud, f"{cloud}-c{i}", f"c{i}.example", csp, direct_products, direct)
            customers[cloud, customer.domain] = customer
            records.append(
                {
                    "kind": "customer",
                    "cloud": cloud,
                    "tenant_id": customer.tenant_id,
                    "name": f"Customer {i} {cloud}",
                    "domains": [customer.domain],
                    "direct_relationship": direct,
                    "direct_products": list(direct_products),
                    "csp": [{"partner_id": p, "products": list(products)} for p, products in csp],
                }
            )
    return records, customers


def customer_of(customers: dict[tuple[str, str], Customer], cloud: str, address: str) -> Customer | None:
    domain = address.rsplit("@", 1)[1]
    while True:
        if (cloud, domain) in customers:
            return customers[cloud, domain]
        if "." not in domain:
            return None
        domain = domain.split(".", 1)[1]
