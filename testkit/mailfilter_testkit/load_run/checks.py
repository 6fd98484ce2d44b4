"""The checks: what SES sent, S3 quarantined, the decisions table holds and the dead-letter queue kept, held to the oracle.

Every message must have gone where the oracle says and nowhere else (violations), once
(duplicate sends), with its records and quarantine (lost, unless it was dead-lettered or,
inbound, deferred), and every inbound invocation must have answered with a disposition.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections import Counter, defaultdict
from email import message_from_string
from email.utils import getaddresses
from typing import Any

from moto.ses.models import ses_backends

from mailfilter_testkit.load_run.lambda_runtime import TraceEntry
from mailfilter_testkit.load_run.report import Report
from mailfilter_testkit.load_run.stack import ACCOUNT, BUCKET, FILTER_FROM, REGION, LoadStack
from mailfilter_testkit.load_run.workload import Inbound, Outbound

Sent = tuple[str, str, set[str], Any]  # (message id token, source, envelope recipients, parsed message)


def sent_by_ses() -> list[Sent]:
    """(token, source, recipients, parsed message) of everything moto's SES accepted."""
    found = []
    token = re.compile(r"\bl(?:out|in)-\d{6}\b")
    for message in ses_backends[ACCOUNT][REGION].sent_messages:
        raw = message.raw_data
        match = token.search(raw)
        recipients = {address.lower() for _, address in getaddresses(list(message.destinations)) if address}
        found.append((match.group(0) if match else "?", message.source, recipients, message_from_string(raw)))
    return found


def decision_records(stack: LoadStack) -> dict[str, dict[str, dict[str, Any]]]:
    """message id -> sort key -> record, for every item of the decisions table."""
    records: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    paginator = stack.dynamodb.get_paginator("scan")
    names = {"#pk": "pk", "#sk": "sk", "#action": "action", "#effective": "effective", "#kind": "kind"}
    for page in paginator.paginate(
        TableName=stack.tables["DecisionsTable"],
        ProjectionExpression="#pk, #sk, #action, #effective, #kind",
        ExpressionAttributeNames=names,
    ):
        for item in page["Items"]:
            plain = {k: v.get("S") for k, v in item.items()}
            records[plain["pk"].removeprefix("msg#")][plain["sk"]] = plain
    return records


def quarantined(stack: LoadStack) -> dict[str, list[dict[str, Any]]]:
    items: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for page in stack.s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="quarantine/items/"):
        for entry in page.get("Contents", []):
            item = json.loads(stack.s3.get_object(Bucket=BUCKET, Key=entry["Key"])["Body"].read())
            items[item["message_id"].split("#", 1)[0]].append(item)
    return items


def dead_letters(stack: LoadStack) -> set[str]:
    found = set()
    while True:
        batch = stack.sqs.receive_message(QueueUrl=stack.dlq, MaxNumberOfMessages=10, VisibilityTimeout=600).get("Messages", [])
        if not batch:
            return found
        found.update(json.loads(m["Body"])["message_id"] for m in batch)


