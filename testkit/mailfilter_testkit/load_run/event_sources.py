"""The event sources, simulated: Lambda's SQS event source mapping for the gateway, SES's synchronous call of the inbound filter.

SQS: generated send requests are kept on the queue (moto) a window at a time, received in
batches of 10 and handed to a free execution environment of the gateway, W at once; records
that succeed are deleted, reported failures and crashed invocations come back after the
visibility timeout and are dead-lettered after maxReceiveCount receives; some batches are
handed to two environments at once.

SES: each receipt event's message is stored where the receipt rule's S3 action puts it, then
the filter's `lambda_handler` is called, some events twice at once and some again afterwards.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import defaultdict
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from types import ModuleType
from typing import Any

from mailfilter_testkit.faults import Crashing, LambdaCrash
from mailfilter_testkit.load_run.lambda_runtime import Context, TraceEntry, gateway_environment, load_module
from mailfilter_testkit.load_run.report import Report
from mailfilter_testkit.load_run.stack import BUCKET, REGION, LoadStack
from mailfilter_testkit.load_run.workload import Inbound, Outbound
from mailfilter_testkit.paths import FUNCTIONS

QUEUE_WINDOW = 300  # send requests waiting in the queue at most


class SqsEventSource:
    """Lambda's event source mapping for the outbound queue, over `config.workers` gateway environments."""

    def __init__(self, stack: LoadStack, report: Report, trace: list[TraceEntry]) -> None:
        self.stack, self.config, self.report, self.trace = stack, stack.config, report, trace
        self.lock = threading.Lock()
        self.crashing: list[Crashing] = []  # every environment's crash points, for the report

    def _environment(self, index: int) -> ModuleType:
        module, crashing = gateway_environment(index, self.config, self.stack.deadline, self.trace, self._count_failure)
        self.crashing.extend(crashing)
        return module

    def _count_failure(self, cause: str) -> None:
        with self.lock:
            self.report.record_failures[cause] += 1

    def run(self, messages: list[Outbound], progress: Any = None) -> None:
        """Every message through the gateway: done when the queue is empty (deleted or dead-lettered)."""
        started = last_progress = time.monotonic()
        deleted = 0
        backlog = iter(range(0, len(messages), 10))

        def top_up() -> None:
            """The vendor's applications keep the queue supplied; moto's queue slows down when it holds thousands."""
            with self.stack.injector.pause():
                while self._in_queue() < QUEUE_WINDOW:
                    start = next(backlog, None)
                    if start is None:
                        return
                    batch = messages[start : start + 10]
                    entries = [{"Id": str(i), "MessageBody": json.dumps(m.request)} for i, m in enumerate(batch)]
                    self.stack.sqs.send_message_batch(QueueUrl=self.stack.queue, Entries=entries)

        environments: list[ModuleType] = [self._environment(i) for i in range(self.config.workers)]
        free = list(environments)
        rng = random.Random(self.config.seed + 2)
        running: dict[Future, tuple[ModuleType, list[dict[str, Any]], bool]] = {}
        with ThreadPoolExecutor(max_workers=self.config.workers) as pool:
            while True:
                done = [f for f in running if f.done()]
                for future in done:
                    environment, records, primary = running.pop(future)
                    free.append(environment)
                    failed = future.result()
                    if primary:
                        handles = [
                            {"Id": str(i), "ReceiptHandle": r["receiptHandle"]}
                            for i, r in enumerate(records)
                            if r["messageId"] not in failed
                        ]
                        if handles:
                            self.stack.sqs.delete_message_batch(QueueUrl=self.stack.queue, Entries=handles)
                            deleted += len(handles)
                if progress and time.monotonic() - last_progress > 30:
                    last_progress = time.monotonic()
                    progress(f"outbound: {deleted:,} of {len(messages):,} done, {self.report.receives:,} receives, {len(running)} running")
                top_up()
                if free:
                    received = self.stack.sqs.receive_message(
                        QueueUrl=self.stack.queue, MaxNumberOfMessages=self.config.batch_size, AttributeNames=["All"]
                    ).get("Messages", [])
                    if received:
                        self.report.receives += len(received)
                        records = [self._sqs_record(m) for m in received]
                        copies = 2 if len(free) >= 2 and rng.random() < self.config.concurrent_rate else 1
                        for copy in range(copies):
                            environment = free.pop()
                            future = pool.submit(self._invoke_gateway, environment, records)
                            running[future] = (environment, records, copy == 0)
                        self.report.concurrent_invocations += copies - 1
                        continue
                    if not running and self._queue_empty():
                        break
                if running:
                    wait(list(running), timeout=0.05, return_when=FIRST_COMPLETED)
                else:
                    time.sleep(0.05)
        self.report.seconds["outbound"] = time.monotonic() - started

    def _in_queue(self) -> int:
        attributes = self.stack.sqs.get_queue_attributes(
            QueueUrl=self.stack.queue, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])

    def _queue_empty(self) -> bool:
        return self._in_queue() == 0

    def _sqs_record(self, message: dict[str, Any]) -> dict[str, Any]:
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": {k: str(v) for k, v in message.get("Attributes", {}).items()},
            "messageAttributes": {},
            "md5OfBody": message["MD5OfBody"],
            "eventSource": "aws:sqs",
            "eventSourceARN": self.stack.queue_arn,
            "awsRegion": REGION,
        }

    def _invoke_gateway(self, module: ModuleType, records: list[dict[str, Any]]) -> set[str]:
        """One invocation; returns the SQS message ids that go back to the queue."""
        context = Context("csp-mail-filter-OutboundGatewayFunction", self.config.timeout_seconds)
        self.stack.deadline.at = context.deadline
        with self.lock:
            self.report.invocations += 1
        try:
            response = module.lambda_handler({"Records": records}, context)
            return {failure["itemIdentifier"] for failure in response.get("batchItemFailures", [])}
        except LambdaCrash:
            return {r["messageId"] for r in records}
        except Exception:  # every record failed (powertools raises), or the handler itself failed
            return {r["messageId"] for r in records}
        finally:
            self.stack.deadline.at = float("inf")


