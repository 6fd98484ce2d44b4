"""Decisions as evidence: `mailfilter trace`, `policy replay` and `report`, on the records the demo's events make.

The demo's services (DynamoDB Local, moto's S3 and SES), its resources from template.yaml
and every sample event through the real handlers; then the commands read what was recorded.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from mailfilter.aws import clients
from mailfilter.directory.view import CustomerMatch, CustomerView, PartnerLink
from mailfilter.policy.config import DEFAULT_POLICY_PATH, load_policy
from mailfilter.policy.decide import decide
from mailfilter.policy.sections import Rule
from mailfilter.vocabulary.model import Action, Category, Classification, Cloud, Mode, Source
from mailfilter_cli import settings
from mailfilter_cli.main import cli
from mailfilter_testkit.demo_records import DemoStack, demo_stack
from mailfilter_testkit.paths import ROOT

DDL = ROOT / "docs" / "athena" / "decisions.sql"


@pytest.fixture(scope="module")
def stack(dynamodb_local: str) -> Iterator[DemoStack]:
    with demo_stack() as running:
        yield running


@pytest.fixture(autouse=True)
def no_env_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(settings.LOCAL_ENV_VARIABLE, "")


def run(stack: DemoStack, *args: str) -> Result:
    return CliRunner().invoke(cli, list(args), env=stack.env())


def trace_json(stack: DemoStack, *args: str) -> list[dict[str, Any]]:
    result = run(stack, "trace", "--format", "json", "--limit", "0", *args)
    assert result.exit_code in (0, 1), result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


@pytest.fixture(scope="module")
def everything(stack: DemoStack) -> list[dict[str, Any]]:
    return trace_json(stack)


def policy_file(tmp_path: Path, rule: str, **changes: str) -> Path:
    """The default policy with one rule's keys changed (values as TOML literals)."""
    text = DEFAULT_POLICY_PATH.read_text(encoding="utf-8")
    start = text.index(f'id = "{rule}"')
    end = text.find("[[rules]]", start)
    end = len(text) if end < 0 else end
    block = text[start:end]
    for key, value in changes.items():
        block, replaced = re.subn(rf"(?m)^{key} = .*$", f"{key} = {value}", block)
        if not replaced:
            block = block.rstrip("\n") + f"\n{key} = {value}\n\n"
    path = tmp_path / "changed.toml"
    path.write_text(text[:start] + block + text[end:], encoding="utf-8")
    return path


# ---------------------------------------------------------------- trace


def test_trace_lists_every_record_the_demo_made_newest_first(stack: DemoStack, everything: list[dict[str, Any]]) -> None:
    recorded = {(d["message_id"], d["recipient"], d.get("kind")) for o in stack.outcomes for d in o.decisions}
    assert {(r["message_id"], r["recipient"], r["kind"]) for r in everything} == recorded
    assert [r["at"] for r in everything] == sorted((r["at"] for r in everything), reverse=True)
    assert {"decision", "violation", "rejected"} <= {r["kind"] for r in everything}


@pytest.mark.parametrize(
    ("flag", "value", "field"),
    [
        ("--message-id", "news-2025-01-azure-mixed", "message_id"),
        ("--customer", "7d1e9b20-tailspin", "customer"),
        ("--recipient", "marketing@tailspintoys.com", "recipient"),
        ("--rule", "subscription-owned-by-partner", "rule"),
        ("--action", "block", "action"),
        ("--cloud", "commercial", "cloud"),
        ("--partner", "fabrikam", "partners"),
        ("--action", "violation", "kind"),
    ],
)
def test_trace_filters_return_exactly_the_matching_records(
    stack: DemoStack, everything: list[dict[str, Any]], flag: str, value: str, field: str
) -> None:
    expected = [r for r in everything if (value in r.get(field, ()) if field == "partners" else r.get(field) == value)]
    assert expected, "the demo makes records of each kind filtered here"
    found = trace_json(stack, flag, value)
    assert sorted((r["message_id"], r["sk"]) for r in found) == sorted((r["message_id"], r["sk"]) for r in expected)


