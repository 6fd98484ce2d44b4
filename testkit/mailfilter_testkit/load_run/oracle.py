"""The independent oracle: docs/policy.md's default table applied to the generated directory, without mailfilter.policy.

tests/reliability/test_reliability.py holds it to the policy engine on every generated recipient.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailfilter_testkit.load_run.directory import PARTNERS, Customer

# The oracle's own copy of the default policy's sender map and category order: every source is
# heard and the most restrictive category wins, so a declaration never lowers the sender's category.
SENDER_CATEGORY = {"billing@vendor.example": "subscription", "status@vendor.example": "service-incident", "news@vendor.example": "product"}
MOST_RESTRICTIVE_FIRST = ("subscription", "product", "general", "operational", "service-incident")


@dataclass(frozen=True)
class Expected:
    action: str  # allow, reroute, block
    contacts: tuple[str, ...] = ()
    tenant: str | None = None


def _owners(customer: Customer, product: str | None) -> list[tuple[str, tuple[str, ...]]]:
    if product is None:
        return list(customer.csp)
    listing = [link for link in customer.csp if product in link[1]]
    if listing:
        return listing
    if product in customer.direct_products:
        return []
    return [link for link in customer.csp if not link[1]]


def _reroute(customer: Customer, product: str | None) -> Expected:
    partners = _owners(customer, product) or list(customer.csp)
    contacts = tuple(dict.fromkeys(c for partner, _ in partners for c in PARTNERS[partner](customer.cloud)))
    if not contacts:
        return Expected("block", (), customer.tenant_id)
    return Expected("reroute", contacts, customer.tenant_id)


def oracle(customer: Customer | None, category: str, product: str | None) -> Expected:
    """docs/policy.md's default table, applied to the generated directory."""
    if customer is None:
        return Expected("allow")
    tenant = customer.tenant_id
    if not customer.csp or category in ("service-incident", "operational"):
        return Expected("allow", (), tenant)
    held = product is not None and bool(_owners(customer, product))
    if category == "subscription":
        if customer.direct and product in customer.direct_products and not held:
            return Expected("allow", (), tenant)
        return _reroute(customer, product)
    if category == "product":
        if not customer.direct:
            return Expected("block", (), tenant)
        return _reroute(customer, product) if held else Expected("allow", (), tenant)
    return Expected("allow", (), tenant) if customer.direct else _reroute(customer, product)


def heard_category(declared: str, sender: str) -> str:
    """The category the rules apply: the declared one, unless the sender's own is more restrictive."""
    heard = [declared, SENDER_CATEGORY.get(sender, declared)]
    return min(heard, key=MOST_RESTRICTIVE_FIRST.index)


def inbound_oracle(customer: Customer | None, category: str, product: str | None, verdict: str) -> Expected:
    if verdict in ("spam", "dmarc-reject"):
        return Expected("block", (), customer.tenant_id if customer else None)
    expected = oracle(customer, category, product)
    if expected.action == "reroute" and verdict != "pass":
        return Expected("block", (), expected.tenant)  # never relay unauthenticated mail to a partner
    return expected