class Checker:
    """Holds each generated message to what the run left behind; what it finds goes into `report`."""

    def __init__(self, report: Report, trace: list[TraceEntry]) -> None:
        self.report = report
        self.trace = trace  # the gateway environments' mailer and ledger calls, to tell the known unsafe window from a bug

    def check(self, stack: LoadStack, outbound: list[Outbound], inbound: list[Inbound], responses: dict[str, list[Any]]) -> Report:
        """Read what the run left behind, with faults paused, and hold every message to the oracle."""
        started = time.monotonic()
        report = self.report
        with stack.injector.pause():
            # One more receive moves what has reached maxReceiveCount to the dead-letter queue.
            stack.sqs.receive_message(QueueUrl=stack.queue, MaxNumberOfMessages=10, VisibilityTimeout=0)
            sends = sent_by_ses()
            records = decision_records(stack)
            quarantine = quarantined(stack)
            dead = dead_letters(stack)
        by_token: dict[str, list[tuple[str, set[str], Any]]] = defaultdict(list)
        for token, source, recipients, message in sends:
            by_token[token].append((source, recipients, message))
        report.messages, report.inbound = len(outbound), len(inbound)
        report.recipients = sum(len(m.expected) for m in outbound)
        report.dead_lettered = len(dead)
        for message in outbound:
            self.check_outbound(message, by_token.get(message.message_id, []), records.get(message.message_id, {}),
                                quarantine.get(message.message_id, []), message.message_id in dead)  # fmt: skip
        for event in inbound:
            self.check_inbound(event, by_token.get(event.message_id, []), records.get(event.message_id, {}),
                               quarantine.get(event.message_id, []), responses.get(event.message_id, []))  # fmt: skip
        report.seconds["check"] = time.monotonic() - started
        return report

    def check_outbound(
        self,
        m: Outbound,
        sends: list[tuple[str, set[str], Any]],
        records: dict[str, dict[str, Any]],
        kept: list[dict[str, Any]],
        dead: bool,
    ) -> None:
        report, mid = self.report, m.message_id
        sender = m.request["from"]
        allowed_counts: Counter[str] = Counter()
        group_counts: Counter[tuple[str | None, frozenset[str]]] = Counter()
        groups = m.groups()
        customers = set(m.expected)
        for source, recipients, message in sends:
            if source == sender:
                for recipient in recipients:
                    if recipient not in m.allowed:
                        report.violations.append(f"{mid}: {recipient} received the message; the rules say {m.expected.get(recipient)}")
                    allowed_counts[recipient] += 1
            elif source == FILTER_FROM:
                key = (message["X-CSP-Mail-Filter-Customer"], frozenset(recipients))
                if key not in groups or recipients & customers:
                    report.violations.append(f"{mid}: a partner notice went to {sorted(recipients)} for {key[0]}, not expected")
                group_counts[key] += 1
            else:
                report.violations.append(f"{mid}: sent from {source}")
        duplicates = [r for r, n in allowed_counts.items() if n > 1] + [f"notice {k[0]}" for k, n in group_counts.items() if n > 1]
        if duplicates:
            if self.stopped_between_send_and_marker(mid):
                report.unsafe_window_duplicates.append(f"{mid}: sent more than once to {duplicates[:3]}")
            else:
                report.duplicate_sends.append(f"{mid}: sent more than once to {duplicates[:3]}")
                if os.environ.get("RELIABILITY_TRACE"):
                    for entry in (e for e in self.trace if e[2] == mid):
                        print("trace", entry, file=sys.stderr)
        for recipient, expected in m.expected.items():
            record = records.get(f"decision#{recipient}")
            if record is not None and record["action"] != expected.action:
                report.violations.append(f"{mid}: {recipient} recorded {record['action']}, the rules say {expected.action}")
        if dead:
            return  # in the dead-letter queue, its request intact; whatever it sent was checked above
        missing = [r for r in m.allowed if allowed_counts[r] == 0]
        missing += [f"notice {k[0]}" for k in groups if group_counts[k] == 0]
        kept_recipients = {r for item in kept for r in item["recipients"]}
        missing += [f"quarantine {r}" for r in m.blocked - kept_recipients]
        missing += [f"record {r}" for r in m.expected if f"decision#{r}" not in records]
        if missing:
            report.lost.append(f"{mid}: processed but missing {missing[:3]} ({len(missing)} in all)")

    def stopped_between_send_and_marker(self, mid: str) -> bool:
        """Did an invocation die after SES accepted a send of `mid` and before that send's marker was written?

        That is the one window exactly-once cannot close (SES takes no idempotency key): the
        retry cannot know whether the send went out, and sends it again. A send's marker is a
        mark, or for the last send of a message the finish (which writes it with the records).
        """
        last_send_ok: dict[int, bool] = {}
        for _, environment, key, what, outcome in self.trace:
            if key != mid:
                continue
            if what.startswith("Mailer.send"):
                last_send_ok[environment] = outcome == "ok"
            elif what.startswith(("MessageLedger.mark", "MessageLedger.finish")):
                if last_send_ok.get(environment) and outcome != "ok":
                    return True
                last_send_ok[environment] = False
            elif what.startswith("MessageLedger.claim") and last_send_ok.get(environment):
                return True  # the environment's next invocation began: the one before stopped after an unmarked send
        return any(last_send_ok.values())  # a send with no marker call after it: stopped right there

    def check_inbound(
        self,
        e: Inbound,
        sends: list[tuple[str, set[str], Any]],
        records: dict[str, dict[str, Any]],
        kept: list[dict[str, Any]],
        responses: list[Any],
    ) -> None:
        report, mid = self.report, e.message_id
        for response in responses:
            if not isinstance(response, dict) or "disposition" not in response:
                report.unhandled_exceptions.append(f"{mid}: {type(response).__name__}: {str(response)[:200]}")
        expected_groups = {frozenset(x.contacts) for x in e.expected.values() if x.action == "reroute"}
        forwards: Counter[frozenset[str]] = Counter()
        for source, recipients, _ in sends:
            key = frozenset(recipients)
            if source != FILTER_FROM or key not in expected_groups:
                report.violations.append(f"{mid}: inbound forwarded to {sorted(recipients)}; the rules say {e.expected}")
            forwards[key] += 1
        if any(n > 1 for n in forwards.values()):
            report.duplicate_sends.append(f"{mid}: forwarded more than once: {forwards}")
        allowed = any(x.action == "allow" for x in e.expected.values())
        deferred = any(k.startswith("deferred#") for k in records)
        if deferred:
            report.inbound_deferred += 1
        for response in responses:
            if isinstance(response, dict) and response.get("disposition") == "CONTINUE" and not allowed:
                report.violations.append(f"{mid}: CONTINUE (desks receive it) though no desk is allowed: {e.expected}")
        for desk, expected in e.expected.items():
            record = records.get(f"decision#{desk}")
            if record is not None and record["action"] != expected.action:
                report.violations.append(f"{mid}: {desk} recorded {record['action']}, the rules say {expected.action}")
        if deferred:
            return
        missing = [f"record {d}" for d in e.expected if f"decision#{d}" not in records]
        missing += [f"forward {sorted(g)}" for g in expected_groups if forwards[g] == 0]
        blocked = {d for d, x in e.expected.items() if x.action == "block"}
        kept_desks = {r for item in kept for r in item["recipients"]}
        missing += [f"quarantine {d}" for d in blocked - kept_desks]
        if missing:
            report.lost.append(f"{mid}: neither handled nor deferred: missing {missing[:3]}")
