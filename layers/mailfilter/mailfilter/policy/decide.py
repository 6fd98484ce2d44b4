"""The decision table applied to one recipient: pure, I/O-free, and the heart of the filter.

Read it beside the seed's four rules and `default.toml`: the segment says
where the customer stands, the classification what the mail is about, and the
first matching rule of the policy says what to do and why.
"""

from __future__ import annotations

from mailfilter.directory.view import CustomerMatch, CustomerView, PartnerLink
from mailfilter.model import Action, Classification, Decision, Mode
from mailfilter.policy.config import Policy, ProductCondition, Rule, Segment

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


def matching_rule(policy: Policy, customer: CustomerView | None, classification: Classification) -> Rule:
    for rule in policy.rules_by_cell[segment_of(customer), classification.category]:
        if rule.product is ProductCondition.ANY or _product_matches(rule.product, customer, classification.product):
            return rule
    raise AssertionError("the policy validator guarantees a rule for every cell")  # pragma: no cover


def reroute_partners(customer: CustomerView, product: str | None) -> tuple[PartnerLink, ...]:
    """The partners that own the product, or every partner when none can be said to."""
    return customer.owning_partners(product) or customer.partners


def _reason(template: str, customer: CustomerView | None, partners: tuple[PartnerLink, ...], c: Classification) -> str:
    return template.format(
        customer=customer.name if customer else "the recipient",
        partners=" and ".join([link.name for link in partners]) or "no partner",
        product=c.product or "this product",
        category=c.category,  # a StrEnum formats as its value
    )


def decide(recipient: str, match: CustomerMatch | None, classification: Classification, policy: Policy) -> Decision:
    """Decide for one recipient. `recipient` is where mail goes if it is allowed."""
    customer = match.customer if match else None
    rule = matching_rule(policy, customer, classification)
    if rule.action is not Action.REROUTE:
        partners = customer.partners if customer else ()
        return _decision(recipient, rule.action, rule.id, rule.seed_rule, rule.reason, match, partners, (), classification, policy)
    partners = reroute_partners(customer, classification.product)
    contacts = tuple(dict.fromkeys(contact for link in partners for contact in link.contacts))
    if not contacts:
        return _decision(
            recipient, Action.BLOCK, PARTNER_WITHOUT_CONTACT, rule.seed_rule,
            "{partners} should receive this mail for {customer} but has no contact address; it is kept for release.",
            match, partners, (), classification, policy,
        )  # fmt: skip
    return _decision(recipient, Action.REROUTE, rule.id, rule.seed_rule, rule.reason, match, partners, contacts, classification, policy)


def security_block(
    recipient: str, rule: str, reason: str, match: CustomerMatch | None, classification: Classification, policy: Policy
) -> Decision:
    """A block that security evidence forces, whatever the table would say."""
    partners = match.customer.partners if match else ()
    return _decision(recipient, Action.BLOCK, rule, None, reason, match, partners, (), classification, policy)


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
    policy: Policy,
) -> Decision:
    """Assemble the record; in audit mode the effective action is allow, delivered to the recipient."""
    customer = match.customer if match else None
    effective = action if policy.mode is Mode.ENFORCE else Action.ALLOW
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
        _reason(reason_template, customer, partners, classification),
        classification.category,
        classification.product,
        customer.tenant_id if customer else None,
        customer.name if customer else None,
        match.matched_by if match else None,
        tuple([link.partner_id for link in partners]),
    )
