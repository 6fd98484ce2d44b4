"""A harness for the outbound functions: DynamoDB Local tables, moto's S3 and SES, the real handlers.

Tables (directory, decisions, idempotency) are created from template.yaml in
DynamoDB Local and the sample directory (events/directory.jsonl) is imported;
S3 and SES are moto's. What SES sent is read from moto's SES backend, and the
SendEmail parameters (envelope, tags, configuration set) from a botocore hook.
"""

from __future__ import annotations

import importlib.util
import json
import uuid
from dataclasses import dataclass, field
from email import message_from_bytes
from email import policy as email_policy
from email.message import EmailMessage
from types import ModuleType
from typing import Any

from moto.backends import get_backend

from mailfilter.aws import clients
from mailfilter.aws.batch import batch_write
from mailfilter.aws.decisions import DecisionLog
from mailfilter.aws.directory_items import customer_items, partner_item
from mailfilter.aws.mailer import message_on_the_wire
from mailfilter.aws.quarantine import Quarantine
from mailfilter.directory.load import read_directory
from mailfilter.directory.records import CustomerRecord, PartnerRecord
from mailfilter_testkit.paths import EVENTS, FUNCTIONS

BUCKET = "csp-mail-filter-mail"
FILTER_FROM = "mail-filter@vendor.example"
CONFIGURATION_SET = "vendor-mail"
ACCOUNT = "123456789012"
REGION = "us-east-1"


def load_function(name: str) -> ModuleType:
    """Import functions/<name>/app.py afresh, as Lambda would in a new execution environment."""
    spec = importlib.util.spec_from_file_location(f"{name}_app_{uuid.uuid4().hex[:8]}", FUNCTIONS / name / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def import_directory(table_name: str) -> None:
    records = list(read_directory(EVENTS / "directory.jsonl"))
    partners = {(r.cloud, r.partner_id): r for r in records if isinstance(r, PartnerRecord)}
    items = [partner_item(p) for p in partners.values()]
    for record in records:
        if isinstance(record, CustomerRecord):
            in_cloud = {pid: p for (cloud, pid), p in partners.items() if cloud == record.cloud}
            items.extend(customer_items(record, in_cloud))
    batch_write(clients.client("dynamodb"), table_name, [{"PutRequest": {"Item": item}} for item in items])


@dataclass
class LambdaContext:
    function_name: str = "outbound-gateway"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:outbound-gateway"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def sqs_event(*requests: dict[str, Any], ids: list[str] | None = None) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": (ids[i] if ids else str(uuid.uuid4())),
                "receiptHandle": "AQEB",
                "body": json.dumps(request),
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:outbound",
                "awsRegion": REGION,
            }
            for i, request in enumerate(requests)
        ]
    }


def sample_event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text(encoding="utf-8"))


@dataclass
class Sent:
    """One message SES accepted: the SendEmail call and the MIME it carried."""

    sender: str
    envelope: list[str]
    tags: dict[str, str]
    configuration_set: str | None
    message: EmailMessage
    raw: bytes = b""  # the bytes handed to SES, exactly

    @property
    def header_recipients(self) -> set[str]:
        found = set()
        for name in ("To", "Cc", "Bcc"):
            header = self.message[name]
            if header is not None:
                found.update(a.addr_spec for a in header.addresses)
        return found

    def attached_original(self) -> EmailMessage:
        parts = [p for p in self.message.iter_attachments() if p.get_content_type() == "message/rfc822"]
        assert len(parts) == 1, "a partner notice carries exactly one original"
        return parts[0].get_content()

    def text(self) -> str:
        return self.message.get_body(preferencelist=("plain",)).get_content()


class Harness:
    def __init__(self, tables: dict[str, str]) -> None:
        self.tables = tables
        self.calls: list[dict[str, Any]] = []
        self.fail_next: list[str] = []  # destinations whose next send raises a throttling error
        self.wire: list[bytes] = []  # the raw message of each send, as it went over the wire
        ses = clients.client("sesv2")
        ses.meta.events.register("provide-client-params.sesv2.SendEmail", self._capture)
        ses.meta.events.register("request-created.sesv2.SendEmail", self._capture_wire)

    def _capture_wire(self, request: Any, **_: Any) -> None:
        self.wire.append(message_on_the_wire(request))

    def _capture(self, params: dict[str, Any], **_: Any) -> None:
        destinations = params["Destination"]["ToAddresses"]
        for marker in list(self.fail_next):
            if marker in destinations:
                self.fail_next.remove(marker)
                from botocore.exceptions import ClientError  # noqa: PLC0415

                raise ClientError({"Error": {"Code": "Throttling", "Message": "Maximum sending rate exceeded."}}, "SendEmail")
        self.calls.append(params)

    def sent(self) -> list[Sent]:
        raw = get_backend("ses")[ACCOUNT][REGION].sent_messages
        assert len(raw) == len(self.calls), "every SES call is captured"
        return [
            Sent(
                sender=call["FromEmailAddress"],
                envelope=list(call["Destination"]["ToAddresses"]),
                tags={t["Name"]: t["Value"] for t in call.get("EmailTags", [])},
                configuration_set=call.get("ConfigurationSetName"),
                message=message_from_bytes(message.raw_data.encode(), policy=email_policy.default),
                raw=wire,
            )
            for call, message, wire in zip(self.calls, raw, self.wire, strict=True)
        ]

    def quarantine(self) -> Quarantine:
        return Quarantine(BUCKET)

    def records(self, message_id: str) -> list[dict[str, Any]]:
        return DecisionLog(self.tables["DecisionsTable"]).for_message(message_id)

    def environment(self) -> dict[str, str]:
        return {
            "DIRECTORY_TABLE": self.tables["DirectoryTable"],
            "DECISIONS_TABLE": self.tables["DecisionsTable"],
            "IDEMPOTENCY_TABLE": self.tables["IdempotencyTable"],
            "MAIL_BUCKET": BUCKET,
            "FILTER_FROM_ADDRESS": FILTER_FROM,
            "VENDOR_CONFIGURATION_SET": CONFIGURATION_SET,
            "POWERTOOLS_SERVICE_NAME": "csp-mail-filter",
            "POWERTOOLS_METRICS_NAMESPACE": "CspMailFilter",
            "POWERTOOLS_TRACE_DISABLED": "true",
        }
