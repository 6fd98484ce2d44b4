"""The outbound gateway end to end: SQS event in; what SES sent, what S3 quarantined, what DynamoDB recorded."""

from __future__ import annotations

import io
import json
import logging
import uuid
from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from mailfilter.vocabulary.ses import GATEWAY_TAG, GATEWAY_TAG_VALUE
from mailfilter_testkit.outbound_support import (
    CONFIGURATION_SET,
    FILTER_FROM,
    Harness,
    LambdaContext,
    load_function,
    sample_event,
    sqs_event,
)

FABRIKAM = ["csp-desk@fabrikam.example"]


@pytest.fixture
def gateway(outbound: Harness) -> Any:
    return load_function("outbound_gateway")


def run(gateway: Any, event: dict[str, Any]) -> dict[str, Any]:
    return gateway.lambda_handler(event, LambdaContext())


def request(recipient: str, category: str, product: str | None = None, **extra: Any) -> dict[str, Any]:
    body = {
        "message_id": f"test-{uuid.uuid4().hex[:12]}",
        "from": "notices@vendor.example",
        "to": [recipient],
        "subject": f"A {category} message",
        "text": "Hello.\n",
        "category": category,
        **extra,
    }
    if product:
        body["product"] = product
    return body


def decision_records(outbound: Harness, message_id: str) -> dict[str, dict[str, Any]]:
    return {r["recipient"]: r for r in outbound.records(message_id) if r["kind"] == "decision"}


# One row per cell of the decision table (segment x category, and the product conditions), as the
# sample directory realises it: Tailspin is csp-only (Fabrikam owns everything), Contoso is
# csp-and-direct (Fabrikam owns azure and microsoft-365, dynamics-365 is bought directly),
# Woodgrove has no partner, and example.org is not a customer.
CELLS = [
    ("unknown-subscription", "someone@example.org", "subscription", None, "allow", "not-in-directory"),
    ("unknown-service-incident", "someone@example.org", "service-incident", None, "allow", "not-in-directory"),
    ("unknown-operational", "someone@example.org", "operational", None, "allow", "not-in-directory"),
    ("unknown-product", "someone@example.org", "product", "azure", "allow", "not-in-directory"),
    ("unknown-general", "someone@example.org", "general", None, "allow", "not-in-directory"),
    ("no-csp-subscription", "cto@woodgrovebank.com", "subscription", "azure", "allow", "no-csp-partner"),
    ("no-csp-service-incident", "cto@woodgrovebank.com", "service-incident", None, "allow", "no-csp-partner"),
    ("no-csp-operational", "cto@woodgrovebank.com", "operational", None, "allow", "no-csp-partner"),
    ("no-csp-product", "cto@woodgrovebank.com", "product", "azure", "allow", "no-csp-partner"),
    ("no-csp-general", "cto@woodgrovebank.com", "general", None, "allow", "no-csp-partner"),
    ("r2-csp-only-subscription", "it@tailspintoys.com", "subscription", "azure", "reroute", "subscription-owned-by-partner"),
    ("r3-csp-only-service-incident", "it@tailspintoys.com", "service-incident", None, "allow", "operational-information-direct"),
    ("r3-csp-only-operational", "it@tailspintoys.com", "operational", None, "allow", "operational-information-direct"),
    ("r1-csp-only-product", "it@tailspintoys.com", "product", "azure", "block", "product-mail-for-csp-customer"),
    ("r1-csp-only-general", "it@tailspintoys.com", "general", None, "reroute", "general-mail-via-partner"),
    ("r4-direct-subscription-bought-directly", "it@contoso.com", "subscription", "dynamics-365", "allow", "subscription-bought-directly"),
    ("r2-direct-subscription-held-through-csp", "it@contoso.com", "subscription", "azure", "reroute", "subscription-owned-by-partner"),
    ("r3-csp-and-direct-service-incident", "it@contoso.com", "service-incident", None, "allow", "operational-information-direct"),
    ("r3-csp-and-direct-operational", "it@contoso.com", "operational", None, "allow", "operational-information-direct"),
    ("r1-csp-and-direct-product-held-through-csp", "it@contoso.com", "product", "azure", "reroute", "product-held-through-csp"),
    ("r4-direct-product-not-held-through-csp", "it@contoso.com", "product", "dynamics-365", "allow", "product-not-held-through-csp"),
    ("r4-csp-and-direct-general", "it@contoso.com", "general", None, "allow", "general-mail-for-direct-customer"),
    ("partner-without-contact-is-kept", "info@xn--bckerei-mnchen-5hb60b.example", "subscription", None, "block", "partner-without-contact"),
]  # fmt: skip


