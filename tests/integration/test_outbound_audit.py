"""The outbound audit end to end: SES "Email Sent" events in, violations recorded for mail that bypassed the gateway.

Whether mail is the filter's own is read only from SES's `ses:caller-identity` auto-tag, compared
with the roles template.yaml names in FILTER_CALLER_IDENTITIES (resolved as `sam local` resolves
them, which is also what the sample events carry); nothing the sender writes counts.
"""

from __future__ import annotations

import base64
import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from mailfilter.events.ses_sent import parse_email_sent_event, sent_message
from mailfilter.settings import AuditSettings
from mailfilter.vocabulary.errors import EventError
from mailfilter_cli.sam_template import function_spec
from mailfilter_testkit.outbound_support import Harness, LambdaContext, load_function, sample_event

FILTER_CALLER_IDENTITIES = function_spec("OutboundAuditFunction").environment["FILTER_CALLER_IDENTITIES"]
GATEWAY_ROLE, INBOUND_FILTER_ROLE = FILTER_CALLER_IDENTITIES.split(",")[:2]  # then the digests function's role
PLAIN_SUBJECT = "Your Azure subscription invoice"
ENCODED_SUBJECT = "=?utf-8?b?" + base64.b64encode(PLAIN_SUBJECT.encode()).decode() + "?="


