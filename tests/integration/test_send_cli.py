"""`mailfilter send FILE.eml`: the file stored under outgoing/, one request naming it queued, then the gateway's path."""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner

from mailfilter.aws import clients
from mailfilter_cli.local_lambda import drain_queue
from mailfilter_cli.main import cli
from mailfilter_testkit.outbound_support import BUCKET, EVENTS, Harness, LambdaContext, load_function

MESSAGE = EVENTS / "smtp-intercepted-mixed-recipients.eml"


@pytest.fixture
def queue_url(outbound: Harness) -> str:
    return clients.client("sqs").create_queue(QueueName="outbound")["QueueUrl"]


def send(queue_url: str, *args: str) -> Any:
    return CliRunner().invoke(cli, ["send", "--bucket", BUCKET, "--queue-url", queue_url, *args], catch_exceptions=False)


def queued(queue_url: str) -> list[dict[str, Any]]:
    return clients.client("sqs").receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])


def test_send_stores_the_file_byte_for_byte_and_queues_a_request_naming_it(outbound: Harness, queue_url: str) -> None:
    result = send(queue_url, str(MESSAGE), "--to", "cto@woodgrovebank.com", "--bcc", "finance@tailspintoys.com", "--format", "json")
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output)
    (message,) = queued(queue_url)
    request = json.loads(message["Body"])
    assert request == {
        "from": "news@vendor.example",  # the message's own From when --from is not given
        "to": ["cto@woodgrovebank.com"],
        "cc": [],
        "bcc": ["finance@tailspintoys.com"],
        "raw_key": request["raw_key"],
    }
    assert request["raw_key"].startswith("outgoing/send/")
    stored = clients.client("s3").get_object(Bucket=BUCKET, Key=request["raw_key"])["Body"].read()
    assert stored == MESSAGE.read_bytes()
    assert answer["queued_as"] == message["MessageId"]


def test_a_sent_file_goes_through_the_gateway_like_any_request(outbound: Harness, queue_url: str) -> None:
    """Rule 4 and rule 1 for a message an application handed over with `send`: allowed to Woodgrove, blocked for Tailspin."""
    send(queue_url, str(MESSAGE), "--to", "cto@woodgrovebank.com", "--bcc", "finance@tailspintoys.com", "--message-id", "send-cli-1")
    event = drain_queue(queue_url)
    assert len(event["Records"]) == 1
    load_function("outbound_gateway").lambda_handler(event, LambdaContext())
    (sent,) = outbound.sent()
    assert sent.envelope == ["cto@woodgrovebank.com"]
    records = {r["recipient"]: r["effective"] for r in outbound.records("send-cli-1") if r["kind"] == "decision"}
    assert records == {"cto@woodgrovebank.com": "allow", "finance@tailspintoys.com": "block"}


def test_send_refuses_a_request_the_gateway_would_refuse_before_storing_anything(outbound: Harness, queue_url: str) -> None:
    result = send(queue_url, str(MESSAGE))
    assert result.exit_code == 1
    assert "the request has no recipient in to, cc or bcc" in result.output
    assert queued(queue_url) == []
    assert clients.client("s3").list_objects_v2(Bucket=BUCKET, Prefix="outgoing/").get("KeyCount", 0) == 0


def test_send_without_a_readable_from_asks_for_one(outbound: Harness, queue_url: str, tmp_path: Any) -> None:
    message = tmp_path / "no-from.eml"
    message.write_bytes(b"To: cto@woodgrovebank.com\r\nSubject: hi\r\n\r\nbody\r\n")
    result = send(queue_url, str(message), "--to", "cto@woodgrovebank.com")
    assert result.exit_code == 1
    assert "has 0 From headers; give the sender with --from" in result.output
