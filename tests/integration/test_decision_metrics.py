"""One decision counter with one meaning in every function (mailfilter.metrics.count_decisions).

`Allowed`, `Rerouted` and `Blocked` count what the policy decided, with the mode as a
dimension: in audit mode a would-be block is `Blocked` with `mode=audit` on the gateway and on
the inbound filter alike, never `Allowed` on one dashboard and `Blocked` on the other.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from mailfilter.metrics import count_decisions
from mailfilter.vocabulary.model import Action, Category, Classification, Cloud, Decision, Direction, Mode, Source, Verdict
from mailfilter_testkit.inbound_stack import InboundStack, inbound_stack, sample
from mailfilter_testkit.outbound_support import Harness, LambdaContext, load_function, sample_event


def counted(out: str) -> set[tuple[str, str, str | None]]:
    """(metric, category, mode) of every decision count the handler wrote as EMF."""
    found = set()
    for line in out.splitlines():
        if '"_aws"' not in line:
            continue
        record = json.loads(line)
        for directive in record["_aws"]["CloudWatchMetrics"]:
            for metric in directive["Metrics"]:
                if metric["Name"] in ("Allowed", "Rerouted", "Blocked", "Deferred"):
                    found.add((metric["Name"], record.get("category"), record.get("mode")))
    return found


def test_the_gateway_counts_a_would_be_block_in_audit_mode_as_blocked_with_mode_audit(
    outbound: Harness, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MAILFILTER_MODE", "audit")
    gateway = load_function("outbound_gateway")
    gateway.lambda_handler(sample_event("outbound-product-to-csp-only.json"), LambdaContext())
    assert counted(capsys.readouterr().out) == {("Blocked", "product", "audit")}


@pytest.fixture
def audit_stack(monkeypatch: pytest.MonkeyPatch, dynamodb_local: str, directory_table: str, decisions_table: str) -> Any:
    monkeypatch.setenv("MAILFILTER_MODE", "audit")
    yield from inbound_stack(monkeypatch, dynamodb_local, directory_table, decisions_table)


def test_the_inbound_filter_counts_a_would_be_block_in_audit_mode_as_blocked_with_mode_audit(
    audit_stack: InboundStack, capsys: pytest.CaptureFixture[str]
) -> None:
    event, raw = sample("spam")
    audit_stack.store(event["Records"][0]["ses"]["mail"]["messageId"], raw)
    audit_stack.invoke(event)
    # spam to the billing desk: the security gate's block, delivered as allowed in audit mode
    assert counted(capsys.readouterr().out) == {("Blocked", "subscription", "audit")}


def test_a_rule_on_trial_counts_what_it_decided_with_mode_audit() -> None:
    """Enforce mode, one rule on trial: its block was delivered as allowed, and counts as a Blocked on trial."""
    classification = Classification(Category.PRODUCT, Source.REQUEST, "azure", Source.REQUEST, Cloud.COMMERCIAL, Source.DEFAULT)
    decided = Decision(
        recipient="it@tailspintoys.com",
        action=Action.BLOCK,
        effective=Action.ALLOW,
        deliver_to=("it@tailspintoys.com",),
        rule="product-mail-for-csp-customer",
        seed_rule=1,
        reason="on trial",
        category=Category.PRODUCT,
        product="azure",
        customer="7d1e9b20-tailspin",
        customer_name="Tailspin Toys",
        matched_by="domain",
        partners=("fabrikam",),
    )
    counts: list[tuple[Any, ...]] = []
    verdict = Verdict("m-1", Direction.OUTBOUND, classification, Mode.ENFORCE, (decided,))
    count_decisions(lambda *args: counts.append(args), verdict)
    assert counts == [("Blocked", 1, "product", "commercial", "audit")]