def test_trace_uses_a_query_per_key(stack: DemoStack) -> None:
    from mailfilter.aws.trace import DecisionTrace, TraceFilter  # noqa: PLC0415

    store = DecisionTrace(stack.variables["DECISIONS_TABLE"])
    since = datetime.now(UTC) - timedelta(days=1)
    assert store.query_plan(TraceFilter(since, message_id="m")) == "message"
    assert store.query_plan(TraceFilter(since, customer="c", rule="r")) == "by-customer"
    assert store.query_plan(TraceFilter(since, recipient="a@b.example")) == "by-recipient"
    assert store.query_plan(TraceFilter(since, partner="fabrikam", rule="r", cloud="usgov")) == "by-day"


def test_trace_pages_with_a_continuation_token_and_loses_nothing(stack: DemoStack, everything: list[dict[str, Any]]) -> None:
    seen: list[tuple[str, str]] = []
    token = None
    for _ in range(len(everything)):
        args = ["trace", "--format", "json", "--limit", "4", *(["--after", token] if token else [])]
        result = run(stack, *args)
        assert result.exit_code == 0, result.output
        seen += [(r["message_id"], r["sk"]) for r in map(json.loads, result.stdout.splitlines())]
        more = re.search(r"--after (\S+)", result.stderr)
        if more is None:
            break
        token = more.group(1)
    assert seen == [(r["message_id"], r["sk"]) for r in everything]


def test_trace_time_range_and_formats(stack: DemoStack, everything: list[dict[str, Any]]) -> None:
    before = run(stack, "trace", "--since", "2d", "--until", "1d")
    assert before.exit_code == 1
    assert "no recorded decisions match" in before.stderr
    rows = list(csv.DictReader(io.StringIO(run(stack, "trace", "--format", "csv", "--limit", "0").stdout)))
    assert len(rows) == len(everything)
    assert rows[0].keys() >= {"at", "message_id", "recipient", "action", "rule", "reason"}
    table = run(stack, "trace", "--message-id", "news-2025-01-azure-mixed")
    assert table.exit_code == 0
    assert "product-mail-for-csp-customer" in table.stdout
    assert "3 record(s)" in table.stderr


def test_each_decision_records_what_a_replay_needs(everything: list[dict[str, Any]]) -> None:
    [contoso] = [r for r in everything if r["message_id"] == "news-2025-01-azure-mixed" and r["recipient"] == "it@contoso.com"]
    assert contoso["segment"] == "csp-and-direct"
    assert contoso["classification"]["category"] == "product"
    assert {"kind": "product", "value": "azure", "source": "request"} in contoso["classification"]["evidence"]
    view = contoso["customer_view"]
    assert view["direct_products"] == ["dynamics-365"]
    assert view["partners"] == [
        {
            "partner_id": "fabrikam",
            "name": "Fabrikam Ltd",
            "products": ["microsoft-365", "azure"],
            "contacts": ["csp-desk@fabrikam.example"],
        }
    ]
    inbound = [r for r in everything if r["direction"] == "inbound" and r["kind"] == "decision"]
    assert inbound
    assert all(isinstance(r["authenticated"], bool) for r in inbound)