@pytest.mark.parametrize(("recipient", "category", "product", "action", "rule"), [c[1:] for c in CELLS], ids=[c[0] for c in CELLS])
def test_each_cell_of_the_decision_table_is_acted_on(
    outbound: Harness, gateway: Any, recipient: str, category: str, product: str | None, action: str, rule: str
) -> None:
    body = request(recipient, category, product)
    response = run(gateway, sqs_event(body))

    assert response == {"batchItemFailures": []}
    recorded = decision_records(outbound, body["message_id"])[recipient]
    assert (recorded["action"], recorded["rule"]) == (action, rule)
    sent = outbound.sent()
    quarantined = list(outbound.quarantine().list())
    if action == "allow":
        assert [(s.sender, s.envelope) for s in sent] == [("notices@vendor.example", [recipient])]
        assert sent[0].tags[GATEWAY_TAG] == GATEWAY_TAG_VALUE
        assert sent[0].configuration_set == CONFIGURATION_SET
        assert sent[0].message["To"] == recipient
        assert quarantined == []
    elif action == "reroute":
        assert len(sent) == 1
        assert sent[0].sender == FILTER_FROM
        assert sent[0].envelope == list(recorded["deliver_to"])
        assert recipient not in sent[0].envelope
        assert sent[0].attached_original()["Subject"] == body["subject"]
        assert quarantined == []
    else:
        assert sent == []
        assert [(q.message_id, q.recipients) for q in quarantined] == [(body["message_id"], [recipient])]
        assert quarantined[0].verdict["decisions"][0]["rule"] == rule


def test_reroute_notice_tells_the_partner_who_what_and_why(outbound: Harness, gateway: Any) -> None:
    run(gateway, sample_event("outbound-subscription-to-csp-customer.json"))

    [notice] = outbound.sent()
    assert notice.envelope == FABRIKAM
    assert notice.message["From"] == FILTER_FROM
    assert notice.message["Reply-To"] == "billing@vendor.example"
    assert "Tailspin Toys" in notice.message["Subject"]
    text = notice.text()
    for expected in ("Tailspin Toys", "7d1e9b20-tailspin", "it@tailspintoys.com", "subscription", "azure", "subscription-owned-by-partner"):
        assert expected in text
    original = notice.attached_original()
    assert original["To"] == "it@tailspintoys.com"
    assert original["Reply-To"] == "billing-replies@vendor.example"
    assert "renews on 1 February" in original.get_body(preferencelist=("plain",)).get_content()


def test_mixed_message_allows_reroutes_and_blocks_each_recipient_once(outbound: Harness, gateway: Any) -> None:
    response = run(gateway, sample_event("outbound-mixed-allowed-rerouted-blocked.json"))

    assert response == {"batchItemFailures": []}
    allowed, rerouted = outbound.sent()
    assert allowed.envelope == ["cto@woodgrovebank.com"]
    assert allowed.header_recipients == {"cto@woodgrovebank.com"}, "To/Cc name only the allowed recipients"
    assert rerouted.envelope == FABRIKAM
    assert "it@contoso.com" in rerouted.text()
    [item] = outbound.quarantine().list()
    assert item.recipients == ["marketing@tailspintoys.com"]
    assert item.customers == ["7d1e9b20-tailspin"]
    assert item.partner_contacts == {"marketing@tailspintoys.com": FABRIKAM}
    records = decision_records(outbound, "news-2025-01-azure-mixed")
    assert {r: v["action"] for r, v in records.items()} == {
        "cto@woodgrovebank.com": "allow",
        "it@contoso.com": "reroute",
        "marketing@tailspintoys.com": "block",
    }


