"""`mailfilter quarantine release` of inbound mail, end to end: the real handler quarantines, the command releases.

DynamoDB Local for the directory and decisions tables, moto for S3 and SES; the
command builds the inbound filter from the same environment as the function.
"""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner, Result

from mailfilter.aws.quarantine import Quarantine
from mailfilter.settings import InboundSettings
from mailfilter.vocabulary.holds import QuarantineItem
from mailfilter_cli.main import cli
from mailfilter_testkit.inbound_stack import BUCKET, FILTER_FROM, InboundStack, inbound_stack, sample

PARTNER = "csp-desk@fabrikam.example"


@pytest.fixture
def stack(monkeypatch, dynamodb_local, directory_table, decisions_table):
    yield from inbound_stack(monkeypatch, dynamodb_local, directory_table, decisions_table)


def mailfilter(*args: str) -> Result:
    if args[:1] == ("release",) and "--reason" not in args:
        args = (*args, "--reason", "customer confirmed by phone")  # a release always says why
    return CliRunner().invoke(cli, ["quarantine", "--bucket", BUCKET, *args], catch_exceptions=False)


def message_id(event: dict[str, Any]) -> str:
    return event["Records"][0]["ses"]["mail"]["messageId"]


def only_item() -> QuarantineItem:
    (item,) = Quarantine(BUCKET).list()
    return item


def released_records(stack: InboundStack, event: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in stack.recorded(message_id(event)) if r["kind"] == "released"]


def defer_with_directory_down(stack: InboundStack, monkeypatch: pytest.MonkeyPatch, name: str) -> dict[str, Any]:
    """The sample arrives while the directory cannot be read; afterwards the directory is back."""
    event, raw = sample(name)
    stack.store(message_id(event), raw)
    working = InboundSettings.from_env().directory_table
    monkeypatch.setenv("DIRECTORY_TABLE", "no-such-table")
    stack.handler.build.cache_clear()
    assert stack.invoke(event) == {"disposition": "STOP_RULE"}
    monkeypatch.setenv("DIRECTORY_TABLE", working)
    stack.handler.build.cache_clear()
    return event


def test_deferred_message_is_released_once_stored_and_forwarded_to_the_partner_with_a_record(stack):
    event, raw = sample("csp-customer-to-billing")  # the S3 object is missing at first
    assert stack.invoke(event) == {"disposition": "STOP_RULE"}
    item = only_item()
    assert item.request["kind"] == "deferred"

    still_missing = mailfilter("release", item.id, "--by", "ops@vendor.example")
    assert still_missing.exit_code == 1
    assert "the stored message cannot be read, nothing was released" in still_missing.output
    assert stack.sent() == []
    assert only_item().released is None

    stack.store(message_id(event), raw)
    result = mailfilter("release", item.id, "--by", "ops@vendor.example")

    assert result.exit_code == 0, result.output
    assert f"billing@vendor.example: reroute (subscription-owned-by-partner) to {PARTNER}" in result.output
    ((envelope, sent, _),) = stack.sent()
    assert envelope == [PARTNER]
    assert sent["Reply-To"] == "cfo@tailspintoys.com"
    (record,) = released_records(stack, event)
    assert (record["recipient"], record["effective"], record["deliver_to"]) == ("billing@vendor.example", "reroute", [PARTNER])
    assert "Released by ops@vendor.example" in record["reason"]
    released = Quarantine(BUCKET).get(item.id).released
    assert (released.by, released.action, released.delivered_to) == ("ops@vendor.example", "redrive", [PARTNER])


