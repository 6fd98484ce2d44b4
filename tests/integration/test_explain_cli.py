"""`mailfilter explain` prints the functions' decisions for every accepted event, with no side effects."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from mailfilter_cli.main import cli
from mailfilter_testkit.paths import EVENTS
from mailfilter_testkit.sample_events import receipt_event

DIRECTORY = str(EVENTS / "directory.jsonl")
REQUEST = {
    "message_id": "req-1",
    "from": "billing@vendor.example",
    "to": ["it@contoso.com"],
    "cc": ["ops@woodgrovebank.com"],
    "subject": "Your invoice",
    "text": "Hello",
    "product": "azure",
}


def ses_receipt_event(sender: str, *desks: str) -> dict:
    verdicts = dict.fromkeys(("spam", "virus", "spf", "dkim", "dmarc"), "PASS")
    return receipt_event("ses-msg-1", sender, list(desks), "Question about my invoice", verdicts)


def email_sent_event(sender: str, *destinations: str, tags: dict | None = None) -> dict:
    return {
        "version": "0",
        "source": "aws.ses",
        "detail-type": "Email Sent",
        "detail": {
            "eventType": "Send",
            "mail": {
                "messageId": "sent-1",
                "source": sender,
                "destination": list(destinations),
                "headers": [{"name": "X-Communication-Category", "value": "subscription"}],
                "commonHeaders": {"from": [sender], "subject": "Renewal"},
                "tags": tags or {},
            },
            "send": {},
        },
    }


def run(tmp_path, event, *options: str):
    path = tmp_path / "event.json"
    path.write_text(json.dumps(event), encoding="utf-8")
    return CliRunner().invoke(cli, ["explain", str(path), "--directory", DIRECTORY, *options])


def lines(result) -> list[dict]:
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.output.splitlines()]


def test_send_request_prints_one_json_object_with_a_decision_per_recipient(tmp_path):
    (verdict,) = lines(run(tmp_path, REQUEST))
    assert verdict["message_id"] == "req-1"
    assert (verdict["direction"], verdict["cloud"], verdict["category"], verdict["category_source"]) == (
        "outbound",
        "commercial",
        "subscription",
        "sender-map",
    )
    contoso, woodgrove = verdict["decisions"]
    assert contoso["action"] == "reroute"
    assert contoso["deliver_to"] == ["csp-desk@fabrikam.example"]
    assert contoso["rule"] == "subscription-owned-by-partner"
    assert woodgrove["action"] == "allow"
    assert woodgrove["deliver_to"] == ["ops@woodgrovebank.com"]


def test_sqs_event_prints_one_line_per_send_request(tmp_path):
    event = {
        "Records": [
            {"eventSource": "aws:sqs", "messageId": str(i), "body": json.dumps({**REQUEST, "message_id": f"m{i}"})} for i in range(2)
        ]
    }
    assert [v["message_id"] for v in lines(run(tmp_path, event))] == ["m0", "m1"]


def test_ses_receipt_event_is_decided_inbound_per_vendor_desk(tmp_path):
    (verdict,) = lines(run(tmp_path, ses_receipt_event("cfo@tailspintoys.com", "billing@vendor.example", "support@vendor.example")))
    assert verdict["direction"] == "inbound"
    assert [(d["recipient"], d["action"]) for d in verdict["decisions"]] == [
        ("billing@vendor.example", "reroute"),
        ("support@vendor.example", "allow"),
    ]


def test_email_sent_event_is_decided_as_outbound_mail_from_its_sender_and_subject_only(tmp_path):
    (verdict,) = lines(run(tmp_path, email_sent_event("billing@vendor.example", "cfo@tailspintoys.com")))
    assert verdict["category_source"] == "sender-map"
    assert all(e["source"] != "header" for e in verdict["evidence"])
    assert verdict["decisions"][0]["action"] == "reroute"


def test_table_format_names_the_rule_and_where_mail_goes(tmp_path):
    result = run(tmp_path, REQUEST, "--format", "table")
    assert result.exit_code == 0, result.output
    assert "subscription-owned-by-partner (rule 2)" in result.output
    assert "csp-desk@fabrikam.example" in result.output


@pytest.mark.parametrize(
    ("event", "fragment"),
    [
        ({"hello": "world"}, "unrecognised event: expected an SES receipt-rule event"),
        ({**REQUEST, "to": [], "cc": []}, "the request has no recipient"),
        ({**REQUEST, "to": ["not-an-address"]}, "to.0"),
        ({"Records": [{"eventSource": "aws:ses"}]}, "not a valid SES receipt event"),
        ({"Records": [{"eventSource": "aws:sqs", "body": "{nope"}]}, "body is not JSON"),
    ],
)
def test_an_event_of_no_known_shape_gets_a_clear_error(tmp_path, event, fragment):
    result = run(tmp_path, event)
    assert result.exit_code == 1
    assert fragment in result.output


def test_a_bad_directory_file_is_reported_with_its_line(tmp_path):
    bad = tmp_path / "directory.jsonl"
    bad.write_text('{"kind": "customer"}\n', encoding="utf-8")
    path = tmp_path / "event.json"
    path.write_text(json.dumps(REQUEST), encoding="utf-8")
    result = CliRunner().invoke(cli, ["explain", str(path), "--directory", str(bad)])
    assert result.exit_code == 1
    assert f"{bad}:1: cloud: Field required" in result.output


# ---------------------------------------------------------------- explain is the gateway: same validation, one-line errors


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"from": "billing@vendor.example.attacker.example"}, "is not a vendor identity"),
        ({"headers": {"Sender": "cfo@tailspintoys.com"}}, "composed by the gateway"),
        ({"raw": "RnJvbTogY2VvQGNvbnRvc28uY29tDQpTdWJqZWN0OiBoaQ0KDQp4DQo=", "text": None}, "is not a vendor identity"),
    ],
    ids=["lookalike-vendor-from", "reserved-header", "raw-from-a-customer"],
)
def test_explain_refuses_what_the_gateway_refuses_with_the_same_words(tmp_path, fields, expected):
    request = {k: v for k, v in (REQUEST | fields).items() if v is not None}
    result = run(tmp_path, request)
    assert result.exit_code == 1
    assert expected in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    "text",
    ["[" * 100_000 + "]" * 100_000, '{"from": "billing@vendor.example", "n": ' + "9" * 5000 + "}", "{not json"],
    ids=["nested-too-deep", "number-too-long", "not-json"],
)
def test_explain_answers_unreadable_input_with_one_line(tmp_path, text):
    path = tmp_path / "event.json"
    path.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(cli, ["explain", str(path), "--directory", DIRECTORY])
    assert result.exit_code == 1
    assert result.output.startswith("Error: ")
    assert result.output.count("\n") == 1, result.output
    assert "cannot read the event" in result.output