def test_two_customers_of_one_partner_get_one_notice_each(outbound: Harness, gateway: Any) -> None:
    run(gateway, sample_event("outbound-two-customers-one-partner.json"))

    notices = outbound.sent()
    assert [n.envelope for n in notices] == [FABRIKAM, FABRIKAM]
    by_customer = {n.message["X-CSP-Mail-Filter-Customer"]: n for n in notices}
    assert set(by_customer) == {"7d1e9b20-tailspin", "0f6c2a4e-contoso"}
    assert "it@tailspintoys.com" in by_customer["7d1e9b20-tailspin"].text()
    assert "cfo@contoso.com" not in by_customer["7d1e9b20-tailspin"].text()
    assert "cfo@contoso.com" in by_customer["0f6c2a4e-contoso"].text()
    for notice in notices:
        assert notice.attached_original()["Bcc"] is None, "a Bcc recipient is never disclosed in the attached original"


def test_redelivered_record_sends_nothing_twice(outbound: Harness, gateway: Any) -> None:
    event = sample_event("outbound-mixed-allowed-rerouted-blocked.json")
    run(gateway, event)
    first = len(outbound.sent())

    assert run(gateway, event) == {"batchItemFailures": []}
    assert len(outbound.sent()) == first == 2
    assert len(list(outbound.quarantine().list())) == 1


def test_second_request_with_the_same_message_id_sends_nothing(outbound: Harness, gateway: Any) -> None:
    body = request("cto@woodgrovebank.com", "operational")
    run(gateway, sqs_event(body))
    run(gateway, sqs_event({**body, "subject": "A different subject"}))

    assert len(outbound.sent()) == 1


def test_ses_failure_fails_the_record_and_the_retry_sends_only_what_is_missing(outbound: Harness, gateway: Any) -> None:
    event = sample_event("outbound-mixed-allowed-rerouted-blocked.json")
    outbound.fail_next.append(FABRIKAM[0])  # the partner notice, sent after the allowed copy

    # powertools raises when every record of a batch failed, so SQS redelivers the whole batch.
    with pytest.raises(BatchProcessingError, match="Throttling"):
        run(gateway, event)
    assert [s.envelope for s in outbound.sent()] == [["cto@woodgrovebank.com"]]
    assert decision_records(outbound, "news-2025-01-azure-mixed") == {}, "nothing is recorded before every action is done"

    assert run(gateway, event) == {"batchItemFailures": []}
    assert [s.envelope for s in outbound.sent()] == [["cto@woodgrovebank.com"], FABRIKAM]
    assert len(decision_records(outbound, "news-2025-01-azure-mixed")) == 3


def test_invalid_request_is_recorded_as_rejected_and_not_retried(outbound: Harness, gateway: Any) -> None:
    response = run(gateway, sample_event("outbound-invalid-request.json"))

    assert response == {"batchItemFailures": []}, "a request that can never succeed is not retried"
    assert outbound.sent() == []
    records = outbound.records("bad-2025-01-no-body")
    assert {r["kind"] for r in records} == {"rejected"}
    assert "it@tailspintoys.com" in {r["recipient"] for r in records}
    error = records[0]["error"]
    assert "to.0" in error
    assert "'not-an-address' is not of the form local@domain" in error


def test_body_that_is_not_json_is_rejected_under_the_sqs_message_id(outbound: Harness, gateway: Any) -> None:
    event = sqs_event({}, ids=["sqs-1"])
    event["Records"][0]["body"] = "{not json"

    assert run(gateway, event) == {"batchItemFailures": []}
    [record] = outbound.records("sqs-1")
    assert record["kind"] == "rejected"
    assert "not JSON" in record["error"]


def test_sender_that_is_not_a_vendor_identity_is_refused(outbound: Harness, gateway: Any) -> None:
    body = request("cto@woodgrovebank.com", "operational", **{"from": "someone@gmail.example"})
    run(gateway, sqs_event(body))

    assert outbound.sent() == []
    [record] = outbound.records(body["message_id"])
    assert record["kind"] == "rejected"
    assert "not a vendor identity" in record["error"]


def test_reserved_header_in_request_is_refused(outbound: Harness, gateway: Any) -> None:
    body = request("cto@woodgrovebank.com", "operational", headers={"Bcc": "spy@example.org"})
    run(gateway, sqs_event(body))

    assert outbound.sent() == []
    assert "composed by the gateway" in outbound.records(body["message_id"])[0]["error"]