class SesInvocations:
    """SES's receipt rule calling the inbound filter synchronously, with `config.workers` environments at once."""

    def __init__(self, stack: LoadStack, report: Report) -> None:
        self.stack, self.config, self.report = stack, stack.config, report

    def run(self, events: list[Inbound]) -> dict[str, list[Any]]:
        """Every event through the inbound filter; its responses (or what it raised) by message id."""
        started = time.monotonic()
        with self.stack.injector.pause():
            for event in events:
                self.stack.s3.put_object(Bucket=BUCKET, Key=f"inbound/{event.message_id}", Body=event.raw)
        environments = [load_module(FUNCTIONS / "inbound_filter" / "app.py") for _ in range(self.config.workers)]
        local = threading.local()
        claimed = iter(environments)
        lock = threading.Lock()
        responses: dict[str, list[Any]] = defaultdict(list)
        rng = random.Random(self.config.seed + 3)
        plan = []
        for event in events:
            plan.append(event)
            if rng.random() < self.config.concurrent_rate:
                plan.append(event)  # SES invoking the same rule twice at once
                self.report.inbound_redelivered += 1

        def invoke(event: Inbound) -> None:
            if not hasattr(local, "module"):
                with lock:
                    local.module = next(claimed)
            context = Context("csp-mail-filter-InboundFilterFunction", 20)
            try:
                response = local.module.lambda_handler(event.event, context)
            except Exception as error:
                response = error
            with lock:
                responses[event.message_id].append(response)

        with ThreadPoolExecutor(max_workers=self.config.workers) as pool:
            list(pool.map(invoke, plan))
            # and once more afterwards for a few: a late redelivery must change nothing
            late = rng.sample(events, min(len(events), max(1, len(events) // 50)))
            self.report.inbound_redelivered += len(late)
            list(pool.map(invoke, late))
        self.report.seconds["inbound"] = time.monotonic() - started
        return responses
