"""Digests (docs/policy.md, "Digests"): a day of the sample traffic through the real gateway, then the digests function.

The outbound sample events run through `functions/outbound_gateway` against DynamoDB Local and
moto's SES; `functions/digests` then reads that day's records through the `by-day` index and sends
what the policy's `[digests]` table asks for. Each test names the rule it proves.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from moto.backends import get_backend

from mailfilter.digests.gather import partner_digests, sender_digests
from mailfilter.digests.request import PARTNERS, SENDERS, Period, request_from_event
from mailfilter.policy.config import DEFAULT_POLICY_PATH, load_policy, parse_policy
from mailfilter.vocabulary.errors import DigestRequestError, PolicyFileError
from mailfilter.vocabulary.holds import quarantine_id
from mailfilter_testkit.outbound_support import ACCOUNT, FILTER_FROM, REGION, Harness, LambdaContext, load_function, sample_event
from mailfilter_testkit.sam_expansion import raw_template, resources

DEFAULT_TEXT = DEFAULT_POLICY_PATH.read_text(encoding="utf-8")
DIGESTS_ON = """
[digests]
enabled = true
release_contact = "mail-filter-ops@vendor.example"

[digests.senders]
identities = "all"
send_to = { "news@vendor.example" = "marketing-apps@vendor.example" }

