"""Running a function of template.yaml in this process, as the Lambda runtime would run it.

Where Docker exists, `sam local invoke` does this in a container; where it does
not, `mailfilter invoke` and `mailfilter demo` import the same handler with the
same environment and call it with a Lambda context. `LocalFunction.run` also
reports what the invocation did through its AWS clients (what SES accepted,
which decision records and quarantine items it wrote, whether powertools'
idempotency record answered), seen with botocore's event hooks on the clients
the handler uses, so concurrent invocations elsewhere do not blur it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import sys
import threading
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email import policy as email_policy
from types import ModuleType
from typing import Any

from botocore.client import BaseClient

from mailfilter.aws import clients
from mailfilter.aws.directory_items import from_item
from mailfilter.aws.mailer import message_on_the_wire
from mailfilter.aws.quarantine import ITEMS
from mailfilter_cli.sam_template import LOCAL_ACCOUNT, LOCAL_REGION, FunctionSpec

# Locally there is no X-Ray daemon to send traces to.
LOCAL_ENVIRONMENT = {"POWERTOOLS_TRACE_DISABLED": "true"}
# What the AWS SDK reads from the environment rather than from the template: where the
# services are, the region and the credentials. The Lambda runtime supplies these in the
# cloud; `mailfilter invoke` takes them from the env-vars file, where `sam local` would
# ignore them because the template does not declare them.
SDK_VARIABLE = re.compile(r"AWS_(ENDPOINT_URL(_[A-Z0-9_]+)?|REGION|DEFAULT_REGION|ACCESS_KEY_ID|SECRET_ACCESS_KEY|SESSION_TOKEN)")
_WATCHED_SERVICES = ("dynamodb", "s3", "sesv2")


def sdk_environment(env_vars: Mapping[str, Any], function_id: str) -> dict[str, str]:
    """The AWS SDK settings of an env-vars document ("Parameters", then the function's section)."""
    values: dict[str, str] = {}
    for section in ("Parameters", function_id):
        for name, value in (env_vars.get(section) or {}).items():
            if SDK_VARIABLE.fullmatch(name):
                values[name] = str(value)
    return values


@dataclass
class LambdaContext:
    """The attributes of the runtime's context object that powertools and the handlers read."""

    function_name: str
    memory_limit_in_mb: int = 512
    timeout_ms: int = 30_000
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = ""
    log_stream_name: str = ""

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{LOCAL_REGION}:{LOCAL_ACCOUNT}:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return self.timeout_ms


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the block, restoring what was there before."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    clients.reset()  # clients read endpoints and region from the environment when made
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        clients.reset()


@dataclass(frozen=True)
class Sent:
    """One message SES accepted: its envelope, subject and SES message id."""

    recipients: tuple[str, ...]
    subject: str
    ses_message_id: str


@dataclass
class Invocation:
    """One invocation: the handler's response (or the exception it raised) and what it did through AWS."""

    function: str
    response: Any = None
    error: BaseException | None = None
    sent: list[Sent] = field(default_factory=list)
    decisions: list[dict[str, Any]] = field(default_factory=list)  # records written to DECISIONS_TABLE, oldest first
    stored: list[str] = field(default_factory=list)  # keys written to MAIL_BUCKET
    idempotency_answered: int = 0  # requests answered from a record already in IDEMPOTENCY_TABLE (done before)
    quarantine_prefix: str = "quarantine/"

    def records(self, kind: str) -> list[dict[str, Any]]:
        return [record for record in self.decisions if record.get("kind") == kind]

    @property
    def quarantined(self) -> list[str]:
        """Ids of the quarantine items written (`<prefix>items/<day>/<id>.json`)."""
        items = f"{self.quarantine_prefix}{ITEMS}"
        return list(dict.fromkeys(key.rsplit("/", 1)[-1].removesuffix(".json") for key in self.stored if key.startswith(items)))


class _Observer:
    """botocore event hooks on the shared clients, reporting to the invocation running now.

    Each client gets the hooks once (one unique id); invocations run one at a time, so
    a module-wide "current" is enough, and it also covers threads the handler starts.
    """

    HOOK_ID = "mailfilter-local-invocation"

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.current: Invocation | None = None
        self.tables: dict[str, str] = {}

    def watch(self, client: BaseClient) -> None:
        client.meta.events.register("before-parameter-build", self._keep_parameters, unique_id=f"{self.HOOK_ID}-params")
        client.meta.events.register("after-call", self._after_call, unique_id=f"{self.HOOK_ID}-result")
        client.meta.events.register("request-created.sesv2.SendEmail", self._keep_message, unique_id=f"{self.HOOK_ID}-message")

    @staticmethod
    def _keep_parameters(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context[_Observer.HOOK_ID] = params

    @staticmethod
    def _keep_message(request: Any, **_: Any) -> None:
        """The raw message as it goes over the wire (the mailer streams it: the parameters hold a placeholder)."""
        with contextlib.suppress(ValueError, KeyError, TypeError):
            request.context[f"{_Observer.HOOK_ID}-raw"] = message_on_the_wire(request)

    def _after_call(self, parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        invocation, params = self.current, context.get(self.HOOK_ID)
        if invocation is None or params is None:
            return
        service, operation = model.service_model.service_name, model.name
        error = (parsed.get("Error") or {}).get("Code")
        with self.lock:
            if (service, operation) == ("sesv2", "SendEmail") and not error:
                invocation.sent.append(_sent(params, context.get(f"{self.HOOK_ID}-raw", b""), parsed.get("MessageId", "")))
            elif (service, operation) == ("s3", "PutObject") and not error and params.get("Bucket") == self.tables.get("MAIL_BUCKET"):
                invocation.stored.append(params.get("Key", ""))
            elif (service, operation) == ("dynamodb", "BatchWriteItem") and not error:
                requests = params.get("RequestItems", {}).get(self.tables.get("DECISIONS_TABLE", ""), [])
                unprocessed = parsed.get("UnprocessedItems", {}).get(self.tables.get("DECISIONS_TABLE", ""), [])
                invocation.decisions.extend(
                    from_item(r["PutRequest"]["Item"]) for r in requests if "PutRequest" in r and r not in unprocessed
                )
            elif (service, operation) == ("dynamodb", "TransactWriteItems") and not error:
                # the gateway's finish: a message's records with its "done" in the ledger
                puts = [action["Put"] for action in params.get("TransactItems", []) if "Put" in action]
                invocation.decisions.extend(
                    from_item(put["Item"]) for put in puts if put["TableName"] == self.tables.get("DECISIONS_TABLE")
                )
            elif (service, operation) == ("dynamodb", "PutItem") and error == "ConditionalCheckFailedException":
                # powertools (inbound) writes an INPROGRESS record only where none is (or it expired);
                # refused, the record of an earlier invocation holds the key and answers.
                item = params.get("Item", {})
                if params.get("TableName") == self.tables.get("IDEMPOTENCY_TABLE") and item.get("status", {}).get("S") == "INPROGRESS":
                    invocation.idempotency_answered += 1
            elif (
                (service, operation) == ("dynamodb", "UpdateItem")
                and error == "ConditionalCheckFailedException"
                and params.get("TableName") == self.tables.get("IDEMPOTENCY_TABLE")
                and parsed.get("Item", {}).get("state", {}).get("S") == "done"
            ):
                # the gateway's ledger claims a message only when it is not done: refused, the first result answers
                invocation.idempotency_answered += 1

    @contextmanager
    def observing(self, invocation: Invocation, environment: Mapping[str, str]) -> Iterator[None]:
        self.tables = {name: environment.get(name, "") for name in ("DECISIONS_TABLE", "IDEMPOTENCY_TABLE", "MAIL_BUCKET")}
        invocation.quarantine_prefix = environment.get("QUARANTINE_PREFIX") or invocation.quarantine_prefix
        for service in _WATCHED_SERVICES:  # the clients the handler will take from the shared registry
            self.watch(clients.client(service))
        self.current = invocation
        try:
            yield
        finally:
            self.current = None
            invocation.decisions.sort(key=lambda record: (record.get("at", ""), record.get("sk", "")))


def _sent(params: Mapping[str, Any], raw: bytes, ses_message_id: str) -> Sent:
    destination = params.get("Destination", {})
    recipients = [*destination.get("ToAddresses", []), *destination.get("CcAddresses", []), *destination.get("BccAddresses", [])]
    if raw:
        subject = message_from_bytes(raw if isinstance(raw, bytes) else raw.encode(), policy=email_policy.default)["Subject"]
    else:
        subject = params.get("Content", {}).get("Simple", {}).get("Subject", {}).get("Data", "")
    return Sent(tuple(recipients), str(subject or ""), ses_message_id)


_observer = _Observer()


class LocalFunction:
    """One function's handler, imported once with its environment and invoked like a warm Lambda."""

    def __init__(self, spec: FunctionSpec) -> None:
        self.spec = spec
        # An empty declared value means "unset" (as boto3 and the settings read it), so it must
        # not hide what the shell sets, such as AWS_ENDPOINT_URL_DYNAMODB for DynamoDB Local.
        declared = {name: value for name, value in spec.environment.items() if value != ""}
        self.environment = {**declared, **LOCAL_ENVIRONMENT, "AWS_LAMBDA_FUNCTION_NAME": spec.logical_id}
        path = spec.code_dir / f"{spec.module.replace('.', '/')}.py"
        if not path.is_file():
            raise FileNotFoundError(f"{spec.logical_id}: no handler module at {path}")
        name = f"_local_{spec.logical_id}_{spec.module}"
        module_spec = importlib.util.spec_from_file_location(name, path)
        self.module: ModuleType = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = self.module
        with environment(self.environment):
            module_spec.loader.exec_module(self.module)
        self.handler = getattr(self.module, spec.handler)

    def invoke(self, event: Any) -> Any:
        invocation = self.run(event)
        if invocation.error is not None:
            raise invocation.error
        return invocation.response

    def run(self, event: Any) -> Invocation:
        """Invoke the handler; the exception it raises, if any, is kept rather than raised, as Lambda reports it."""
        invocation = Invocation(self.spec.logical_id)
        with environment(self.environment), _observer.observing(invocation, self.environment):
            try:
                invocation.response = self.handler(event, LambdaContext(function_name=self.spec.logical_id))
            except Exception as error:
                invocation.error = error
        return invocation


def drain_queue(queue_url: str) -> dict[str, Any]:
    """Every message on a queue, taken off it, as the SQS event Lambda's event source mapping would deliver."""
    sqs = clients.client("sqs")
    records = []
    while messages := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            records.append(
                {
                    "messageId": message["MessageId"],
                    "receiptHandle": message["ReceiptHandle"],
                    "body": message["Body"],
                    "attributes": {"ApproximateReceiveCount": "1"},
                    "messageAttributes": {},
                    "md5OfBody": message.get("MD5OfBody", ""),
                    "eventSource": "aws:sqs",
                    "eventSourceARN": "arn:aws:sqs:local",
                    "awsRegion": os.environ.get("AWS_REGION", "us-east-1"),
                }
            )
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return {"Records": records}
