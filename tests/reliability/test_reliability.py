"""Faults under load, small enough for every test run; and the fixes the full run (`make reliability`) led to.

The full run and its figures: bench/reliability.py, docs/reliability.md. The machinery
(directory and mail generation, the oracle, the simulated queue and Lambda service, the
checks) is the package mailfilter_testkit.load_run; the fault injector is mailfilter_testkit.faults.
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from mailfilter.aws import clients
from mailfilter.aws.ledger import MessageLedger
from mailfilter.ports import Claim, Done
from mailfilter.vocabulary.errors import LedgerError, MessageInProgress
from mailfilter_testkit.inbound_stack import InboundStack, inbound_stack, sample
from mailfilter_testkit.load_run import Config, Report, run
from mailfilter_testkit.load_run.checks import Checker
from mailfilter_testkit.load_run.directory import Customer, generate_directory
from mailfilter_testkit.load_run.oracle import oracle
from mailfilter_testkit.load_run.stack import FILTER_FROM
from mailfilter_testkit.load_run.workload import Outbound, generate_inbound, generate_outbound

# ---------------------------------------------------------------- the run itself

SMALL = Config(
    messages=50,
    inbound=40,
    customers_per_cloud=14,
    max_recipients=8,
    workers=2,
    crash_rate=0.03,
    concurrent_rate=0.1,
    timeout_seconds=3.0,
    visibility_seconds=4,
    seed=11,
)


def test_under_faults_and_crashes_no_rule_is_broken_nothing_is_lost_and_nothing_is_sent_twice(dynamodb_local):
    report = run(SMALL, dynamodb_local)
    assert report.violations == []
    assert report.lost == []
    assert report.duplicate_sends == []
    assert report.unhandled_exceptions == []
    # the run really was under fire, and really delivered
    assert sum(report.faults.values()) >= 50, report.faults
    assert {kind.split()[0] for kind in report.faults} >= {"dynamodb", "s3", "sesv2"}
    assert report.receives > report.messages  # redeliveries happened
    assert report.dead_lettered < report.messages // 2


def test_every_cell_of_the_decision_table_is_generated_in_every_cloud():
    _, customers = generate_directory(SMALL.customers_per_cloud)
    messages = generate_outbound(400, SMALL.seed, customers, SMALL.customers_per_cloud)
    seen = {(m.request["cloud"], m.request["category"], e.action) for m in messages for e in m.expected.values()}
    for cloud in ("commercial", "usgov", "germany"):
        assert {(category, action) for c, category, action in seen if c == cloud} >= {
            ("subscription", "allow"), ("subscription", "reroute"), ("subscription", "block"),
            ("product", "allow"), ("product", "reroute"), ("product", "block"),
            ("general", "allow"), ("general", "reroute"), ("general", "block"),
            ("service-incident", "allow"), ("operational", "allow"),
        }  # fmt: skip


def test_the_oracle_agrees_with_the_policy_engine_on_every_generated_recipient(tmp_path):
    """The oracle is written from docs/policy.md; the engine from default.toml: they must say the same."""
    import json  # noqa: PLC0415

    from mailfilter.directory.memory import InMemoryDirectory  # noqa: PLC0415
    from mailfilter.engine import evaluate  # noqa: PLC0415
    from mailfilter.outbound.request import read_send_request  # noqa: PLC0415
    from mailfilter.policy.config import load_policy  # noqa: PLC0415

    records, customers = generate_directory(SMALL.customers_per_cloud)
    path = tmp_path / "directory.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    directory, policy = InMemoryDirectory.from_file(path), load_policy(None)
    disagreements = []
    for message in generate_outbound(300, 3, customers, SMALL.customers_per_cloud):
        verdict = evaluate(read_send_request(message.request, policy).message, directory, policy)
        for decision in verdict.decisions:
            expected = message.expected[decision.recipient]
            if (decision.action.value, set(decision.deliver_to) if expected.action == "reroute" else set()) != (
                expected.action,
                set(expected.contacts),
            ):
                disagreements.append((message.message_id, decision.recipient, decision.rule, expected))
    assert disagreements == []


def test_the_inbound_oracle_never_relays_unauthenticated_or_spam_mail_to_a_partner():
    _, customers = generate_directory(SMALL.customers_per_cloud)
    for event in generate_inbound(300, 5, customers, SMALL.customers_per_cloud):
        receipt = event.event["Records"][0]["ses"]["receipt"]
        if receipt["dmarcVerdict"]["status"] != "PASS" or receipt["spamVerdict"]["status"] == "FAIL":
            assert all(e.action != "reroute" for e in event.expected.values())


class _Parsed(dict):
    def __getitem__(self, key: str) -> Any:
        return self.get(key)


def test_the_check_counts_a_duplicate_a_forbidden_recipient_and_a_missing_notice():
    """The run's verdict is only worth something if the checker can fail."""
    customer = Customer("commercial", "t1", "c1.example", (("alpha", ()),), (), False)
    contacts = oracle(customer, "general", None).contacts
    message = Outbound(
        "lout-000001",
        {"from": "notices@vendor.example"},
        {"a@nobody.example": oracle(None, "general", None), "b@c1.example": oracle(customer, "general", None)},
    )
    checker = Checker(Report(SMALL), trace=[])
    sends = [
        ("notices@vendor.example", {"a@nobody.example"}, _Parsed()),
        ("notices@vendor.example", {"a@nobody.example", "b@c1.example"}, _Parsed()),  # twice, and to the CSP customer
    ]
    checker.check_outbound(message, sends, {}, [], dead=False)
    assert len(checker.report.violations) == 1
    assert "b@c1.example received" in checker.report.violations[0]
    assert len(checker.report.duplicate_sends) == 1
    assert checker.report.lost
    assert "notice t1" in checker.report.lost[0]
    ok = Checker(Report(SMALL), trace=[])
    notice = _Parsed({"X-CSP-Mail-Filter-Customer": "t1"})
    records = {f"decision#{r}": {"action": e.action} for r, e in message.expected.items()}
    ok.check_outbound(
        message,
        [("notices@vendor.example", {"a@nobody.example"}, _Parsed()), (FILTER_FROM, set(contacts), notice)],
        records,
        [],
        dead=False,
    )
    assert ok.report.problems() == []


