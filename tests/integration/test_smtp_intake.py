"""The SMTP intake (docs/smtp.md): Mail Manager's invocation in, the gateway's send request out.

Moto's S3 and SQS; the handler is the real one (functions/smtp_intake/app.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from mailfilter.aws import clients
from mailfilter.aws.raw_mail import HEADER_CHUNK_BYTES as CHUNK_BYTES
from mailfilter.aws.raw_mail import MailBucket
from mailfilter.aws.request_queue import RequestQueue
from mailfilter.events.mail_manager import parse_mail_manager_event
from mailfilter.events.send_request import parse_send_request
from mailfilter.outbound.smtp_intake import intercept, request_message_id
from mailfilter.vocabulary.errors import EventError, QueueUnavailable
from mailfilter.vocabulary.ses import SMTP_PREFIX
from mailfilter_testkit.outbound_support import LambdaContext, load_function
from mailfilter_testkit.paths import EVENTS

SAMPLE = "smtp-intercepted-mixed-recipients"
BUCKET = "csp-mail-filter-mail"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    with mock_aws():
        clients.reset()
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        queue_url = boto3.client("sqs").create_queue(QueueName="outbound")["QueueUrl"]
        monkeypatch.setenv("MAIL_BUCKET", BUCKET)
        monkeypatch.setenv("OUTBOUND_QUEUE_URL", queue_url)
        monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
        monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "CspMailFilter")
        yield {"queue_url": queue_url}
        clients.reset()


def sample_event() -> dict[str, Any]:
    return json.loads((EVENTS / f"{SAMPLE}.json").read_text(encoding="utf-8"))


def store(event: dict[str, Any], raw: bytes | None = None) -> str:
    key = SMTP_PREFIX + event["messageId"]
    boto3.client("s3").put_object(Bucket=BUCKET, Key=key, Body=raw if raw is not None else (EVENTS / f"{SAMPLE}.eml").read_bytes())
    return key


def queued(queue_url: str) -> list[dict[str, Any]]:
    messages = boto3.client("sqs").receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(message["Body"]) for message in messages]


def run_handler(event: dict[str, Any]) -> dict[str, Any]:
    return load_function("smtp_intake").lambda_handler(event, LambdaContext(function_name="smtp-intake"))


# ---------------------------------------------------------------- the invocation


def test_the_sample_invocation_names_the_envelope_and_the_stored_object() -> None:
    invocation = parse_mail_manager_event(sample_event())
    assert invocation.envelope.mail_from == "news@vendor.example"
    assert len(invocation.envelope.rcpt_to) == 4
    assert invocation.object_key(SMTP_PREFIX) == "outgoing/smtp/smtp-mixed-recipients-0001"


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (lambda e: e.pop("messageId"), "messageId: Field required"),
        (lambda e: e.update(messageId="../quarantine/x"), "messageId: String should match pattern"),
        (lambda e: e.update(messageId=""), "messageId: String should have at least 1 character"),
        (lambda e: e.pop("envelope"), "envelope: Field required"),
        (lambda e: e["envelope"].pop("from"), "envelope.from: Field required"),
        (lambda e: e["envelope"].update(to=[]), "envelope.to: List should have at least 1 item"),
        (lambda e: e["envelope"].update(to="it@contoso.com"), "envelope.to: Input should be a valid list"),
        (lambda e: e["envelope"].update(to=["it@contoso.com\r\nBcc: x@evil.example"]), "envelope.to: must not contain CR, LF or NUL"),
    ],
    ids=["no-message-id", "message-id-climbs-out-of-the-prefix", "empty-message-id", "no-envelope", "no-mail-from", "no-recipient",
         "recipients-not-a-list", "line-break-in-recipient"],
)  # fmt: skip
def test_a_malformed_invocation_is_refused_with_the_field_and_the_problem(change: Any, error: str) -> None:
    event = sample_event()
    change(event)
    with pytest.raises(EventError, match="invalid Mail Manager invocation") as refused:
        parse_mail_manager_event(event)
    assert error in str(refused.value)


def test_an_invocation_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(EventError, match="expected a Mail Manager invocation"):
        parse_mail_manager_event(["not", "an", "object"])


# ---------------------------------------------------------------- the request on the queue


def test_every_envelope_recipient_counts_bcc_included(aws: dict[str, str]) -> None:
    event = sample_event()
    key = store(event)
    response = run_handler(event)
    (request,) = queued(aws["queue_url"])
    assert request == {
        "message_id": request_message_id(key),
        "from": "news@vendor.example",
        "to": ["cto@woodgrovebank.com", "it@contoso.com"],
        "cc": ["marketing@tailspintoys.com"],
        "bcc": ["finance@tailspintoys.com"],  # in the envelope, in no header: decided like the others
        "raw_key": "outgoing/smtp/smtp-mixed-recipients-0001",
    }
    assert response["recipients"] == {"to": 2, "cc": 1, "bcc": 1}
    assert response["raw_key"] == key


def test_the_request_is_the_gateways_send_request(aws: dict[str, str]) -> None:
    event = sample_event()
    store(event)
    run_handler(event)
    (request,) = queued(aws["queue_url"])
    parsed = parse_send_request(request)
    assert parsed.recipients == ("cto@woodgrovebank.com", "it@contoso.com", "marketing@tailspintoys.com", "finance@tailspintoys.com")


def test_an_envelope_of_more_than_50_recipients_becomes_one_request_per_50_each_decided_once(aws: dict[str, str]) -> None:
    """SES sends to at most 50 recipients; an SMTP client may name 120. Every one is decided, none is dropped."""
    event = sample_event()
    event["envelope"]["to"] = [f"user{n}@woodgrovebank.com" for n in range(120)] + ["it@contoso.com"]
    key = store(event)
    response = run_handler(event)
    requests = []
    while batch := queued(aws["queue_url"]):
        requests += batch
    base = request_message_id(key)
    assert sorted(r["message_id"] for r in requests) == [f"{base}.part{n}of3" for n in (1, 2, 3)]
    assert [len(parse_send_request(r).recipients) for r in sorted(requests, key=lambda r: r["message_id"])] == [50, 50, 21]
    everyone = [a for r in requests for field in ("to", "cc", "bcc") for a in r[field]]
    assert sorted(everyone) == sorted(event["envelope"]["to"])
    assert response["message_id"] == base
    assert response["requests"] == [f"{base}.part{n}of3" for n in (1, 2, 3)]


def test_the_same_stored_object_handed_over_twice_is_one_message_id(aws: dict[str, str]) -> None:
    event = sample_event()
    store(event)
    first, second = run_handler(event), run_handler(event)
    requests = queued(aws["queue_url"]) + queued(aws["queue_url"])
    assert first["message_id"] == second["message_id"]
    assert {r["message_id"] for r in requests} == {first["message_id"]}  # the gateway's idempotency sends it once
    other = {**event, "messageId": "smtp-another-0002"}
    store(other)
    assert run_handler(other)["message_id"] != first["message_id"]


def test_a_recipient_repeated_in_the_envelope_or_written_differently_is_one_recipient(aws: dict[str, str]) -> None:
    event = sample_event()
    event["envelope"]["to"] = ["IT@Contoso.com", "it@contoso.com", "cto@woodgrovebank.com"]
    store(event)
    run_handler(event)
    (request,) = queued(aws["queue_url"])
    assert (request["to"], request["cc"], request["bcc"]) == (["it@contoso.com", "cto@woodgrovebank.com"], [], [])


def test_recipients_of_an_unreadable_to_header_are_kept_as_bcc_never_dropped(aws: dict[str, str]) -> None:
    event = sample_event()
    raw = b"From: news@vendor.example\r\nTo: cto@woodgrovebank.com <it@contoso.com>\r\nSubject: x\r\n\r\nbody\r\n"
    store(event, raw)
    response = run_handler(event)
    (request,) = queued(aws["queue_url"])
    assert request["to"] == []
    assert request["cc"] == []
    assert len(request["bcc"]) == 4
    assert response["unreadable_headers"] == ["To"]


def test_only_the_header_block_is_read_never_the_whole_message(aws: dict[str, str]) -> None:
    event = sample_event()
    body = b"x" * (5 * CHUNK_BYTES)
    store(event, (EVENTS / f"{SAMPLE}.eml").read_bytes() + body)
    ranges = []
    s3 = boto3.client("s3")
    s3.meta.events.register("before-parameter-build.s3.GetObject", lambda params, **_: ranges.append(params.get("Range")))
    block = MailBucket(BUCKET, s3=s3).header_block(SMTP_PREFIX + event["messageId"])
    assert ranges == [f"bytes=0-{CHUNK_BYTES - 1}"]
    assert block.size > 5 * CHUNK_BYTES
    assert len(block.head) == CHUNK_BYTES


def test_a_header_block_longer_than_one_read_is_read_to_its_end(aws: dict[str, str]) -> None:
    event = sample_event()
    long_header = b"X-Padding: " + b"a" * 900 + b"\r\n"
    raw = long_header * 100 + b"To: it@contoso.com\r\n\r\nbody\r\n"
    store(event, raw)
    block = MailBucket(BUCKET).header_block(SMTP_PREFIX + event["messageId"])
    assert b"To: it@contoso.com" in block.head


# ---------------------------------------------------------------- failure answers


def test_a_malformed_invocation_fails_the_function_so_mail_manager_retries(aws: dict[str, str]) -> None:
    with pytest.raises(EventError, match="envelope: Field required"):
        run_handler({"messageId": "smtp-mixed-recipients-0001"})
    assert queued(aws["queue_url"]) == []


def test_a_message_that_was_not_stored_fails_the_function_and_queues_nothing(aws: dict[str, str]) -> None:
    from mailfilter.vocabulary.errors import MailUnavailable  # noqa: PLC0415

    with pytest.raises(MailUnavailable, match="outgoing/smtp/smtp-mixed-recipients-0001"):
        run_handler(sample_event())
    assert queued(aws["queue_url"]) == []


def test_a_queue_that_cannot_be_reached_fails_the_function(aws: dict[str, str]) -> None:
    event = sample_event()
    store(event)
    queue = RequestQueue("https://sqs.us-east-1.amazonaws.com/123456789012/no-such-queue")
    with pytest.raises(QueueUnavailable):
        intercept(event, mail=MailBucket(BUCKET), queue=queue)
