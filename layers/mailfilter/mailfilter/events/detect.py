"""Which event a JSON document is, for tools that accept any of them (`mailfilter explain`)."""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from mailfilter.events import EventError
from mailfilter.events.send_request import SendRequest
from mailfilter.events.ses_receipt import parse_receipt_event, receipt_message
from mailfilter.events.ses_sent import parse_email_sent_event, sent_message
from mailfilter.message import Message
from mailfilter.validation import describe

EXPECTED = (
    "an SES receipt-rule event (Records[].eventSource 'aws:ses'), an outbound send request, "
    "an SQS event whose records carry send requests (Records[].eventSource 'aws:sqs'), "
    "or an EventBridge SES 'Email Sent' event (source 'aws.ses')"
)


def parse_send_request(data: Any) -> SendRequest:
    try:
        return SendRequest.model_validate(data)
    except ValidationError as error:
        raise EventError(f"invalid send request: {describe(error, root='(request)')}") from None


def messages_from_event(data: Any) -> list[Message]:
    """The messages an event carries, in order; `EventError` names what was expected otherwise."""
    if not isinstance(data, dict):
        raise EventError(f"expected a JSON object: {EXPECTED}")
    records = data.get("Records")
    if isinstance(records, list) and records and isinstance(records[0], dict):
        source = records[0].get("eventSource")
        if source == "aws:ses":
            return [receipt_message(parse_receipt_event(data))]
        if source == "aws:sqs":
            return [parse_send_request(_json_body(record)).to_message() for record in records]
    if data.get("source") == "aws.ses":
        return [sent_message(parse_email_sent_event(data))]
    if "from" in data:
        return [parse_send_request(data).to_message()]
    raise EventError(f"unrecognised event: expected {EXPECTED}")


def _json_body(record: Any) -> Any:
    body = record.get("body") if isinstance(record, dict) else None
    if not isinstance(body, str):
        raise EventError("SQS record has no string body")
    try:
        return json.loads(body)
    except json.JSONDecodeError as error:
        raise EventError(f"SQS record {record.get('messageId', '?')}: body is not JSON: {error}") from None