def test_one_bad_record_does_not_fail_the_batch(outbound: Harness, gateway: Any) -> None:
    good = request("cto@woodgrovebank.com", "operational")
    outbound.fail_next.append("it@contoso.com")
    failing = request("it@contoso.com", "operational")
    response = run(gateway, sqs_event(good, failing, ids=["good", "failing"]))

    assert response == {"batchItemFailures": [{"itemIdentifier": "failing"}]}
    assert [s.envelope for s in outbound.sent()] == [["cto@woodgrovebank.com"]]


def test_metrics_count_decisions_by_category_and_cloud(outbound: Harness, gateway: Any, capsys: pytest.CaptureFixture[str]) -> None:
    run(gateway, sample_event("outbound-mixed-allowed-rerouted-blocked.json"))

    metrics = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    counted = {
        (name["Name"], m["category"], m["cloud"]): m[name["Name"]]
        for m in metrics
        for directive in m["_aws"]["CloudWatchMetrics"]
        for name in directive["Metrics"]
    }
    assert counted == {
        ("Allowed", "product", "commercial"): [1.0],
        ("Rerouted", "product", "commercial"): [1.0],
        ("Blocked", "product", "commercial"): [1.0],
    }


def test_logs_mask_customer_addresses_and_carry_the_message_id(outbound: Harness, gateway: Any) -> None:
    # A second handler with the function's own JSON formatter: what CloudWatch would receive.
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(gateway.logger.registered_formatter)
    gateway.logger.addHandler(handler)
    run(gateway, sample_event("outbound-mixed-allowed-rerouted-blocked.json"))

    logs = [json.loads(line) for line in buffer.getvalue().splitlines()]
    decisions = [line for line in logs if line.get("message") == "decision"]
    assert len(decisions) == 3
    assert all(line["correlation_id"] == "news-2025-01-azure-mixed" for line in decisions)
    text = json.dumps(logs)
    assert "marketing@tailspintoys.com" not in text
    assert "m***@tailspintoys.com" in text


# ---------------------------------------------------------------- raw messages are read from their own headers


def raw_request(raw: str, recipient: str, **fields: Any) -> dict[str, Any]:
    import base64  # noqa: PLC0415

    return {"message_id": f"raw-{uuid.uuid4().hex[:12]}", "from": "notices@vendor.example", "to": [recipient],
            "raw": base64.b64encode(raw.encode()).decode(), **fields}  # fmt: skip


RAW_HEAD = "From: notices@vendor.example\r\nTo: it@tailspintoys.com\r\n"


def test_r2_a_raw_subscription_subject_under_a_maintenance_request_subject_is_refused(outbound: Harness, gateway: Any) -> None:
    body = raw_request(RAW_HEAD + "Subject: Your subscription renewal invoice\r\n\r\nPay.\r\n", "it@tailspintoys.com",
                       subject="Planned maintenance")  # fmt: skip
    assert run(gateway, sqs_event(body)) == {"batchItemFailures": []}
    assert outbound.sent() == []
    [record] = outbound.records(body["message_id"])
    assert record["kind"] == "rejected"
    assert "subject differs from the raw message's Subject header" in record["error"]


def test_r2_a_raw_subscription_subject_is_rerouted_to_the_partner(outbound: Harness, gateway: Any) -> None:
    body = raw_request(
        RAW_HEAD + "Subject: =?utf-8?b?WW91ciBBenVyZSBzdWJzY3JpcHRpb24gaW52b2ljZQ==?=\r\n\r\nPay.\r\n", "it@tailspintoys.com"
    )
    run(gateway, sqs_event(body))
    assert [sent.envelope for sent in outbound.sent()] == [FABRIKAM]
    assert decision_records(outbound, body["message_id"])["it@tailspintoys.com"]["rule"] == "subscription-owned-by-partner"