[digests.partners]
weekday = "monday"
"""
OUTBOUND_SAMPLES = (
    "outbound-subscription-to-csp-customer.json",
    "outbound-operational.json",
    "outbound-product-to-csp-only.json",
    "outbound-mixed-allowed-rerouted-blocked.json",
    "outbound-two-customers-one-partner.json",
    "outbound-invalid-request.json",
)
FABRIKAM = "csp-desk@fabrikam.example"


def policy_file(tmp_path: Path, digests: str) -> Path:
    path = tmp_path / "policy.toml"
    path.write_text(DEFAULT_TEXT + digests, encoding="utf-8")
    return path


@pytest.fixture
def day_of_traffic(outbound: Harness) -> date:
    """Every outbound sample event through the real gateway; the UTC day its decisions were recorded."""
    gateway = load_function("outbound_gateway")
    for name in OUTBOUND_SAMPLES:
        assert gateway.lambda_handler(sample_event(name), LambdaContext()) == {"batchItemFailures": []}
    outbound.calls.clear()  # what the gateway sent; the tests look at the digests only
    outbound.wire.clear()
    get_backend("ses")[ACCOUNT][REGION].sent_messages.clear()
    return datetime.now(UTC).date()


def digests_function(monkeypatch: pytest.MonkeyPatch, policy: Path | None) -> Any:
    if policy is None:
        monkeypatch.delenv("POLICY_FILE", raising=False)
    else:
        monkeypatch.setenv("POLICY_FILE", str(policy))
    return load_function("digests")


def run(function: Any, event: dict[str, Any]) -> dict[str, Any]:
    return function.lambda_handler(event, LambdaContext(function_name="digests"))


def by_recipient(outbound: Harness) -> dict[tuple[str, ...], Any]:
    return {tuple(sent.envelope): sent for sent in outbound.sent()}


def parts(sent: Any) -> tuple[str, str]:
    assert sent.message.get_content_type() == "multipart/alternative"
    return sent.message.get_body(("plain",)).get_content(), sent.message.get_body(("html",)).get_content()


# ---------------------------------------------------------------- off by default


def test_digests_are_off_by_default_and_the_run_says_so(outbound: Harness, day_of_traffic: date, monkeypatch) -> None:
    """Rule: the shipped policy sends no digest; the schedule still fires, and the function says why it sent nothing."""
    assert load_policy().digests.enabled is False
    function = digests_function(monkeypatch, None)
    for kind in (SENDERS, PARTNERS):
        result = run(function, {"digest": kind, "period_end": day_of_traffic.isoformat()})
        assert result["status"] == "off"
        assert "[digests] enabled = false" in result["message"]
    assert outbound.sent() == []


# ---------------------------------------------------------------- sender digests


def test_each_sending_identity_gets_exactly_its_blocked_and_rerouted_recipients_of_the_day(
    outbound: Harness, day_of_traffic: date, monkeypatch, tmp_path
) -> None:
    """Rule: daily, each identity with mail blocked or rerouted gets one digest (to its `send_to` mailbox if named),
    listing every such recipient with rule, reason, customer and message id; allowed mail and rejected requests are
    not in it, and an identity with nothing blocked or rerouted (security@) gets none."""
    function = digests_function(monkeypatch, policy_file(tmp_path, DIGESTS_ON))
    result = run(function, {"digest": SENDERS, "period_end": day_of_traffic.isoformat()})

    assert result["status"] == "done"
    assert sorted(result["sent"]) == ["billing@vendor.example", "news@vendor.example"]
    sent = by_recipient(outbound)
    assert set(sent) == {("billing@vendor.example",), ("marketing-apps@vendor.example",)}
    for digest in sent.values():
        assert digest.sender == FILTER_FROM
        assert digest.message["From"] == FILTER_FROM
        assert digest.message["Auto-Submitted"] == "auto-generated"

    billing_text, billing_html = parts(sent[("billing@vendor.example",)])
    assert "Blocked and rerouted mail from billing@vendor.example on" in billing_text
    assert "it rerouted 3 recipient(s)" in billing_text
    assert "BLOCKED" not in billing_text
    for message_id in ("sub-2025-01-tailspin-renewal", "sub-2025-01-azure-price-change"):
        assert f"message {message_id}" in billing_text
        assert message_id in billing_html
    assert billing_text.count("   recipient:  i***@tailspintoys.com") == 2
    assert billing_text.count("   recipient:  c***@contoso.com") == 1
    assert billing_text.count("   rule:       subscription-owned-by-partner (seed rule 2)") == 3
    assert billing_text.count("   partner:    Fabrikam Ltd") == 3
    assert '"Your Azure subscription renews on 1 February"' in billing_text
    assert "bad-2025-01-no-body" not in billing_text  # rejected, never decided: the gateway's response said so
    assert "it@tailspintoys.com" not in billing_text + billing_html  # recipients masked by default
    assert "Nothing of this day waits in quarantine." in billing_text

    news_text, news_html = parts(sent[("marketing-apps@vendor.example",)])
    assert "it blocked 2, rerouted 1 recipient(s)" in news_text
    blocked = news_text.split("BLOCKED: KEPT IN QUARANTINE, NOT DELIVERED")[1].split("REROUTED:")[0]
    assert blocked.count("   recipient:  m***@tailspintoys.com") == 2
    assert blocked.count("   customer:   Tailspin Toys (7d1e9b20-tailspin)") == 2
    assert blocked.count("   rule:       product-mail-for-csp-customer (seed rule 1)") == 2
    assert "Tailspin Toys buys only through Fabrikam Ltd; the vendor does not market to it directly." in blocked
    rerouted = news_text.split("REROUTED: SENT TO THE CUSTOMER'S CSP PARTNER INSTEAD")[1].split("HOW TO ASK")[0]
    assert "message news-2025-01-azure-mixed" in rerouted
    assert "   recipient:  i***@contoso.com" in rerouted
    assert "   rule:       product-held-through-csp (seed rule 1)" in rerouted
    assert "woodgrovebank" not in news_text  # allowed
    # Where blocked: the quarantine id the gateway stored, and the command the operators run.
    items = {item.message_id: item.id for item in outbound.quarantine().list()}
    assert set(items) == {"news-2025-01-azure-mixed", "news-2025-01-copilot-tailspin"}
    for item_id in items.values():
        assert f"   quarantine: {item_id}" in news_text
        assert f'mailfilter quarantine release {item_id} --reason "' in news_text
        assert item_id in news_html
    assert "write to mail-filter-ops@vendor.example with the quarantine id" in news_text
    assert 'href="mailto:mail-filter-ops@vendor.example"' in news_html
    assert "<table" in news_html
    assert "product-mail-for-csp-customer (seed rule 1)" in news_html
    assert "security@vendor.example" not in str(result)


def test_a_listed_identity_alone_gets_a_digest_and_recipients_unmasked_when_the_policy_says_so(
    outbound: Harness, day_of_traffic: date, monkeypatch, tmp_path
) -> None:
    """Rule: `identities = [...]` limits the digests to those identities; `mask_recipients = false` shows addresses whole."""
    digests = DIGESTS_ON.replace('identities = "all"', 'identities = ["news@vendor.example"]').replace(
        'release_contact = "mail-filter-ops@vendor.example"', 'release_contact = "mail-filter-ops@vendor.example"\nmask_recipients = false'
    )
    result = run(
        digests_function(monkeypatch, policy_file(tmp_path, digests)), {"digest": SENDERS, "period_end": day_of_traffic.isoformat()}
    )

    assert result["sent"] == ["news@vendor.example"]
    (digest,) = outbound.sent()
    text, _ = parts(digest)
    assert "   recipient:  marketing@tailspintoys.com" in text
    assert "   recipient:  it@contoso.com" in text


def test_the_same_period_twice_sends_each_digest_once(outbound: Harness, day_of_traffic: date, monkeypatch, tmp_path) -> None:
    """Rule: a digest for (identity, period) is sent once, whether the schedule fires twice or an operator re-runs the day."""
    function = digests_function(monkeypatch, policy_file(tmp_path, DIGESTS_ON))
    scheduled = datetime.combine(day_of_traffic + timedelta(days=1), datetime.min.time(), UTC).replace(hour=6)
    event = {"digest": SENDERS, "scheduled_time": scheduled.isoformat().replace("+00:00", "Z")}

    first = run(function, event)
    again = run(function, event)
    rerun = run(load_function("digests"), {"digest": SENDERS, "period_end": day_of_traffic.isoformat()})

    assert first["period"] == again["period"] == rerun["period"] == day_of_traffic.isoformat()
    assert len(first["sent"]) == 2
    assert again["sent"] == rerun["sent"] == []
    assert sorted(again["already_sent"]) == sorted(rerun["already_sent"]) == sorted(first["sent"])
    assert len(outbound.sent()) == 2


def test_a_digest_ses_refuses_is_sent_by_the_retry_and_the_others_are_not_sent_again(
    outbound: Harness, day_of_traffic: date, monkeypatch, tmp_path
) -> None:
    """Rule: one failed send fails the run (Lambda retries it, the alarm counts it) without keeping the other digests back,
    and the retry sends only what failed."""
    function = digests_function(monkeypatch, policy_file(tmp_path, DIGESTS_ON))
    event = {"digest": SENDERS, "period_end": day_of_traffic.isoformat()}
    outbound.fail_next.append("marketing-apps@vendor.example")

    with pytest.raises(function.DigestsFailed, match="1 digest"):
        run(function, event)
    retried = run(function, event)

    assert retried["sent"] == ["news@vendor.example"]
    assert retried["already_sent"] == ["billing@vendor.example"]
    assert sorted(tuple(s.envelope) for s in outbound.sent()) == [("billing@vendor.example",), ("marketing-apps@vendor.example",)]


# ---------------------------------------------------------------- partner summaries


def test_each_partner_gets_a_weekly_summary_counted_per_customer_category_and_product(
    outbound: Harness, day_of_traffic: date, monkeypatch, tmp_path
) -> None:
    """Rule: weekly, each partner that mail was rerouted to gets one summary at its contacts: per customer, messages
    counted by direction, category and product, with their message ids; blocked and allowed mail is not in it."""
    function = digests_function(monkeypatch, policy_file(tmp_path, DIGESTS_ON))
    result = run(function, {"digest": PARTNERS, "period_end": day_of_traffic.isoformat()})

    assert result["sent"] == ["commercial/fabrikam"]
    assert result["period"] == f"{day_of_traffic - timedelta(days=6)}..{day_of_traffic}"
    (summary,) = outbound.sent()
    assert summary.envelope == [FABRIKAM]
    assert "Fabrikam Ltd" in summary.message["Subject"]
    text, page = parts(summary)
    contoso = text.split("Contoso (0f6c2a4e-contoso): 2 message(s)")[1].split("Tailspin Toys")[0]
    assert _row("outbound", "product", "azure", 1) in contoso
    assert _row("outbound", "subscription", "azure", 1) in contoso
    assert "news-2025-01-azure-mixed" in contoso
    assert "sub-2025-01-azure-price-change" in contoso
    tailspin = text.split("Tailspin Toys (7d1e9b20-tailspin): 2 message(s)")[1]
    assert _row("outbound", "subscription", "azure", 2) in tailspin
    assert '    sub-2025-01-tailspin-renewal  "Your Azure subscription renews on 1 February"' in tailspin
    assert "news-2025-01-copilot-tailspin" not in text  # blocked, never reached the partner
    assert "Woodgrove" not in text
    assert "<h3>Contoso (0f6c2a4e-contoso): 2 message(s)</h3>" in page


def _row(direction: str, category: str, product: str, count: int) -> str:
    return f"  {direction:<20} {category:<18} {product:<20} {count}"


def test_partner_summaries_go_out_only_on_the_policys_weekday(outbound: Harness, day_of_traffic: date, monkeypatch, tmp_path) -> None:
    """Rule: the partner schedule fires daily; the policy's `weekday` picks the day, so it changes without a deploy."""
    function = digests_function(monkeypatch, policy_file(tmp_path, DIGESTS_ON))
    tuesday = datetime(2025, 1, 14, 6, 30, tzinfo=UTC)
    result = run(function, {"digest": PARTNERS, "scheduled_time": "2025-01-14T06:30:00Z"})

    assert tuesday.weekday() == 1
    assert result["status"] == "not-today"
    assert "mondays" in result["message"]
    assert outbound.sent() == []


