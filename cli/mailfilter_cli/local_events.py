"""Which of the template's functions takes an event, and the ids it records the event's messages under.

For `mailfilter local up` (which inbound samples to store), `mailfilter demo` and the tests.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from mailfilter.events.mail_manager import is_mail_manager_event
from mailfilter.events.send_request import parse_send_request
from mailfilter.outbound.smtp_intake import request_message_id
from mailfilter.vocabulary.ses import SMTP_PREFIX

INBOUND, GATEWAY, AUDIT = "InboundFilterFunction", "OutboundGatewayFunction", "OutboundAuditFunction"
SMTP = "SmtpIntakeFunction"  # Mail Manager invocations (docs/smtp.md)


def function_for(event: Any) -> str | None:
    """Which function of the template takes this event, as its event source would deliver it."""
    if not isinstance(event, dict):
        return None
    records = event.get("Records")
    if isinstance(records, list) and records and isinstance(records[0], dict):
        return {"aws:ses": INBOUND, "aws:sqs": GATEWAY}.get(records[0].get("eventSource"))
    if is_mail_manager_event(event):
        return SMTP
    return AUDIT if event.get("source") == "aws.ses" else None


def message_ids(event: dict[str, Any]) -> list[str]:
    """The ids under which the functions record this event's messages."""
    if function_for(event) == INBOUND:
        return [event["Records"][0]["ses"]["mail"]["messageId"]]
    if function_for(event) == AUDIT:
        return [event["detail"]["mail"]["messageId"]]
    if function_for(event) == SMTP:
        return [request_message_id(SMTP_PREFIX + event["messageId"])]
    ids = []
    for record in event["Records"]:
        ids.append(record.get("messageId", ""))
        with contextlib.suppress(ValueError, TypeError, KeyError):  # an unreadable body is recorded under the SQS id
            body = json.loads(record["body"])
            ids.append(body.get("message_id") or "")
            ids.append(parse_send_request(body).effective_message_id)
    return list(dict.fromkeys(i for i in ids if i))