# ---------------------------------------------------------------- the progress marker


def _fail(client: Any, operation: str, code: str, times: int, status: int = 400) -> list[int]:
    calls = [0]

    def handler(**_: Any) -> None:
        calls[0] += 1
        if calls[0] <= times:
            raise ClientError({"Error": {"Code": code, "Message": "injected"}, "ResponseMetadata": {"HTTPStatusCode": status}}, operation)

    client.meta.events.register_first(f"before-call.{client.meta.service_model.service_id.hyphenize()}.{operation}", handler)
    return calls


@pytest.fixture
def idempotency_table(dynamodb_local):
    from mailfilter_testkit.aws_resources import create_tables_from_template, delete_tables  # noqa: PLC0415

    clients.reset()
    names = create_tables_from_template(["IdempotencyTable"])
    yield names["IdempotencyTable"]
    clients.reset()
    delete_tables(names.values())


def test_a_send_marker_is_written_through_throttling_that_outlasts_botocores_retries(idempotency_table):
    # A marker lost after SES accepted a send makes the retry send that mail again.
    ledger = MessageLedger(idempotency_table, ttl_seconds=3600)
    assert ledger.claim("m-1") == Claim()
    calls = _fail(clients.client("dynamodb"), "UpdateItem", "ProvisionedThroughputExceededException", times=3)
    ledger.mark("m-1", "allow")
    assert calls[0] == 4
    ledger.abandon("m-1")
    assert ledger.claim("m-1") == Claim(frozenset({"allow"})), "the retry resumes after the marked send"


def test_a_send_marker_is_not_retried_on_a_permanent_error(idempotency_table):
    ledger = MessageLedger(idempotency_table, ttl_seconds=3600)
    calls = _fail(clients.client("dynamodb"), "UpdateItem", "ValidationException", times=1)
    with pytest.raises(LedgerError):
        ledger.mark("m-2", "allow")
    assert calls[0] == 1


def test_a_claimed_message_is_not_claimed_again_while_its_lease_runs(idempotency_table):
    """Exactly once under concurrent copies of a batch: the second invocation is told to retry later."""
    ledger = MessageLedger(idempotency_table, ttl_seconds=3600)
    assert ledger.claim("m-3") == Claim()
    with pytest.raises(MessageInProgress):
        ledger.claim("m-3")


def test_a_finished_message_answers_with_its_result_and_its_records_are_written_with_it(idempotency_table):
    ledger = MessageLedger(idempotency_table, ttl_seconds=3600)
    ledger.claim("m-4")
    record = {"id": {"S": "record-of-m-4"}, "note": {"S": "written in the same transaction"}}
    ledger.finish("m-4", {"status": "processed", "allowed": 1}, [(idempotency_table, record)], step="allow")
    assert ledger.claim("m-4") == Done({"status": "processed", "allowed": 1})
    stored = clients.client("dynamodb").get_item(TableName=idempotency_table, Key={"id": {"S": "record-of-m-4"}})["Item"]
    assert stored["note"]["S"] == "written in the same transaction"


# ---------------------------------------------------------------- inbound: a disposition or a deferred record, always


@pytest.fixture
def stack(monkeypatch, dynamodb_local, directory_table, decisions_table):
    yield from inbound_stack(monkeypatch, dynamodb_local, directory_table, decisions_table)


def _run(stack: InboundStack, name: str) -> tuple[dict[str, str], str]:
    event, raw = sample(name)
    message_id = event["Records"][0]["ses"]["mail"]["messageId"]
    stack.store(message_id, raw)
    return stack.invoke(event), message_id


def test_inbound_quarantine_that_cannot_be_written_is_deferred_not_an_error(stack):
    _fail(clients.client("s3"), "PutObject", "SlowDown", times=100, status=503)
    response, message_id = _run(stack, "spam")
    assert response["disposition"] != "CONTINUE"
    kinds = {record["kind"] for record in stack.recorded(message_id)}
    assert kinds == {"decision", "deferred"}
    assert stack.sent() == []


def test_inbound_message_is_deferred_when_the_idempotency_store_cannot_take_it(stack):
    _fail(clients.client("dynamodb"), "PutItem", "InternalServerError", times=100, status=500)
    response, message_id = _run(stack, "csp-customer-to-billing")
    assert response["disposition"] != "CONTINUE"
    assert [record["kind"] for record in stack.recorded(message_id)] == ["deferred"]
    assert stack.sent() == []  # without the idempotency record a second invocation could forward it again


def test_inbound_disposition_stands_when_only_the_idempotency_success_write_fails(stack):
    _fail(clients.client("dynamodb"), "UpdateItem", "ThrottlingException", times=100)
    response, message_id = _run(stack, "csp-customer-to-support")
    assert response == {"disposition": "CONTINUE"}
    assert [record["kind"] for record in stack.recorded(message_id)] == ["decision"]