def test_export_writes_json_lines_by_day_that_the_athena_ddl_describes(stack: DemoStack, everything: list[dict[str, Any]]) -> None:
    bucket = stack.variables["MAIL_BUCKET"]
    result = run(stack, "trace", "--export", f"s3://{bucket}/archive/decisions", "--format", "json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["exported"] == len(everything)
    exported = []
    with _aws(stack):
        s3 = clients.client("s3")
        for written in summary["objects"]:
            key = written["object"].removeprefix(f"s3://{bucket}/")
            assert re.fullmatch(r"archive/decisions/dt=\d{4}-\d{2}-\d{2}/decisions-\d{8}T\d{6}Z-\d{8}T\d{6}Z\.jsonl\.gz", key)
            body = gzip.decompress(s3.get_object(Bucket=bucket, Key=key)["Body"].read()).decode("utf-8")
            exported += [json.loads(line) for line in body.splitlines()]
    assert len(exported) == len(everything)
    columns = set(re.findall(r"(?m)^  `?([a-z_]+)`?\s+(?:string|bigint|int|boolean|array|struct)", DDL.read_text(encoding="utf-8")))
    assert {key for record in exported for key in record} <= columns


class _aws:  # noqa: N801 - a context manager used like a function
    """The demo's endpoints in os.environ for direct boto3 calls, restored after."""

    def __init__(self, stack: DemoStack) -> None:
        self.patch = pytest.MonkeyPatch()
        self.stack = stack

    def __enter__(self) -> None:
        for name, value in self.stack.env().items():
            self.patch.setenv(name, value)
        clients.reset()

    def __exit__(self, *exc: object) -> None:
        self.patch.undo()
        clients.reset()


# ---------------------------------------------------------------- replay


def replay_json(stack: DemoStack, file: Path) -> dict[str, Any]:
    result = run(stack, "policy", "replay", str(file), "--since", "1d", "--format", "json", "--examples", "10")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_replay_of_the_default_policy_against_itself_changes_nothing(stack: DemoStack, everything: list[dict[str, Any]]) -> None:
    report = replay_json(stack, DEFAULT_POLICY_PATH)
    decisions = [r for r in everything if r["kind"] in ("decision", "violation")]
    assert report["read"] == len(decisions)
    assert report["changed"] == 0
    assert report["changes"] == []
    # only what the policy table cannot decide is left out: an unreadable destination, an unreadable sender
    assert report["replayed"] + sum(report["not_replayed"].values()) == len(decisions)
    assert report["replayed"] >= len(decisions) - 1


def test_r1_product_mail_rerouted_instead_of_blocked_changes_exactly_those_decisions(
    stack: DemoStack, everything: list[dict[str, Any]], tmp_path: Path
) -> None:
    changed = policy_file(tmp_path, "product-mail-for-csp-customer", action='"reroute"')
    report = replay_json(stack, changed)
    expected = {
        (r["message_id"], r["recipient"])
        for r in everything
        if r["kind"] in ("decision", "violation") and r.get("rule") == "product-mail-for-csp-customer"
    }
    assert len(expected) >= 3  # two blocked sends through the gateway and one violation the audit found
    assert report["changed"] == len(expected)
    assert report["changes"] == [
        {"old": "block product-mail-for-csp-customer", "new": "reroute product-mail-for-csp-customer", "decisions": len(expected)}
    ]
    assert report["actions"] == [{"old": "block", "new": "reroute", "decisions": len(expected)}]
    assert report["by_partner"] == [{"partner": "fabrikam", "old": "block", "new": "reroute", "decisions": len(expected)}]
    assert report["by_customer"] == [{"customer": "Tailspin Toys", "old": "block", "new": "reroute", "decisions": len(expected)}]
    assert {(e["message_id"], e["recipient"]) for e in report["examples"]} == expected
    assert all(e["new"]["deliver_to"] == ["csp-desk@fabrikam.example"] for e in report["examples"])


def test_r2_subscription_rule_in_audit_mode_is_recorded_and_counted_but_not_enforced(
    stack: DemoStack, everything: list[dict[str, Any]], tmp_path: Path
) -> None:
    trial = policy_file(tmp_path, "subscription-owned-by-partner", mode='"audit"')
    report = replay_json(stack, trial)
    expected = [r for r in everything if r["kind"] == "decision" and r.get("rule") == "subscription-owned-by-partner"]
    # the spoofed billing mail: the rule's reroute became a block (unauthenticated sender), on trial with it
    spoofed = [r for r in everything if r.get("rule") == "unauthenticated-sender"]
    assert expected
    assert len(spoofed) == 1
    assert report["on_trial"] == {"subscription-owned-by-partner": len(expected), "unauthenticated-sender": 1}
    assert sorted(report["changes"], key=lambda c: c["old"]) == [
        {"old": "block unauthenticated-sender", "new": "block unauthenticated-sender (delivered as allow)", "decisions": 1},
        {
            "old": "reroute subscription-owned-by-partner",
            "new": "reroute subscription-owned-by-partner (delivered as allow)",
            "decisions": len(expected),
        },
    ]
    table = run(stack, "policy", "replay", str(trial), "--since", "1d")
    assert 'on trial (mode = "audit"): subscription-owned-by-partner' in table.stdout


def test_a_rule_with_mode_audit_decides_as_written_and_delivers_as_allow() -> None:
    policy = load_policy()
    rules = [rule.model_copy(update={"mode": Mode.AUDIT}) if rule.id == "product-mail-for-csp-customer" else rule for rule in policy.rules]
    trial = policy.model_copy(update={"rules": [Rule.model_validate(r.model_dump()) for r in rules]})
    customer = CustomerView(
        Cloud.COMMERCIAL, "t", "Tailspin Toys", False, frozenset(), (PartnerLink("fabrikam", "Fabrikam Ltd", (), ("p@f.example",)),)
    )
    product = Classification(Category.PRODUCT, Source.REQUEST, None, Source.DEFAULT, Cloud.COMMERCIAL, Source.DEFAULT)
    match = CustomerMatch(customer, "domain", "tailspintoys.com")
    enforced = decide("m@tailspintoys.com", match, product, policy)
    on_trial = decide("m@tailspintoys.com", match, product, trial)
    assert (enforced.action, enforced.effective, enforced.deliver_to) == (Action.BLOCK, Action.BLOCK, ())
    assert (on_trial.action, on_trial.effective, on_trial.deliver_to) == (Action.BLOCK, Action.ALLOW, ("m@tailspintoys.com",))
    assert on_trial.rule == "product-mail-for-csp-customer"


def test_policy_check_names_a_rule_on_trial(tmp_path: Path) -> None:
    trial = policy_file(tmp_path, "general-mail-via-partner", mode='"audit"')
    [checked] = [
        json.loads(line) for line in CliRunner().invoke(cli, ["policy", "check", str(trial), "--format", "json"]).stdout.splitlines()
    ]
    assert {r["id"]: r["mode"] for r in checked["rules"]}["general-mail-via-partner"] == "audit"
    refused = policy_file(tmp_path, "general-mail-via-partner", mode='"sometimes"')
    result = CliRunner().invoke(cli, ["policy", "check", str(refused)])
    assert result.exit_code == 1
    assert "mode" in result.output


# ---------------------------------------------------------------- report


def test_report_tables_count_what_trace_lists(stack: DemoStack, everything: list[dict[str, Any]]) -> None:
    result = run(stack, "report", "--since", "1d", "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    total = {chart: sum(int(r["count"]) for r in rows if r["chart"] == chart) for chart in {r["chart"] for r in rows}}
    decisions = [r for r in everything if r["kind"] == "decision"]
    assert total["decisions-by-action"] == total["decisions-by-rule"] == total["decisions-by-cloud"] == len(decisions)
    assert total["rerouted-by-partner"] == sum(len(r["partners"]) for r in decisions if r["effective"] == "reroute")
    assert total["audit-violations"] == sum(r["kind"] == "violation" for r in everything)
    assert total["deferrals"] == sum(r["kind"] in ("deferred", "rejected") for r in everything)
    quarantined = sum(int(r["count"]) for r in rows if r["chart"] == "quarantine" and r["series"] == "quarantined")
    assert quarantined >= 4
