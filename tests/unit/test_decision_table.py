"""Every cell of the default decision table, in every cloud, named after the seed rule it proves."""

from __future__ import annotations

import pytest

from mailfilter.directory.memory import InMemoryDirectory
from mailfilter.engine import evaluate
from mailfilter.policy.config import load_policy
from mailfilter.vocabulary.model import Action, Cloud, Mode
from mailfilter_testkit.directory_samples import (
    CSP_AND_DIRECT,
    CSP_ONLY,
    NO_CSP,
    UNKNOWN,
    directory_in_every_cloud,
    outbound,
    partner_contact,
    records,
)
from mailfilter_testkit.paths import EVENTS

POLICY = load_policy()
DIRECTORY = directory_in_every_cloud()
CATEGORIES = ["subscription", "service-incident", "operational", "product", "general"]

# (customer side, category, product) -> (action, rule, seed rule)
TABLE = [
    # Outside the CSP relationship the vendor writes directly, whatever the mail is about.
    *[(UNKNOWN, category, "azure", Action.ALLOW, "not-in-directory", None) for category in CATEGORIES],
    *[(NO_CSP, category, "azure", Action.ALLOW, "no-csp-partner", None) for category in CATEGORIES],
    # A CSP customer with no direct relationship.
    (CSP_ONLY, "subscription", "azure", Action.REROUTE, "subscription-owned-by-partner", 2),
    (CSP_ONLY, "subscription", None, Action.REROUTE, "subscription-owned-by-partner", 2),
    (CSP_ONLY, "service-incident", "azure", Action.ALLOW, "operational-information-direct", 3),
    (CSP_ONLY, "operational", None, Action.ALLOW, "operational-information-direct", 3),
    (CSP_ONLY, "product", "azure", Action.BLOCK, "product-mail-for-csp-customer", 1),
    (CSP_ONLY, "general", None, Action.REROUTE, "general-mail-via-partner", 1),
    # A CSP customer that also buys directly.
    (CSP_AND_DIRECT, "subscription", "dynamics-365", Action.ALLOW, "subscription-bought-directly", 4),
    (CSP_AND_DIRECT, "subscription", "azure", Action.REROUTE, "subscription-owned-by-partner", 2),
    (CSP_AND_DIRECT, "subscription", None, Action.REROUTE, "subscription-owned-by-partner", 2),
    (CSP_AND_DIRECT, "service-incident", "azure", Action.ALLOW, "operational-information-direct", 3),
    (CSP_AND_DIRECT, "operational", "dynamics-365", Action.ALLOW, "operational-information-direct", 3),
    (CSP_AND_DIRECT, "product", "azure", Action.REROUTE, "product-held-through-csp", 1),
    (CSP_AND_DIRECT, "product", "dynamics-365", Action.ALLOW, "product-not-held-through-csp", 4),
    (CSP_AND_DIRECT, "product", "power-bi", Action.ALLOW, "product-not-held-through-csp", 4),
    (CSP_AND_DIRECT, "product", None, Action.ALLOW, "product-not-held-through-csp", 4),
    (CSP_AND_DIRECT, "general", None, Action.ALLOW, "general-mail-for-direct-customer", 4),
]


@pytest.mark.parametrize("cloud", list(Cloud))
@pytest.mark.parametrize(("recipient", "category", "product", "action", "rule", "seed_rule"), TABLE)
def test_decision_table_cell(cloud, recipient, category, product, action, rule, seed_rule):
    verdict = evaluate(outbound(recipient, category=category, product=product, cloud=cloud), DIRECTORY, POLICY)
    (decision,) = verdict.decisions
    assert (decision.action, decision.rule, decision.seed_rule) == (action, rule, seed_rule)
    assert decision.effective is action
    expected_delivery = {
        Action.ALLOW: (recipient,),
        Action.REROUTE: (partner_contact(cloud),),
        Action.BLOCK: (),
    }[action]
    assert decision.deliver_to == expected_delivery
    assert decision.reason


def test_r2_subscription_mail_for_csp_customer_goes_to_partner_not_customer():
    (decision,) = evaluate(outbound(CSP_ONLY, category="subscription"), DIRECTORY, POLICY).decisions
    assert CSP_ONLY not in decision.deliver_to
    assert decision.deliver_to == (partner_contact(Cloud.COMMERCIAL),)
    assert "Alpha Partners" in decision.reason


def test_r3_service_incident_reaches_every_csp_customer_directly():
    verdict = evaluate(outbound(CSP_ONLY, CSP_AND_DIRECT, category="service-incident"), DIRECTORY, POLICY)
    assert [d.deliver_to for d in verdict.decisions] == [(CSP_ONLY,), (CSP_AND_DIRECT,)]


def test_r4_direct_customer_keeps_mail_about_its_non_csp_products():
    (decision,) = evaluate(outbound(CSP_AND_DIRECT, category="product", product="dynamics-365"), DIRECTORY, POLICY).decisions
    assert decision.action is Action.ALLOW
    assert decision.seed_rule == 4


def test_rules_apply_per_cloud_the_same_domain_elsewhere_is_a_different_customer():
    commercial_only = InMemoryDirectory(records(Cloud.COMMERCIAL))
    in_commercial = evaluate(outbound(CSP_ONLY, category="subscription", cloud=Cloud.COMMERCIAL), commercial_only, POLICY)
    in_usgov = evaluate(outbound(CSP_ONLY, category="subscription", cloud=Cloud.USGOV), commercial_only, POLICY)
    assert in_commercial.decisions[0].action is Action.REROUTE
    assert in_usgov.decisions[0].rule == "not-in-directory"


def test_audit_mode_records_the_decision_but_delivers_to_the_recipient():
    audit = POLICY.model_copy(update={"mode": Mode.AUDIT})
    (decision,) = evaluate(outbound(CSP_ONLY, category="product", product="azure"), DIRECTORY, audit).decisions
    assert decision.action is Action.BLOCK
    assert decision.effective is Action.ALLOW
    assert decision.deliver_to == (CSP_ONLY,)


def test_one_message_gets_one_decision_per_recipient_in_order():
    verdict = evaluate(outbound(UNKNOWN, CSP_ONLY, CSP_AND_DIRECT, category="product", product="azure"), DIRECTORY, POLICY)
    assert [(d.recipient, d.action) for d in verdict.decisions] == [
        (UNKNOWN, Action.ALLOW),
        (CSP_ONLY, Action.BLOCK),
        (CSP_AND_DIRECT, Action.REROUTE),
    ]


def test_r1_of_several_products_the_one_held_through_a_partner_decides():
    # Contoso buys dynamics-365 directly and azure through Fabrikam: product mail naming both goes to Fabrikam.
    directory = InMemoryDirectory.from_file(EVENTS / "directory.jsonl")
    for subject in ("Announcing Dynamics 365 and Azure news", "Announcing Azure and Dynamics 365 news"):
        (decision,) = evaluate(outbound("it@contoso.com", subject=subject), directory, POLICY).decisions
        assert (decision.action, decision.product, decision.deliver_to) == (Action.REROUTE, "azure", ("csp-desk@fabrikam.example",))