# ---------------------------------------------------------------- the pure core


def record(**values: Any) -> dict[str, Any]:
    base = {
        "pk": "msg#m1", "sk": "decision#a@contoso.com", "kind": "decision", "direction": "outbound", "cloud": "commercial",
        "message_id": "m1", "at": "2025-01-14T09:12:00.000000Z", "recipient": "a@contoso.com", "sender": "billing@vendor.example",
        "action": "block", "effective": "block", "rule": "r", "reason": "because.", "category": "product", "product": "azure",
        "customer": "t1", "customer_name": "Contoso", "partners": ["fabrikam"], "deliver_to": [],
    }  # fmt: skip
    return {**base, **values}


def test_audit_mode_decisions_are_listed_as_would_be_and_a_release_is_shown_beside_its_block() -> None:
    """Rule: in audit mode (or a rule on trial) the digest says what would have been blocked, without a quarantine id;
    a block already released that day says so and asks for no release."""
    policy = parse_policy(DEFAULT_TEXT + DIGESTS_ON, "test")
    day = Period(date(2025, 1, 14), date(2025, 1, 14))
    records = [
        record(),
        record(sk="released#a@contoso.com", kind="released", effective="allow", at="2025-01-14T10:00:00.000000Z"),
        record(message_id="m2", pk="msg#m2", effective="allow"),
    ]
    (digest,) = sender_digests(records, policy, day)
    assert digest.to == ("billing@vendor.example",)
    assert "it blocked 1, would have blocked 1 recipient(s)" in digest.text
    assert (
        f"   quarantine: {quarantine_id('m1', datetime(2025, 1, 14, 9, 12, tzinfo=UTC))} (released 2025-01-14 10:00 UTC as allow)"
        in digest.text
    )
    assert "WOULD BE BLOCKED" in digest.text
    assert "message m2" in digest.text
    assert "Nothing of this day waits in quarantine." in digest.text
    assert partner_digests(records, policy, day) == []  # nothing was rerouted


