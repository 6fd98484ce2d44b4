"""The inbound filter's world for end-to-end tests: DynamoDB Local tables, moto S3 and SES, the real handler."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from types import ModuleType
from typing import Any

import boto3
from moto import mock_aws
from moto.ses.models import ses_backends

from mailfilter.aws import clients
from mailfilter.aws.decisions import DecisionLog
from mailfilter_testkit.aws_resources import create_tables_from_template, delete_tables
from mailfilter_testkit.paths import EVENTS, FUNCTIONS

BUCKET = "csp-mail-filter-mail"
FILTER_FROM = "mail-filter@vendor.example"
ACCOUNT, REGION = "123456789012", "us-east-1"


def sample(name: str) -> tuple[dict[str, Any], bytes]:
    """A sample event of events/ and the raw message beside it, as the receipt rule's S3 action stores it."""
    event = json.loads((EVENTS / f"inbound-{name}.json").read_text(encoding="utf-8"))
    return event, (EVENTS / f"inbound-{name}.eml").read_bytes()


def load_handler() -> ModuleType:
    """functions/inbound_filter/app.py, imported afresh so it reads this test's environment."""
    spec = importlib.util.spec_from_file_location("inbound_filter_app", FUNCTIONS / "inbound_filter" / "app.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["inbound_filter_app"] = module
    spec.loader.exec_module(module)
    return module


@dataclass
class LambdaContext:
    function_name: str = "csp-mail-filter-InboundFilterFunction"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:csp-mail-filter-InboundFilterFunction"
    aws_request_id: str = "req-1"

    def get_remaining_time_in_millis(self) -> int:
        return 20_000


@dataclass
class InboundStack:
    handler: ModuleType
    decisions_table: str
    s3: Any = field(default_factory=lambda: boto3.client("s3"))

    def store(self, message_id: str, raw: bytes) -> None:
        """What the receipt rule's S3 action does before it invokes the filter."""
        self.s3.put_object(Bucket=BUCKET, Key=f"inbound/{message_id}", Body=raw)

    def invoke(self, event: dict[str, Any]) -> dict[str, str]:
        return self.handler.lambda_handler(event, LambdaContext())

    def sent(self) -> list[tuple[list[str], Message, bytes]]:
        """(envelope recipients, parsed message, raw bytes) of every message SES sent.

        moto adds the To header's addresses to the envelope it was given; de-duplicated here.
        """
        backend = ses_backends[ACCOUNT][REGION]
        return [(sorted(set(m.destinations)), message_from_bytes(m.raw_data.encode()), m.raw_data.encode()) for m in backend.sent_messages]

    def quarantined(self) -> list[dict[str, Any]]:
        listing = self.s3.list_objects_v2(Bucket=BUCKET, Prefix="quarantine/items/").get("Contents", [])
        return [json.loads(self.s3.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read()) for o in listing]

    def quarantined_raw(self) -> list[str]:
        listing = self.s3.list_objects_v2(Bucket=BUCKET, Prefix="quarantine/raw/").get("Contents", [])
        return [o["Key"] for o in listing]

    def recorded(self, message_id: str) -> list[dict[str, Any]]:
        return DecisionLog(self.decisions_table).for_message(message_id)


def inbound_stack(monkeypatch: Any, dynamodb_local: str, directory_table: str, decisions_table: str) -> Iterator[InboundStack]:
    from mailfilter_cli.directory_import import import_directory  # noqa: PLC0415 - the operator's own import path

    import_directory(EVENTS / "directory.jsonl", directory_table)
    idempotency_table = create_tables_from_template(["IdempotencyTable"])["IdempotencyTable"]
    env = {
        "DIRECTORY_TABLE": directory_table,
        "DECISIONS_TABLE": decisions_table,
        "IDEMPOTENCY_TABLE": idempotency_table,
        "MAIL_BUCKET": BUCKET,
        "FILTER_FROM_ADDRESS": FILTER_FROM,
        "POWERTOOLS_SERVICE_NAME": "csp-mail-filter",
        "POWERTOOLS_METRICS_NAMESPACE": "CspMailFilter",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "AWS_LAMBDA_FUNCTION_NAME": "csp-mail-filter-InboundFilterFunction",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    # S3 and SES are moto's; DynamoDB requests go through to DynamoDB Local.
    with mock_aws(config={"core": {"passthrough": {"urls": [re.escape(dynamodb_local) + ".*"], "services": []}}}):
        clients.reset()
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        boto3.client("ses").verify_domain_identity(Domain="vendor.example")
        try:
            yield InboundStack(load_handler(), decisions_table)
        finally:
            clients.reset()
    delete_tables([idempotency_table])
