"""SMTP interception end to end: Mail Manager's invocation, the intake, the queue, the gateway, SES.

The sample (events/smtp-intercepted-mixed-recipients.*) is stored where Mail Manager's
WriteToS3 action puts it, the real intake queues its send request, and the real gateway
takes that request from the queue: one path, the same as every send request.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from mailfilter.aws import clients
from mailfilter.vocabulary.ses import SMTP_PREFIX
from mailfilter_cli.local_lambda import drain_queue
from mailfilter_testkit.outbound_support import BUCKET, EVENTS, Harness, LambdaContext, load_function

SAMPLE = "smtp-intercepted-mixed-recipients"
FABRIKAM = ["csp-desk@fabrikam.example"]


@pytest.fixture
def queue_url(outbound: Harness, monkeypatch: pytest.MonkeyPatch) -> str:
    url = clients.client("sqs").create_queue(QueueName="outbound")["QueueUrl"]
    monkeypatch.setenv("OUTBOUND_QUEUE_URL", url)
    return url


def intercept_sample(queue_url: str) -> dict[str, Any]:
    """Mail Manager's part: store the message, invoke the intake; then SQS's: hand the queued record to the gateway."""
    event = json.loads((EVENTS / f"{SAMPLE}.json").read_text(encoding="utf-8"))
    clients.client("s3").put_object(Bucket=BUCKET, Key=SMTP_PREFIX + event["messageId"], Body=(EVENTS / f"{SAMPLE}.eml").read_bytes())
    load_function("smtp_intake").lambda_handler(event, LambdaContext(function_name="smtp-intake"))
    queued = drain_queue(queue_url)
    answer = load_function("outbound_gateway").lambda_handler(queued, LambdaContext())
    assert answer == {"batchItemFailures": []}
    return json.loads(queued["Records"][0]["body"])


def test_an_intercepted_message_is_decided_per_envelope_recipient_bcc_included(outbound: Harness, queue_url: str) -> None:
    """Rules 1 and 4 over SMTP: the direct customer gets it, the CSP customer's partner gets a notice,
    the CSP-only customer (in Cc and as a Bcc recipient) is blocked, and the Bcc recipient is named nowhere."""
    request = intercept_sample(queue_url)
    assert request["bcc"] == ["finance@tailspintoys.com"]

    sent = {tuple(s.envelope): s for s in outbound.sent()}
    assert set(sent) == {("cto@woodgrovebank.com",), tuple(FABRIKAM)}
    for message in sent.values():
        assert b"finance@tailspintoys.com" not in message.raw
    records = {r["recipient"]: r["effective"] for r in outbound.records(request["message_id"]) if r["kind"] == "decision"}
    assert records == {
        "cto@woodgrovebank.com": "allow",
        "it@contoso.com": "reroute",
        "marketing@tailspintoys.com": "block",
        "finance@tailspintoys.com": "block",
    }
    (kept,) = list(outbound.quarantine().list())
    assert set(kept.recipients) == {"marketing@tailspintoys.com", "finance@tailspintoys.com"}
    assert kept.raw is not None


def test_the_same_stored_message_handed_over_twice_is_sent_once(outbound: Harness, queue_url: str) -> None:
    """Exactly once across Mail Manager's retries: the second invocation queues the same message id, which sends nothing."""
    intercept_sample(queue_url)
    first = len(outbound.sent())
    intercept_sample(queue_url)
    assert len(outbound.sent()) == first == 2
