"""The decision table applied to one recipient: pure, I/O-free, and the heart of the filter.

Read it beside the seed's four rules and `default.toml`: the segment says
where the customer stands, the classification what the mail is about, and the
first matching rule of the policy says what to do and why.
"""

from __future__ import annotations

from mailfilter.directory.view import CustomerMatch, CustomerView, PartnerLink
from mailfilter.policy.config import Policy
from mailfilter.policy.sections import ProductCondition, Rule, Segment
from mailfilter.vocabulary.model import Action, Category, Classification, Decision, Mode

PARTNER_WITHOUT_CONTACT = "partner-without-contact"


def segment_of(customer: CustomerView | None) -> Segment:
    if customer is None:
        return Segment.UNKNOWN
    if not customer.partners:
        return Segment.NO_CSP
    return Segment.CSP_AND_DIRECT if customer.direct_relationship else Segment.CSP_ONLY


def _product_matches(condition: ProductCondition, customer: CustomerView | None, product: str | None) -> bool:
    if condition is ProductCondition.ANY:
        return True
    if customer is None or product is None:
        return False
    if condition is ProductCondition.HELD_THROUGH_CSP:
        return customer.holds_through_csp(product)
    return product in customer.direct_products and not customer.holds_through_csp(product)


def product_for(customer: CustomerView | None, products: tuple[str, ...]) -> str | None:
    """Of the products a message names, the one that restricts this customer's mail most.

    One a partner holds for the customer, if any; else one the customer does not buy
    directly; else the first. So naming a directly bought product beside one held through
    a partner never moves mail out of the partner's hands.
    """
    if not products or customer is None:
        return products[0] if products else None
    held = next((p for p in products if customer.holds_through_csp(p)), None)
    if held is not None:
        return held
    return next((p for p in products if p not in customer.direct_products), products[0])


def matching_rule(policy: Policy, customer: CustomerView | None, category: Category, product: str | None) -> Rule:
    for rule in policy.rules_by_cell[segment_of(customer), category]:
        if rule.product is ProductCondition.ANY or _product_matches(rule.product, customer, product):
            return rule
    raise AssertionError("the policy validator guarantees a rule for every cell")  # pragma: no cover


def reroute_partners(customer: CustomerView, product: str | None) -> tuple[PartnerLink, ...]:
    """The partners that own the product, or every partner when none can be said to."""
    return customer.owning_partners(product) or customer.partners


def _reason(
    template: str, customer: CustomerView | None, partners: tuple[PartnerLink, ...], category: Category, product: str | None
) -> str:
    return template.format(
        customer=customer.name if customer else "the recipient",
        partners=" and ".join([link.name for link in partners]) or "no partner",
        product=product or "this product",
        category=category,  # a StrEnum formats as its value
    )


def decide(recipient: str, match: CustomerMatch | None, classification: Classification, policy: Policy) -> Decision:
    """Decide for one recipient. `recipient` is where mail goes if it is allowed."""
    customer = match.customer if match else None
    product = product_for(customer, classification.products) if classification.products else classification.product
    rule = matching_rule(policy, customer, classification.category, product)
    trial = rule.mode is Mode.AUDIT  # a rule on trial: decided and recorded, delivered as allow
    if rule.action is not Action.REROUTE:
        partners = customer.partners if customer else ()
        return _decision(
            recipient, rule.action, rule.id, rule.seed_rule, rule.reason, match, partners, (), classification, product, policy, trial
        )
    partners = reroute_partners(customer, product)
    contacts = tuple(dict.fromkeys(contact for link in partners for contact in link.contacts))
    if not contacts:
        return _decision(
            recipient, Action.BLOCK, PARTNER_WITHOUT_CONTACT, rule.seed_rule,
            "{partners} should receive this mail for {customer} but has no contact address; it is kept for release.",
            match, partners, (), classification, product, policy, trial,
        )  # fmt: skip
    return _decision(
        recipient, Action.REROUTE, rule.id, rule.seed_rule, rule.reason, match, partners, contacts, classification, product, policy, trial
    )


def security_block(
    recipient: str,
    rule: str,
    reason: str,
    match: CustomerMatch | None,
    classification: Classification,
    policy: Policy,
    trial: bool = False,
) -> Decision:
    """A block that security evidence forces, whatever the table would say (`trial`: it follows from an audit-mode rule)."""
    partners = match.customer.partners if match else ()
    return _decision(
        recipient, Action.BLOCK, rule, None, reason, match, partners, (), classification, classification.product, policy, trial
    )


def _decision(
    recipient: str,
    action: Action,
    rule: str,
    seed_rule: int | None,
    reason_template: str,
    match: CustomerMatch | None,
    partners: tuple[PartnerLink, ...],
    contacts: tuple[str, ...],
    classification: Classification,
    product: str | None,
    policy: Policy,
    trial: bool = False,
) -> Decision:
    """Assemble the record; in audit mode (or for a rule on trial) the effective action is allow, delivered to the recipient."""
    customer = match.customer if match else None
    effective = action if policy.mode is Mode.ENFORCE and not trial else Action.ALLOW
    if effective is Action.ALLOW:
        deliver_to: tuple[str, ...] = (recipient,)
    else:
        deliver_to = contacts
    return Decision(  # positional, in field order: once per recipient on the mail path
        recipient,
        action,
        effective,
        deliver_to,
        rule,
        seed_rule,
        _reason(reason_template, customer, partners, classification.category, product),
        classification.category,
        product,
        customer.tenant_id if customer else None,
        customer.name if customer else None,
        match.matched_by if match else None,
        tuple([link.partner_id for link in partners]),
        match,
    )