@pytest.fixture
def audit(outbound: Harness, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("FILTER_CALLER_IDENTITIES", FILTER_CALLER_IDENTITIES)
    return load_function("outbound_audit")


@pytest.fixture
def log(audit: Any) -> Iterator[io.StringIO]:
    """The audit's JSON log lines, as powertools formats them."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(audit.logger.registered_formatter)
    audit.logger.addHandler(handler)
    yield buffer
    audit.logger.removeHandler(handler)


def warnings(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(x) for x in buffer.getvalue().splitlines() if "policy violation" in x]


def run(audit: Any, event: dict[str, Any]) -> dict[str, Any]:
    return audit.lambda_handler(event, LambdaContext(function_name="outbound-audit"))


def bypass(*, caller: str = "marketing-app", **tags: list[str]) -> dict[str, Any]:
    """The bypass sample event, sent by `caller` as SES names it, with extra message tags."""
    event = sample_event("email-sent-bypass.json")
    event["detail"]["mail"]["tags"]["ses:caller-identity"] = [caller]
    event["detail"]["mail"]["tags"].update(tags)
    return event


def set_headers(event: dict[str, Any], **headers: str) -> None:
    """Replace or add headers (underscores for dashes), keeping SES's commonHeaders in step."""
    mail = event["detail"]["mail"]
    for key, value in headers.items():
        name = key.replace("_", "-")
        mail["headers"] = [h for h in mail["headers"] if h["name"].lower() != name.lower()] + [{"name": name, "value": value}]
        if name.lower() == "subject":
            mail["commonHeaders"]["subject"] = value
        if name.lower() == "from":
            mail["commonHeaders"]["from"] = [value]
            mail["source"] = value


def drop_headers(event: dict[str, Any], *names: str) -> None:
    mail = event["detail"]["mail"]
    mail["headers"] = [h for h in mail["headers"] if h["name"].lower() not in {n.lower() for n in names}]


def by_recipient(records: list[dict[str, Any]]) -> dict[str, tuple[str, str, str, str, str]]:
    return {r["recipient"]: (r["kind"], r["action"], r["rule"], r["category"], r["cloud"]) for r in records}


# ---------------------------------------------------------------- what is audited


def test_mail_that_bypassed_the_gateway_is_recorded_as_a_violation_naming_the_rule(outbound: Harness, audit: Any, log: io.StringIO) -> None:
    event = sample_event("email-sent-bypass.json")

    result = run(audit, event)

    assert result["violations"] == 1
    [record] = outbound.records(event["detail"]["mail"]["messageId"])
    assert (record["kind"], record["recipient"], record["rule"]) == (
        "violation",
        "marketing@tailspintoys.com",
        "product-mail-for-csp-customer",
    )
    [line] = warnings(log)
    assert line["rule"] == "product-mail-for-csp-customer"
    assert line["recipient"] == "m***@tailspintoys.com"


def test_violations_are_counted_by_category_and_cloud(outbound: Harness, audit: Any, capsys: pytest.CaptureFixture[str]) -> None:
    run(audit, sample_event("email-sent-bypass.json"))

    metrics = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"PolicyViolations"' in line]
    assert [(m["category"], m["cloud"], m["PolicyViolations"]) for m in metrics] == [("product", "commercial", [1.0])]


def test_bypass_that_the_rules_allow_records_nothing(outbound: Harness, audit: Any) -> None:
    event = sample_event("email-sent-bypass.json")
    event["detail"]["mail"]["destination"] = ["cto@woodgrovebank.com"]

    result = run(audit, event)

    assert result["violations"] == 0
    assert outbound.records(event["detail"]["mail"]["messageId"]) == []


# ---------------------------------------------------------------- "passed the gateway" comes from SES only


def test_mail_ses_says_the_gateway_role_sent_is_not_audited(outbound: Harness, audit: Any) -> None:
    event = sample_event("email-sent-through-gateway.json")
    assert event["detail"]["mail"]["tags"]["ses:caller-identity"] == [GATEWAY_ROLE]

    result = run(audit, event)

    assert result["status"] == "passed-gateway"
    assert outbound.records(event["detail"]["mail"]["messageId"]) == []


def test_the_gateway_role_passes_even_without_the_gateway_tag(outbound: Harness, audit: Any) -> None:
    event = sample_event("email-sent-through-gateway.json")
    del event["detail"]["mail"]["tags"]["csp-mail-filter"]

    assert run(audit, event)["status"] == "passed-gateway"


def test_the_inbound_filters_forwards_are_the_filters_own_sends(outbound: Harness, audit: Any) -> None:
    event = bypass(caller=INBOUND_FILTER_ROLE)

    result = run(audit, event)

    assert result["status"] == "passed-gateway"
    assert outbound.records(event["detail"]["mail"]["messageId"]) == []


def test_a_forged_gateway_tag_does_not_exempt_mail_from_the_audit(outbound: Harness, audit: Any) -> None:
    event = bypass(**{"csp-mail-filter": ["gateway"]})

    result = run(audit, event)

    assert (result["status"], result["violations"]) == ("audited", 1)
    [record] = outbound.records(event["detail"]["mail"]["messageId"])
    assert (record["kind"], record["recipient"], record["rule"]) == (
        "violation",
        "marketing@tailspintoys.com",
        "product-mail-for-csp-customer",
    )


def test_a_gateway_header_written_by_the_sender_does_not_exempt_mail_from_the_audit(outbound: Harness, audit: Any) -> None:
    event = bypass()
    set_headers(event, X_SES_MESSAGE_TAGS="csp-mail-filter=gateway", X_SES_CALLER_IDENTITY=GATEWAY_ROLE)

    assert run(audit, event)["violations"] == 1


@pytest.mark.parametrize(
    "identities",
    [
        [f"{GATEWAY_ROLE}-copy"],  # a look-alike name is another role
        [GATEWAY_ROLE.lower()],
        [f"arn:aws:iam::123456789012:role/{GATEWAY_ROLE}-copy"],
        ["marketing-app", GATEWAY_ROLE],  # SES names one caller; two values are no one's
        [""],
        [],
    ],
    ids=["look-alike", "other-case", "other-arn", "two-values", "empty", "no-value"],
)
def test_only_a_caller_identity_naming_exactly_a_filter_role_passes(outbound: Harness, audit: Any, identities: list[str]) -> None:
    event = bypass()
    event["detail"]["mail"]["tags"]["ses:caller-identity"] = identities

    assert run(audit, event)["violations"] == 1


def test_without_the_caller_identity_tag_mail_is_audited(outbound: Harness, audit: Any) -> None:
    event = sample_event("email-sent-through-gateway.json")
    del event["detail"]["mail"]["tags"]["ses:caller-identity"]

    assert run(audit, event)["violations"] == 1


def test_without_configured_filter_identities_every_message_is_audited(outbound: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FILTER_CALLER_IDENTITIES", raising=False)
    audit = load_function("outbound_audit")

    result = run(audit, sample_event("email-sent-through-gateway.json"))

    assert (result["status"], result["violations"]) == ("audited", 1)


def test_filter_caller_identities_are_read_as_a_comma_separated_list(outbound: Harness, audit: Any) -> None:
    settings = AuditSettings.from_env({"DIRECTORY_TABLE": "d", "DECISIONS_TABLE": "t", "FILTER_CALLER_IDENTITIES": " a-role , b-role,,"})
    assert settings.filter_caller_identities == ("a-role", "b-role")
    assert AuditSettings.from_env({"DIRECTORY_TABLE": "d", "DECISIONS_TABLE": "t"}).filter_caller_identities == ()


# ---------------------------------------------------------------- classified from the sender map and the subject only


def test_declaration_headers_on_bypass_mail_change_nothing(outbound: Harness, audit: Any) -> None:
    plain = bypass()
    drop_headers(plain, "X-Communication-Category", "X-Product", "X-Cloud-Instance")
    plain["detail"]["mail"]["messageId"] = "bypass-without-declarations"
    declared = bypass()
    # Each would let the mail through if believed: operational mail may reach any customer, and
    # in the usgov directory Tailspin Toys is no customer at all.
    set_headers(declared, X_Communication_Category="operational", X_Product="dynamics-365", X_Cloud_Instance="usgov")
    declared["detail"]["mail"]["messageId"] = "bypass-with-declarations"

    results = [run(audit, plain), run(audit, declared)]

    assert [r["violations"] for r in results] == [1, 1]
    expected = {"marketing@tailspintoys.com": ("violation", "block", "product-mail-for-csp-customer", "product", "commercial")}
    assert by_recipient(outbound.records("bypass-without-declarations")) == expected
    assert by_recipient(outbound.records("bypass-with-declarations")) == expected
    [record] = outbound.records("bypass-with-declarations")
    assert record["product"] == "azure"  # from the subject, not X-Product


@pytest.mark.parametrize("subject", [PLAIN_SUBJECT, ENCODED_SUBJECT], ids=["plain", "encoded-word"])
def test_an_encoded_word_subject_is_read_like_the_plain_subject(outbound: Harness, audit: Any, subject: str) -> None:
    event = bypass()
    drop_headers(event, "X-Communication-Category", "X-Product")
    set_headers(event, From="noreply@vendor.example", Subject=subject)  # a sender the policy's sender map does not know
    event["detail"]["mail"]["destination"] = ["marketing@tailspintoys.com"]

    result = run(audit, event)

    assert result["violations"] == 1
    [record] = outbound.records(event["detail"]["mail"]["messageId"])
    assert (record["recipient"], record["action"], record["rule"], record["category"], record["product"]) == (
        "marketing@tailspintoys.com",
        "reroute",
        "subscription-owned-by-partner",
        "subscription",
        "azure",
    )


# ---------------------------------------------------------------- every destination is recorded


def test_every_destination_is_recorded_the_unreadable_one_as_a_violation_with_its_reason(outbound: Harness, audit: Any) -> None:
    event = bypass()
    event["detail"]["mail"]["destination"] = [
        "Tailspin Marketing <marketing@tailspintoys.com>",  # a display name: read, and decided as usual
        '"john doe"@example.org',  # a quoted local part the filter cannot use as an address
        "cto@woodgrovebank.com",  # allowed: not recorded
    ]

    result = run(audit, event)

    assert result["violations"] == 2
    records = {r["recipient"]: r for r in outbound.records(event["detail"]["mail"]["messageId"])}
    assert set(records) == {"marketing@tailspintoys.com", '"john doe"@example.org'}
    assert records["marketing@tailspintoys.com"]["rule"] == "product-mail-for-csp-customer"
    unreadable = records['"john doe"@example.org']
    assert (unreadable["kind"], unreadable["action"], unreadable["rule"]) == ("violation", "block", "unreadable-destination")
    assert "invalid local part" in unreadable["reason"]
    assert (unreadable["category"], unreadable["cloud"]) == ("product", "commercial")


@pytest.mark.parametrize(
    ("destination", "recorded"),
    [
        ("garbage", "garbage"),
        ("<>", "<>"),
        ("a@x.example, b@y.example", "a@x.example, b@y.example"),  # one destination naming two addresses
        ("cfo@contoso.com <attacker@evil.example>", "cfo@contoso.com <attacker@evil.example>"),
        ('"{customer} {0}"@example.org', '"{customer} {0}"@example.org'),  # quoted in the reason: braces reach its template
        ("a@b.example\r\nBcc: c@d.example", "a@b.example??Bcc: c@d.example"),
        ("\u202ex@example.org", "?x@example.org"),
        ("x" * 1000 + "@example.org", "x" * 254),
        ("", "(empty)"),
    ],
    ids=["garbage", "null", "two-addresses", "repaired", "braces", "crlf", "bidi", "long", "empty"],
)
def test_an_unreadable_destination_is_recorded_as_given_trimmed_and_printable(
    outbound: Harness, audit: Any, destination: str, recorded: str
) -> None:
    event = bypass()
    event["detail"]["mail"]["destination"] = [destination, destination, "marketing@tailspintoys.com"]

    result = run(audit, event)

    assert result["violations"] == 2  # the repeated destination once, and the readable one
    records = {r["recipient"]: r for r in outbound.records(event["detail"]["mail"]["messageId"])}
    assert (records[recorded]["kind"], records[recorded]["action"], records[recorded]["rule"]) == (
        "violation",
        "block",
        "unreadable-destination",
    )
    assert records[recorded]["reason"].startswith("SES sent this message to a destination that is not one clean address (")
    if "{" in destination:
        assert "{customer} {0}" in records[recorded]["reason"]
    assert records["marketing@tailspintoys.com"]["rule"] == "product-mail-for-csp-customer"


def test_mail_whose_every_destination_is_unreadable_is_still_recorded(outbound: Harness, audit: Any) -> None:
    event = bypass()
    event["detail"]["mail"]["destination"] = ['"john doe"@example.org']

    assert run(audit, event)["violations"] == 1
    [record] = outbound.records(event["detail"]["mail"]["messageId"])
    assert (record["recipient"], record["rule"]) == ('"john doe"@example.org', "unreadable-destination")


def test_an_unreadable_destination_is_logged_masked(outbound: Harness, audit: Any, log: io.StringIO) -> None:
    event = bypass()
    event["detail"]["mail"]["destination"] = ['"john doe"@example.org']

    run(audit, event)

    [line] = warnings(log)
    assert line["rule"] == "unreadable-destination"
    assert line["recipient"] == '"***@example.org'
    assert "john doe" not in log.getvalue()
    assert "invalid local part" in line["reason"]


def test_explain_still_refuses_an_event_with_an_unreadable_destination() -> None:
    event = bypass()
    event["detail"]["mail"]["destination"] = ['"john doe"@example.org']

    with pytest.raises(EventError, match="unusable destination"):
        sent_message(parse_email_sent_event(event))
