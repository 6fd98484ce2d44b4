"""Which event a JSON document is, for tools that accept any of them (`mailfilter explain`)."""

from __future__ import annotations

from typing import Any

from mailfilter.events.mail_manager import is_mail_manager_event
from mailfilter.events.send_request import decode_json
from mailfilter.events.ses_receipt import parse_receipt_event, receipt_message
from mailfilter.events.ses_sent import parse_email_sent_event, sent_message
from mailfilter.outbound.request import read_send_request
from mailfilter.policy.config import Policy
from mailfilter.ports import StoredMail
from mailfilter.vocabulary.errors import EventError
from mailfilter.vocabulary.message import Message

EXPECTED = (
    "an SES receipt-rule event (Records[].eventSource 'aws:ses'), an outbound send request, "
    "an SQS event whose records carry send requests (Records[].eventSource 'aws:sqs'), "
    "or an EventBridge SES 'Email Sent' event (source 'aws.ses')"
)
MAIL_MANAGER = (
    "an SES Mail Manager invocation of the SMTP intake: its message is in the mail bucket, so it has no decision "
    "of its own here; run it with `mailfilter invoke SmtpIntakeFunction` and explain the send request it queues"
)


def messages_from_event(data: Any, policy: Policy, stored: StoredMail | None = None) -> list[Message]:
    """The messages an event carries, read as the functions read them; `EventError` names what was wrong.

    Send requests go through the gateway's own reading (`read_send_request`), so a request
    the gateway refuses is refused here with the same words; `stored` reads the messages `raw_key` names.
    """
    if not isinstance(data, dict):
        raise EventError(f"expected a JSON object: {EXPECTED}")
    records = data.get("Records")
    if isinstance(records, list) and records and isinstance(records[0], dict):
        source = records[0].get("eventSource")
        if source == "aws:ses":
            return [receipt_message(parse_receipt_event(data))]
        if source == "aws:sqs":
            return [read_send_request(_json_body(record), policy, stored).message for record in records]
    if data.get("source") == "aws.ses":
        return [sent_message(parse_email_sent_event(data))]
    if is_mail_manager_event(data):
        raise EventError(MAIL_MANAGER)
    if "from" in data:
        return [read_send_request(data, policy, stored).message]
    raise EventError(f"unrecognised event: expected {EXPECTED}")


def _json_body(record: Any) -> Any:
    body = record.get("body") if isinstance(record, dict) else None
    if not isinstance(body, str):
        raise EventError("SQS record has no string body")
    try:
        return decode_json(body)
    except (ValueError, RecursionError) as error:  # not JSON, nested too deep, or a number too long to read
        raise EventError(f"SQS record {record.get('messageId', '?')}: body is not JSON: {error}") from None
