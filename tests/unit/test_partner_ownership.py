"""Which partner receives rerouted mail: the owners of the product, their contacts, never an allow."""

from __future__ import annotations

from mailfilter.directory.memory import InMemoryDirectory
from mailfilter.directory.records import CustomerRecord, PartnerRecord
from mailfilter.engine import evaluate
from mailfilter.policy.config import load_policy
from mailfilter.vocabulary.model import Action, Cloud
from mailfilter_testkit.directory_samples import outbound

POLICY = load_policy()
C = Cloud.COMMERCIAL


def partner(partner_id: str, *contacts: str) -> PartnerRecord:
    return PartnerRecord(kind="partner", cloud=C, partner_id=partner_id, name=partner_id.title(), contacts=list(contacts))


def customer(*links: dict, direct_products: list[str] | None = None) -> CustomerRecord:
    return CustomerRecord(
        kind="customer",
        cloud=C,
        tenant_id="t1",
        name="Multi",
        domains=["multi.example"],
        csp=list(links),
        direct_products=direct_products or [],
    )


def decide_for(directory: InMemoryDirectory, category: str, product: str | None):
    return evaluate(outbound("ops@multi.example", category=category, product=product), directory, POLICY).decisions[0]


def test_r2_subscription_goes_to_the_partner_that_lists_the_product():
    directory = InMemoryDirectory(
        [
            partner("azpartner", "az@p.example"),
            partner("m365partner", "m365@p.example"),
            customer({"partner_id": "azpartner", "products": ["azure"]}, {"partner_id": "m365partner", "products": ["microsoft-365"]}),
        ]
    )
    decision = decide_for(directory, "subscription", "microsoft-365")
    assert decision.deliver_to == ("m365@p.example",)
    assert decision.partners == ("m365partner",)


def test_r2_partner_with_empty_products_owns_what_no_partner_lists():
    directory = InMemoryDirectory(
        [
            partner("specific", "s@p.example"),
            partner("catchall", "c@p.example"),
            customer({"partner_id": "specific", "products": ["azure"]}, {"partner_id": "catchall", "products": []}),
        ]
    )
    assert decide_for(directory, "subscription", "intune").deliver_to == ("c@p.example",)
    assert decide_for(directory, "subscription", "azure").deliver_to == ("s@p.example",)


def test_r2_unknown_product_goes_to_every_partner_contacts_deduplicated():
    directory = InMemoryDirectory(
        [
            partner("one", "shared@p.example", "one@p.example"),
            partner("two", "shared@p.example", "two@p.example"),
            customer({"partner_id": "one", "products": ["azure"]}, {"partner_id": "two", "products": ["microsoft-365"]}),
        ]
    )
    decision = decide_for(directory, "subscription", None)
    assert decision.action is Action.REROUTE
    assert decision.deliver_to == ("shared@p.example", "one@p.example", "two@p.example")


def test_owning_partner_without_contact_blocks_and_never_allows():
    directory = InMemoryDirectory([partner("silent"), customer({"partner_id": "silent", "products": []})])
    decision = decide_for(directory, "subscription", "azure")
    assert decision.action is Action.BLOCK
    assert decision.rule == "partner-without-contact"
    assert decision.deliver_to == ()


def test_r4_product_bought_directly_and_also_listed_by_a_partner_is_held_through_csp():
    directory = InMemoryDirectory(
        [partner("p", "p@p.example"), customer({"partner_id": "p", "products": ["azure"]}, direct_products=["azure"])]
    )
    assert decide_for(directory, "subscription", "azure").action is Action.REROUTE
    assert decide_for(directory, "product", "azure").action is Action.REROUTE


def test_r4_catch_all_partner_does_not_own_a_product_bought_directly():
    directory = InMemoryDirectory(
        [partner("p", "p@p.example"), customer({"partner_id": "p", "products": []}, direct_products=["dynamics-365"])]
    )
    assert decide_for(directory, "subscription", "dynamics-365").rule == "subscription-bought-directly"
    assert decide_for(directory, "subscription", "azure").rule == "subscription-owned-by-partner"