def test_records_without_a_sender_and_inbound_records_make_no_sender_digest() -> None:
    """Rule: only outbound decisions that name their sending identity are attributed (records before it was recorded are not)."""
    policy = parse_policy(DEFAULT_TEXT + DIGESTS_ON, "test")
    day = Period(date(2025, 1, 14), date(2025, 1, 14))
    unnamed = record()
    del unnamed["sender"]
    assert sender_digests([unnamed, record(direction="inbound")], policy, day) == []


@pytest.mark.parametrize(
    ("event", "kind", "period"),
    [
        ({"digest": "senders", "scheduled_time": "2025-01-15T06:00:00Z"}, SENDERS, "2025-01-14"),
        ({"digest": "partners", "time": "2025-01-13T06:30:00Z"}, PARTNERS, "2025-01-06..2025-01-12"),
        ({"digest": "senders", "period_end": "2025-01-14"}, SENDERS, "2025-01-14"),
        ({"digest": "partners", "period_end": "2025-01-12"}, PARTNERS, "2025-01-06..2025-01-12"),
    ],
)
def test_a_schedule_event_names_the_digest_and_the_period_before_its_time(event, kind, period) -> None:
    """Rule: the daily digest covers the UTC day before the scheduled time, the weekly one the seven days before."""
    request = request_from_event(event)
    assert (request.kind, request.period.key) == (kind, period)


