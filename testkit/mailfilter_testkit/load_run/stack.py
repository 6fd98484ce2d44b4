"""The stack of one load run: DynamoDB Local's tables, moto's S3, SES and SQS, the functions' environment, the fault injector.

Tables are created from template.yaml; the outbound queue gets the template's redrive policy
(maxReceiveCount) and a dead-letter queue; the directory goes in through the operator's own
import. AWS faults come from `faults.FaultInjector`, attached to the shared clients.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
from moto import mock_aws
from moto.ses import models as moto_ses

from mailfilter.aws import clients
from mailfilter_testkit.aws_resources import create_tables_from_template, delete_tables, template
from mailfilter_testkit.faults import Deadline, FaultInjector
from mailfilter_testkit.load_run.config import Config

ACCOUNT, REGION = "123456789012", "us-east-1"
BUCKET = "csp-mail-filter-mail"
FILTER_FROM = "mail-filter@vendor.example"


@contextmanager
def quiet_powertools() -> Iterator[None]:
    """Warnings and errors only from the functions' loggers, and no EMF metrics on stdout."""
    values = {"POWERTOOLS_LOG_LEVEL": "CRITICAL", "POWERTOOLS_METRICS_DISABLED": "true", "POWERTOOLS_TRACE_DISABLED": "true"}
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class LoadStack:
    """The AWS side of one run. DynamoDB Local must be running at `endpoint`; the rest is moto's, inside `running()`."""

    def __init__(self, config: Config, endpoint: str) -> None:
        self.config = config
        self.endpoint = endpoint
        self.deadline = Deadline()  # the current invocation's, per thread: faults and crashes stop an invocation past it
        self.injector = FaultInjector(
            config.fault_rate,
            config.seed,
            unprocessed_rate=config.unprocessed_rate,
            exhausted_rate=config.exhausted_rate,
            deadline=self.deadline,
        )

    @contextmanager
    def running(self) -> Iterator[LoadStack]:
        """Create everything, attach the fault injector to the shared clients; remove the tables afterwards."""
        os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = self.endpoint
        clients.reset()
        names = create_tables_from_template(["DirectoryTable", "DecisionsTable", "IdempotencyTable"])
        self.tables = names
        env = {
            "DIRECTORY_TABLE": names["DirectoryTable"],
            "DECISIONS_TABLE": names["DecisionsTable"],
            "IDEMPOTENCY_TABLE": names["IdempotencyTable"],
            "MAIL_BUCKET": BUCKET,
            "FILTER_FROM_ADDRESS": FILTER_FROM,
            "POWERTOOLS_SERVICE_NAME": "csp-mail-filter",
            "POWERTOOLS_METRICS_NAMESPACE": "CspMailFilter",
        }
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        passthrough = {"core": {"passthrough": {"urls": [re.escape(self.endpoint) + ".*"], "services": []}}}
        moto_ses_limit = moto_ses.RECIPIENT_LIMIT
        # moto adds the To and Cc header addresses to the envelope it is given before checking SES's 50,
        # so a message to 30 allowed recipients counts 60 there; SES itself counts the envelope once.
        moto_ses.RECIPIENT_LIMIT = 200
        try:
            with mock_aws(config=passthrough), quiet_powertools():
                clients.reset()
                self.s3 = boto3.client("s3")
                self.sqs = boto3.client("sqs")
                self.dynamodb = boto3.client("dynamodb")
                self.s3.create_bucket(Bucket=BUCKET)
                boto3.client("sesv2").create_email_identity(EmailIdentity="vendor.example")
                redrive = template()["Resources"]["OutboundQueue"]["Properties"]["RedrivePolicy"]
                self.max_receives = int(redrive["maxReceiveCount"])
                dlq = self.sqs.create_queue(QueueName="outbound-dlq")["QueueUrl"]
                dlq_arn = self.sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
                self.queue = self.sqs.create_queue(
                    QueueName="outbound",
                    Attributes={
                        "VisibilityTimeout": str(self.config.visibility_seconds),
                        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": self.max_receives}),
                    },
                )["QueueUrl"]
                self.queue_arn = self.sqs.get_queue_attributes(QueueUrl=self.queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
                self.dlq = dlq
                for service in ("dynamodb", "s3", "sesv2"):
                    self.injector.attach(clients.client(service))
                yield self
        finally:
            moto_ses.RECIPIENT_LIMIT = moto_ses_limit
            clients.reset()
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
            delete_tables(names.values(), client=boto3.client("dynamodb", endpoint_url=self.endpoint))

    def import_directory(self, records: list[dict[str, Any]]) -> None:
        from mailfilter_cli.directory_import import import_directory  # noqa: PLC0415

        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "directory.jsonl"
            path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
            with self.injector.pause():
                import_directory(path, self.tables["DirectoryTable"])
