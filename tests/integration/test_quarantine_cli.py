"""`mailfilter quarantine` over what the gateway really quarantined: list, show, release, purge."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner

from mailfilter_cli.main import cli
from mailfilter_testkit.outbound_support import BUCKET, FILTER_FROM, Harness, LambdaContext, load_function, sample_event

BLOCKED = "marketing@tailspintoys.com"
MESSAGE_ID = "news-2025-01-azure-mixed"


@pytest.fixture
def quarantined(outbound: Harness) -> str:
    """The mixed sample message through the real gateway; returns its quarantine id."""
    load_function("outbound_gateway").lambda_handler(sample_event("outbound-mixed-allowed-rerouted-blocked.json"), LambdaContext())
    [item] = outbound.quarantine().list()
    return item.id


def mailfilter(*args: str) -> Any:
    if args[:1] == ("release",) and "--reason" not in args:
        args = (*args, "--reason", "customer confirmed by phone")  # a release always says why
    result = CliRunner().invoke(cli, ["quarantine", "--bucket", BUCKET, *args], catch_exceptions=False)
    return result


def test_list_filters_by_customer_and_since(outbound: Harness, quarantined: str) -> None:
    listed = mailfilter("list", "--json", "--customer", "7d1e9b20-tailspin", "--since", "1d")
    assert [json.loads(line)["id"] for line in listed.output.splitlines()] == [quarantined]
    assert mailfilter("list", "--json", "--customer", "0f6c2a4e-contoso").output == ""
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%d")
    assert mailfilter("list", "--json", "--since", tomorrow).output == ""


def test_show_prints_the_original_and_its_decisions(outbound: Harness, quarantined: str) -> None:
    shown = json.loads(mailfilter("show", quarantined).output)
    assert shown["message_id"] == MESSAGE_ID
    assert shown["request"]["subject"] == "Introducing new Azure features"
    assert {d["rule"] for d in shown["verdict"]["decisions"]} >= {"product-mail-for-csp-customer"}


def test_show_of_an_unknown_id_is_a_clear_error(outbound: Harness) -> None:
    result = mailfilter("show", "20250101-00000000000000000000")
    assert result.exit_code == 1
    assert "no quarantined message 20250101-00000000000000000000" in result.output


def test_release_as_allow_delivers_to_the_blocked_recipient_and_records_who(
    outbound: Harness, quarantined: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = len(outbound.sent())
    result = mailfilter("release", quarantined, "--to", "allow", "--by", "ops@vendor.example")

    assert result.exit_code == 0, result.output
    [delivered] = outbound.sent()[before:]
    assert delivered.envelope == [BLOCKED]
    assert delivered.header_recipients == {BLOCKED}
    assert delivered.sender == "news@vendor.example"
    [record] = [r for r in outbound.records(MESSAGE_ID) if r["kind"] == "released"]
    assert (record["recipient"], record["effective"]) == (BLOCKED, "allow")
    assert "ops@vendor.example" in record["reason"]
    item = outbound.quarantine().get(quarantined)
    assert (item.released.by, item.released.action) == ("ops@vendor.example", "allow")
    again = mailfilter("release", quarantined, "--by", "ops@vendor.example")
    assert again.exit_code == 1
    assert "already released by ops@vendor.example" in again.output


def test_release_records_the_reason_with_who_and_when(outbound: Harness, quarantined: str) -> None:
    result = mailfilter("release", quarantined, "--by", "ops@vendor.example", "--reason", "ticket 4711: the customer asked for it")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().endswith("(by ops@vendor.example: ticket 4711: the customer asked for it)")
    released = outbound.quarantine().get(quarantined).released
    assert (released.by, released.reason) == ("ops@vendor.example", "ticket 4711: the customer asked for it")
    assert released.at is not None
    assert json.loads(mailfilter("show", quarantined).output)["released"]["reason"] == "ticket 4711: the customer asked for it"
    item = outbound.quarantine().get(quarantined)
    [record] = [r for r in outbound.records(item.message_id) if r["kind"] == "released"]
    assert record["reason"].startswith("Released by ops@vendor.example at ")
    assert "as allow (ticket 4711: the customer asked for it)." in record["reason"]
    [row] = mailfilter("list", "--format", "csv").output.splitlines()[1:]
    assert row.endswith(f"allow by ops@vendor.example at {released.at:%Y-%m-%d %H:%M}: ticket 4711: the customer asked for it")


def test_release_without_a_reason_is_a_usage_error_and_releases_nothing(outbound: Harness, quarantined: str) -> None:
    missing = CliRunner().invoke(cli, ["quarantine", "--bucket", BUCKET, "release", quarantined, "--by", "ops"])
    assert missing.exit_code == 2
    assert "Missing option '--reason'" in missing.output
    blank = mailfilter("release", quarantined, "--reason", "  ")
    assert blank.exit_code == 2
    assert outbound.quarantine().get(quarantined).released is None


def test_release_as_json(outbound: Harness, quarantined: str) -> None:
    result = mailfilter("release", quarantined, "--to", "reroute", "--by", "ops", "--format", "json")
    assert result.exit_code == 0, result.output
    [done] = [json.loads(line) for line in result.stdout.splitlines()]
    assert (done["id"], done["released"]["action"], done["released"]["delivered_to"]) == (
        quarantined,
        "reroute",
        ["csp-desk@fabrikam.example"],
    )
    assert done["released"]["reason"] == "customer confirmed by phone"


def test_release_as_reroute_sends_the_partner_notice(outbound: Harness, quarantined: str) -> None:
    before = len(outbound.sent())
    assert mailfilter("release", quarantined, "--to", "reroute", "--by", "ops").exit_code == 0

    [notice] = outbound.sent()[before:]
    assert (notice.sender, notice.envelope) == (FILTER_FROM, ["csp-desk@fabrikam.example"])
    assert BLOCKED in notice.text()
    assert notice.attached_original()["Subject"] == "Introducing new Azure features"


def test_purge_deletes_items_from_before_the_cutoff_only(outbound: Harness, quarantined: str) -> None:
    assert mailfilter("purge", "--older-than", "1d", "--yes").output.strip() == "purged 0 item(s)"
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%d")
    assert mailfilter("purge", "--older-than", tomorrow, "--yes").output.strip() == "purged 1 item(s)"
    assert list(outbound.quarantine().list()) == []
    assert mailfilter("list", "--json", "--customer", "7d1e9b20-tailspin").output == ""


def test_bad_age_is_a_clear_error(outbound: Harness) -> None:
    result = CliRunner().invoke(cli, ["quarantine", "--bucket", BUCKET, "list", "--since", "last tuesday"])
    assert result.exit_code == 2
    assert "expected an age such as 7d" in result.output