@pytest.mark.parametrize("event", [{}, {"digest": "monthly"}, {"digest": "senders", "period_end": "yesterday"}])
def test_an_event_that_does_not_say_which_digest_is_refused(event) -> None:
    with pytest.raises(DigestRequestError):
        request_from_event(event)


# ---------------------------------------------------------------- the policy's [digests] table


@pytest.mark.parametrize(
    ("digests", "message"),
    [
        ("[digests]\nenabled = true\n", "digests: release_contact is required when enabled = true"),
        ('[digests]\n[digests.senders]\nidentities = "some"\n', 'digests.senders.identities: expected "all" or a non-empty list'),
        ('[digests]\n[digests.senders]\nidentities = ["billing@vendor.example", "nobody"]\n', "digests.senders.identities: entry 1:"),
        (
            '[digests]\n[digests.senders]\nidentities = ["billing@vendor.example"]\n'
            'send_to = { "news@vendor.example" = "t@vendor.example" }\n',
            "senders.send_to names ['news@vendor.example'], which senders.identities does not list",
        ),
        ('[digests]\n[digests.senders]\nsend_to = { "app@elsewhere.example" = "t@vendor.example" }\n', "not vendor identities"),
        ('[digests]\n[digests.partners]\nweekday = "mon"\n', "digests.partners.weekday: Input should be 'monday'"),
        ("[digests]\nenable = true\n", "digests.enable: Extra inputs are not permitted"),
    ],
)
def test_a_digests_table_that_cannot_work_is_refused_with_the_key_and_problem(tmp_path, digests, message) -> None:
    """Rule: the [digests] table is validated with the policy; each mistake names its key."""
    with pytest.raises(PolicyFileError) as caught:
        load_policy(policy_file(tmp_path, "\n" + digests))
    assert message in str(caught.value)


# ---------------------------------------------------------------- template


def test_two_schedules_invoke_the_digests_function_and_its_role_reads_only_the_by_day_index() -> None:
    """Rule: the daily and the partner schedule name their digest and pass the scheduled time; the role queries the
    decisions table only through `by-day`, and sends only as the filter's address."""
    function = resources("AWS::Serverless::Function")["DigestsFunction"]["Properties"]
    events = function["Events"]
    assert {name: (e["Type"], e["Properties"]["Input"]) for name, e in events.items()} == {
        "SenderDigests": ("ScheduleV2", '{"digest": "senders", "scheduled_time": "<aws.scheduler.scheduled-time>"}'),
        "PartnerDigests": ("ScheduleV2", '{"digest": "partners", "scheduled_time": "<aws.scheduler.scheduled-time>"}'),
    }
    assert all(e["Properties"]["ScheduleExpressionTimezone"] == "UTC" for e in events.values())
    statements = {s["Sid"]: s for s in function["Policies"][0]["Statement"]}
    assert statements["ReadDecisionsByDay"]["Action"] == "dynamodb:Query"
    assert statements["ReadDecisionsByDay"]["Resource"] == {"Fn::Sub": "${DecisionsTable.Arn}/index/by-day"}
    assert function["LoggingConfig"]["LogGroup"] == {"Ref": "DigestsLogGroup"}
    assert "DigestsFunctionName" in raw_template()["Outputs"]