def test_deferred_message_now_allowed_is_forwarded_to_the_desk_from_the_filter_identity(stack, monkeypatch):
    event = defer_with_directory_down(stack, monkeypatch, "csp-customer-to-support")
    item = only_item()
    assert item.request["kind"] == "deferred"

    result = mailfilter("release", item.id, "--by", "ops")

    # The receipt rule finished long ago: the desk gets the message forwarded, not delivered by SES.
    assert result.exit_code == 0, result.output
    assert "CONTINUE" in result.output
    assert "support@vendor.example: allow (operational-information-direct), forwarded to the desk" in result.output
    ((envelope, sent, _),) = stack.sent()
    assert envelope == ["support@vendor.example"]
    assert FILTER_FROM in sent["From"]
    assert sent["Reply-To"] == "admin@tailspintoys.com"
    assert sent["X-Original-To"] == "support@vendor.example"
    (record,) = released_records(stack, event)
    assert (record["effective"], record["deliver_to"]) == ("allow", ["support@vendor.example"])


def test_deferred_message_blocked_on_redrive_is_kept_as_a_new_item_and_the_released_one_stays_closed(stack, monkeypatch):
    event = defer_with_directory_down(stack, monkeypatch, "spam")
    deferred = only_item()

    result = mailfilter("release", deferred.id, "--by", "ops")

    assert result.exit_code == 0, result.output
    assert stack.sent() == []
    store = Quarantine(BUCKET)
    (blocked,) = [item for item in store.list() if item.id != deferred.id]
    assert blocked.request["kind"] == "blocked"
    assert f"billing@vendor.example: block (spam-detected), kept in quarantine as {blocked.id}" in result.output
    assert store.get(deferred.id).released.action == "redrive"
    assert blocked.released is None
    assert mailfilter("release", deferred.id).exit_code == 1  # closed: the new item is the one to release
    (record,) = released_records(stack, event)
    assert blocked.id in record["reason"]


def test_deferred_message_is_redriven_not_released_as_a_chosen_action(stack):
    event, _ = sample("csp-customer-to-billing")
    stack.invoke(event)
    result = mailfilter("release", only_item().id, "--to", "allow")
    assert result.exit_code == 1
    assert "leave out --to" in result.output
    assert stack.sent() == []


def test_blocked_spam_released_as_allow_reaches_the_desk_once(stack):
    event, raw = sample("spam")
    stack.store(message_id(event), raw)
    assert stack.invoke(event) == {"disposition": "STOP_RULE"}
    item = only_item()
    assert item.request["kind"] == "blocked"

    result = mailfilter("release", item.id, "--to", "allow", "--by", "ops@vendor.example")

    assert result.exit_code == 0, result.output
    assert result.output.strip() == (
        f"released {item.id} as allow to billing@vendor.example (by ops@vendor.example: customer confirmed by phone)"
    )
    ((envelope, sent, sent_raw),) = stack.sent()
    assert envelope == ["billing@vendor.example"]
    assert FILTER_FROM in sent["From"]
    assert sent["Reply-To"] == "deals@tailspintoys.com"
    assert sent["X-Mailfilter-Rule"] == "spam-detected"
    assert "Released by ops@vendor.example" in sent["X-Mailfilter-Reason"]
    assert raw.split(b"\r\n\r\n", 1)[1] in sent_raw  # the preserved body, byte for byte
    (record,) = released_records(stack, event)
    assert (record["effective"], record["deliver_to"], record["rule"]) == ("allow", ["billing@vendor.example"], "spam-detected")

    again = mailfilter("release", item.id, "--to", "allow")
    assert again.exit_code == 1
    assert "already released by ops@vendor.example" in again.output
    assert len(stack.sent()) == 1


def test_blocked_mail_without_known_partner_contacts_cannot_be_rerouted(stack):
    event, raw = sample("spam")  # security blocks are never rerouted, so no partner contact is stored
    stack.store(message_id(event), raw)
    stack.invoke(event)
    item = only_item()

    result = mailfilter("release", item.id, "--to", "reroute")

    assert result.exit_code == 1
    assert "no partner contact is known for billing@vendor.example; release it with --to allow instead" in result.output
    assert stack.sent() == []
    assert only_item().released is None
    assert released_records(stack, event) == []
