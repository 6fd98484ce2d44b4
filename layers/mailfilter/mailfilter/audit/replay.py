"""Deciding recorded decisions again under another policy: pure, through the functions' own core.

Each decision record carries the facts it was decided on (`mailfilter.aws.decisions.replay_values`):
the message's classification with its sources, the customer as the directory matched it then
(direct products, partners with what they own and their contacts) and, inbound, whether the
sender was authenticated. `redecide` rebuilds those facts and calls the same code the functions
run: `policy.decide.decide` for a recipient of outbound mail (and of mail the audit found),
`engine.decide_desk` (the inbound security gates around the table) for a vendor desk, after
`classify_desk` under the new policy. So a replay answers "what would this policy have done with
that mail and that directory"; what it cannot answer is a change to how the message itself is
read (subject patterns, sender maps, category order), because the message is not kept: those
decisions are replayed with the classification they were recorded with.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from mailfilter.directory.view import CustomerMatch, CustomerView, PartnerLink
from mailfilter.engine import UNREADABLE_SENDER, decide_desk
from mailfilter.policy.classify import classify_desk
from mailfilter.policy.config import Policy
from mailfilter.policy.decide import decide
from mailfilter.vocabulary.errors import NotReplayableError
from mailfilter.vocabulary.model import Action, Classification, Cloud, Decision, Direction

REPLAYED_KINDS = frozenset({"decision", "violation"})
# Decided before the table from evidence about the message itself; no policy changes them.
GATE_RULES = frozenset({"virus-detected", "spam-detected", "dmarc-failed", UNREADABLE_SENDER, "unreadable-destination"})
REJECTION_RULES = frozenset({"virus-detected", "spam-detected", "dmarc-failed"})


def classification_of(record: dict[str, Any]) -> Classification:
    data = record.get("classification")
    if not data:
        raise NotReplayableError("no classification recorded")
    return Classification.from_dict(data)


def match_of(record: dict[str, Any]) -> CustomerMatch | None:
    """The directory entry as the decision saw it; None when the recipient was in no directory."""
    view = record.get("customer_view")
    if view is None:
        if record.get("segment") is None:
            raise NotReplayableError("no customer recorded")
        return None
    customer = CustomerView(
        cloud=Cloud(view["cloud"]),
        tenant_id=view["tenant_id"],
        name=view["name"],
        direct_relationship=bool(view["direct_relationship"]),
        direct_products=frozenset(view.get("direct_products") or ()),
        partners=tuple(
            PartnerLink(p["partner_id"], p["name"], tuple(p.get("products") or ()), tuple(p.get("contacts") or ()))
            for p in view.get("partners") or ()
        ),
    )
    return CustomerMatch(customer, view["matched_by"], view["entry"])


def redecide(record: dict[str, Any], policy: Policy) -> Decision:
    """The decision `policy` makes on the record's facts; raises NotReplayableError without them."""
    if record.get("kind") not in REPLAYED_KINDS:
        raise NotReplayableError(f"a {record.get('kind')} record is not a decision")
    classification = classification_of(record)
    match = match_of(record)
    recipient = record["recipient"]
    rule = record.get("rule")
    if record.get("direction") != Direction.INBOUND.value:
        if rule in GATE_RULES:
            raise NotReplayableError(f"{rule} is decided before the policy table")
        return decide(recipient, match, classification, policy)
    if rule in GATE_RULES - REJECTION_RULES:
        raise NotReplayableError(f"{rule} is decided before the policy table")
    rejection = (rule, record.get("reason", "")) if rule in REJECTION_RULES else None
    desk_class = classify_desk(classification, recipient, policy)
    return decide_desk(recipient, match, desk_class, policy, rejection, bool(record.get("authenticated")))


def outcome(action: Any, effective: Any, rule: Any) -> str:
    """One line for an outcome: the action and rule, with the delivered action where a rule on trial (or audit) differs."""
    action, effective = str(action), str(effective)
    trial = "" if effective == action else f" (delivered as {effective})"
    return f"{action} {rule}{trial}"


@dataclass
class Change:
    record: dict[str, Any]
    new: Decision

    @property
    def old_key(self) -> tuple[str, str, str]:
        return (self.record.get("action", ""), self.record.get("effective", ""), self.record.get("rule", ""))

    @property
    def new_key(self) -> tuple[str, str, str]:
        return (self.new.action.value, self.new.effective.value, self.new.rule)

    @property
    def transition(self) -> tuple[str, str]:
        return (outcome(*self.old_key), outcome(*self.new_key))


@dataclass
class ReplayReport:
    """What a policy would change: counts per old -> new outcome, per partner and customer, and the first examples."""

    examples_per_change: int = 3
    read: int = 0
    replayed: int = 0
    unchanged: int = 0
    skipped: Counter[str] = field(default_factory=Counter)  # why records were not replayed
    transitions: Counter[tuple[str, str]] = field(default_factory=Counter)
    actions: Counter[tuple[str, str]] = field(default_factory=Counter)  # old action -> new action, changed records only
    by_partner: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    by_customer: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    on_trial: Counter[str] = field(default_factory=Counter)  # rule -> decisions the new policy records but does not enforce
    examples: dict[tuple[str, str], list[Change]] = field(default_factory=dict)

    @property
    def changed(self) -> int:
        return sum(self.transitions.values())

    def add(self, record: dict[str, Any], policy: Policy) -> Change | None:
        self.read += 1
        try:
            new = redecide(record, policy)
        except NotReplayableError as error:
            self.skipped[str(error)] += 1
            return None
        self.replayed += 1
        if new.action is not new.effective and new.effective is Action.ALLOW:
            self.on_trial[new.rule] += 1
        change = Change(record, new)
        if change.old_key == change.new_key:
            self.unchanged += 1
            return None
        self.transitions[change.transition] += 1
        self.actions[(change.old_key[0], change.new_key[0])] += 1
        for partner in sorted({*(record.get("partners") or ()), *new.partners}) or ["(none)"]:
            self.by_partner[(partner, change.old_key[0], change.new_key[0])] += 1
        customer = record.get("customer_name") or record.get("customer") or "(not in the directory)"
        self.by_customer[(customer, change.old_key[0], change.new_key[0])] += 1
        shown = self.examples.setdefault(change.transition, [])
        if len(shown) < self.examples_per_change:
            shown.append(change)
        return change


def replay(records: Iterable[dict[str, Any]], policy: Policy, *, examples_per_change: int = 3) -> ReplayReport:
    report = ReplayReport(examples_per_change=examples_per_change)
    for record in records:
        report.add(record, policy)
    return report