def test_r2_raw_declaration_headers_from_a_vendor_identity_count(outbound: Harness, gateway: Any) -> None:
    # Contoso holds azure through Fabrikam: subscription mail about it goes to the partner, whatever the subject says.
    raw = (
        "From: notices@vendor.example\r\nTo: it@contoso.com\r\nSubject: Hello\r\n"
        "X-Communication-Category: subscription\r\nX-Product: azure\r\n\r\nHi.\r\n"
    )
    body = raw_request(raw, "it@contoso.com")
    run(gateway, sqs_event(body))
    assert [sent.envelope for sent in outbound.sent()] == [FABRIKAM]


@pytest.mark.parametrize(
    ("head", "error"),
    [
        ("Subject: Hello\r\nSubject: Your invoice\r\n", "headers that SES accepts only once: subject"),
        ("Subject: Hello\r\nX-Cloud-Instance: usgov\r\nX-Cloud-Instance: commercial\r\n", "the cloud is declared more than once"),
        ("Subject: Hello\r\nSender: cfo@tailspintoys.com\r\n", "not a vendor identity"),
        (
            "Subject: Hello\r\nReturn-Path: <bounces@attacker.example>\r\n",
            "Return-Path header (bounces@attacker.example) is not a vendor identity",
        ),
    ],
    ids=["two-subjects", "two-clouds", "customer-sender", "third-party-return-path"],
)
def test_a_raw_message_the_classifier_could_read_two_ways_is_refused(outbound: Harness, gateway: Any, head: str, error: str) -> None:
    body = raw_request(RAW_HEAD + head + "\r\nHi.\r\n", "it@tailspintoys.com")
    run(gateway, sqs_event(body))
    assert outbound.sent() == []
    [record] = outbound.records(body["message_id"])
    assert (record["kind"], error in record["error"]) == ("rejected", True), record["error"]


def test_copies_show_only_their_readers_recipients_resent_headers_included(outbound: Harness, gateway: Any) -> None:
    raw = ("From: notices@vendor.example\r\nTo: it@tailspintoys.com, cto@woodgrovebank.com\r\nCc: it@contoso.com\r\n"
           "Resent-To: it@tailspintoys.com, cto@woodgrovebank.com\r\nDelivered-To: it@tailspintoys.com\r\n"
           "Subject: Your invoice\r\n\r\nPay.\r\n")  # fmt: skip
    body = raw_request(raw, "it@tailspintoys.com", cc=["it@contoso.com"]) | {"to": ["it@tailspintoys.com", "cto@woodgrovebank.com"]}
    run(gateway, sqs_event(body))
    sent = {tuple(s.envelope): s.message for s in outbound.sent()}
    copy = sent[("cto@woodgrovebank.com",)]
    assert "tailspintoys" not in copy.as_string()
    assert "contoso" not in copy.as_string()
    for envelope, notice in sent.items():
        if envelope == ("cto@woodgrovebank.com",):
            continue
        (attached,) = list(notice.iter_attachments())
        text = attached.get_content().as_string()
        assert "woodgrovebank" not in text
        assert ("tailspintoys" in text) != ("contoso.com" in text), "each notice shows its own customer only"


def test_an_allowed_copy_keeps_every_header_it_does_not_narrow_byte_for_byte(outbound: Harness, gateway: Any) -> None:
    kept = (
        "Return-Path: <bounces@vendor.example>\r\n"
        "DKIM-Signature: v=1; a=rsa-sha256; d=vendor.example; s=s1;\r\n\tb=" + "A" * 300 + "\r\n"
        "List-Unsubscribe: <https://vendor.example/unsubscribe/" + "x" * 100 + ">\r\n"
        "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
        "Subject: =?utf-8?q?Caf=C3=A9_news?=\r\n"
        "X-Odd:    spaced   value\r\n"
    )
    body_bytes = "\r\nPlain body, kept as is.\r\n\r\n"
    raw = "From: notices@vendor.example\r\nTo: cto@woodgrovebank.com, it@tailspintoys.com\r\n" + kept + body_bytes
    body = raw_request(raw, "cto@woodgrovebank.com") | {"to": ["cto@woodgrovebank.com", "it@tailspintoys.com"]}
    run(gateway, sqs_event(body))
    (copy,) = [sent.raw for sent in outbound.sent() if sent.envelope == ["cto@woodgrovebank.com"]]
    assert kept.encode() in copy
    assert copy.endswith(body_bytes.encode())
    assert b"To: cto@woodgrovebank.com\r\n" in copy
