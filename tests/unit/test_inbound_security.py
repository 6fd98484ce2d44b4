"""Inbound: security before policy, and no partner ever receives unauthenticated mail in a customer's name."""

from __future__ import annotations

import pytest

from mailfilter.engine import evaluate
from mailfilter.policy.config import load_policy
from mailfilter.vocabulary.message import Authentication, Message
from mailfilter.vocabulary.model import Action, Direction
from mailfilter_testkit.directory_samples import directory_in_every_cloud

POLICY = load_policy()
DIRECTORY = directory_in_every_cloud()
AUTHENTICATED = Authentication(spf="PASS", dkim="PASS", dmarc="PASS", spam="PASS", virus="PASS")


def inbound(sender: str, *desks: str, auth: Authentication = AUTHENTICATED) -> Message:
    return Message("ses-1", Direction.INBOUND, sender, desks or ("billing@vendor.example",), "Question", authentication=auth)


def test_r2_authenticated_csp_customer_writing_to_billing_is_rerouted_to_its_partner():
    (decision,) = evaluate(inbound("cfo@csp-only.example"), DIRECTORY, POLICY).decisions
    assert decision.action is Action.REROUTE
    assert decision.deliver_to == ("desk-commercial@alpha.example",)


def test_r3_csp_customer_writing_to_support_reaches_the_vendor():
    (decision,) = evaluate(inbound("cfo@csp-only.example", "support@vendor.example"), DIRECTORY, POLICY).decisions
    assert decision.action is Action.ALLOW
    assert decision.deliver_to == ("support@vendor.example",)


def test_mixed_desks_are_decided_one_by_one():
    verdict = evaluate(inbound("cfo@csp-only.example", "billing@vendor.example", "support@vendor.example"), DIRECTORY, POLICY)
    assert [d.action for d in verdict.decisions] == [Action.REROUTE, Action.ALLOW]


@pytest.mark.parametrize(
    ("auth", "rule"),
    [
        (Authentication(spam="FAIL", dmarc="PASS"), "spam-detected"),
        (Authentication(virus="FAIL", dmarc="PASS"), "virus-detected"),
        (Authentication(dmarc="FAIL", dmarc_policy="REJECT"), "dmarc-failed"),
        (Authentication(dmarc="FAIL", dmarc_policy="quarantine"), "dmarc-failed"),
    ],
)
def test_security_verdicts_block_every_desk_and_are_never_rerouted(auth, rule):
    verdict = evaluate(inbound("cfo@csp-only.example", "billing@vendor.example", "support@vendor.example", auth=auth), DIRECTORY, POLICY)
    assert {(d.action, d.rule) for d in verdict.decisions} == {(Action.BLOCK, rule)}
    assert all(d.deliver_to == () for d in verdict.decisions)


def test_dmarc_failure_with_policy_none_is_left_to_the_table():
    auth = Authentication(dmarc="FAIL", dmarc_policy="none", spf="PASS", envelope_aligned=True)
    (decision,) = evaluate(inbound("x@direct-only.example", auth=auth), DIRECTORY, POLICY).decisions
    assert decision.action is Action.ALLOW


def test_unauthenticated_mail_claiming_a_csp_customer_is_blocked_not_rerouted():
    (decision,) = evaluate(inbound("cfo@csp-only.example", auth=Authentication()), DIRECTORY, POLICY).decisions
    assert decision.action is Action.BLOCK
    assert decision.rule == "unauthenticated-sender"


def test_spf_pass_for_an_unrelated_envelope_domain_does_not_authenticate():
    auth = Authentication(spf="PASS", dkim="GRAY", dmarc="GRAY", envelope_aligned=False)
    (decision,) = evaluate(inbound("cfo@csp-only.example", auth=auth), DIRECTORY, POLICY).decisions
    assert decision.rule == "unauthenticated-sender"


def test_spf_pass_for_the_from_domain_authenticates():
    auth = Authentication(spf="PASS", envelope_aligned=True)
    (decision,) = evaluate(inbound("cfo@csp-only.example", auth=auth), DIRECTORY, POLICY).decisions
    assert decision.action is Action.REROUTE


def test_unauthenticated_mail_that_would_be_allowed_still_reaches_the_vendor():
    (decision,) = evaluate(inbound("someone@stranger.example", auth=Authentication()), DIRECTORY, POLICY).decisions
    assert decision.action is Action.ALLOW
