"""Promises that hold for every input, checked with generated directories and messages."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mailfilter.directory.memory import InMemoryDirectory
from mailfilter.directory.records import CustomerRecord, PartnerRecord
from mailfilter.engine import evaluate
from mailfilter.policy.config import load_policy
from mailfilter.vocabulary.addresses import normalise_address
from mailfilter.vocabulary.message import Declaration, Message
from mailfilter.vocabulary.model import Action, Category, Cloud, Direction, Source

POLICY = load_policy()
PRODUCTS = ["azure", "microsoft-365", "dynamics-365", "intune"]
PARTNERS = ["p1", "p2", "p3"]

products = st.lists(st.sampled_from(PRODUCTS), unique=True, max_size=3)
links = st.lists(
    st.fixed_dictionaries({"partner_id": st.sampled_from(PARTNERS), "products": products}),
    max_size=3,
    unique_by=lambda link: link["partner_id"],
)
customers = st.fixed_dictionaries(
    {"direct_products": products, "direct_relationship": st.booleans(), "csp": links, "cloud": st.sampled_from(list(Cloud))}
)


@st.composite
def worlds(draw):
    """A directory of up to six customers, one domain each, and a message to some of them."""
    rows = draw(st.lists(customers, min_size=1, max_size=6))
    records: list = [
        PartnerRecord(
            kind="partner", cloud=cloud, partner_id=p, name=p.upper(), contacts=draw(st.sampled_from([[], [f"{p}@partner.example"]]))
        )
        for cloud in Cloud
        for p in PARTNERS
    ]
    for index, row in enumerate(rows):
        direct = row["direct_relationship"] or bool(row["direct_products"])
        records.append(
            CustomerRecord(
                kind="customer",
                tenant_id=f"t{index}",
                name=f"C{index}",
                domains=[f"c{index}.example"],
                **{**row, "direct_relationship": direct},
            )
        )
    recipients = draw(st.lists(st.integers(0, len(rows) + 1), min_size=1, max_size=8, unique=True))
    addresses = [f"user{i}@c{i}.example" for i in recipients]  # indexes past the rows are unknown customers
    category = draw(st.sampled_from(list(Category)))
    product = draw(st.sampled_from([None, *PRODUCTS]))
    cloud = draw(st.sampled_from(list(Cloud)))
    return InMemoryDirectory(records), records, addresses, category, product, cloud


def message(addresses, category, product, cloud, mangle=lambda a: a) -> Message:
    return Message(
        "prop",
        Direction.OUTBOUND,
        "apps@vendor.example",
        tuple(mangle(a) for a in addresses),
        declarations=(Declaration(Source.REQUEST, category.value, product, cloud.value),),
    )


@settings(max_examples=300, deadline=None)
@given(worlds())
def test_r2_no_csp_customer_gets_subscription_mail_unless_it_buys_that_product_directly_not_through_csp(world):
    directory, records, addresses, _, product, cloud = world
    verdict = evaluate(message(addresses, Category.SUBSCRIPTION, product, cloud), directory, POLICY)
    by_tenant = {r.tenant_id: r for r in records if isinstance(r, CustomerRecord) and r.cloud == cloud}
    for decision in verdict.decisions:
        customer = by_tenant.get(decision.customer)
        if customer is None or not customer.csp or decision.effective is not Action.ALLOW:
            continue
        assert product in customer.direct_products
        assert not any(product in link.products for link in customer.csp)
        assert decision.rule == "subscription-bought-directly"


@settings(max_examples=200, deadline=None)
@given(worlds(), st.sampled_from([Category.SERVICE_INCIDENT, Category.OPERATIONAL]))
def test_r3_service_incident_and_operational_mail_is_always_allowed(world, category):
    directory, _, addresses, _, product, cloud = world
    verdict = evaluate(message(addresses, category, product, cloud), directory, POLICY)
    assert all(d.effective is Action.ALLOW and d.deliver_to == (d.recipient,) for d in verdict.decisions)


@settings(max_examples=200, deadline=None)
@given(worlds(), st.randoms(use_true_random=False))
def test_decisions_do_not_depend_on_recipient_order_or_address_case(world, rng):
    directory, _, addresses, category, product, cloud = world
    baseline = {d.recipient: d for d in evaluate(message(addresses, category, product, cloud), directory, POLICY).decisions}
    shuffled = list(addresses)
    rng.shuffle(shuffled)
    upper = evaluate(
        message(shuffled, category, product, cloud, mangle=lambda address: normalise_address(address.upper())), directory, POLICY
    )
    for decision in upper.decisions:
        expected = baseline[decision.recipient.lower()]
        assert (decision.action, decision.rule, decision.deliver_to, decision.customer) == (
            expected.action,
            expected.rule,
            expected.deliver_to,
            expected.customer,
        )


@settings(max_examples=200, deadline=None)
@given(worlds())
def test_a_reroute_always_names_partner_contacts_and_a_block_delivers_nowhere(world):
    directory, _, addresses, category, product, cloud = world
    for decision in evaluate(message(addresses, category, product, cloud), directory, POLICY).decisions:
        if decision.action is Action.REROUTE:
            assert decision.deliver_to
            assert all(contact.endswith("@partner.example") for contact in decision.deliver_to)
        if decision.action is Action.BLOCK:
            assert decision.deliver_to == ()
