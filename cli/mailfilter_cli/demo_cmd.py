"""`mailfilter demo`: the whole filter on embedded AWS services, no account and no Docker needed.

DynamoDB is AWS's DynamoDB Local when Java and the jar are installed (moto's
otherwise); S3, SES and SQS are moto's. Tables come from template.yaml, the
sample directory is imported with `mailfilter directory import`'s own code,
and every sample event goes through the real handler, as Lambda would call
it. The report shows, per message, each recipient's decision and where the
mail actually went: what SES sent and what is in quarantine.
"""

from __future__ import annotations

import contextlib
import json
import re
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_string
from email import policy as email_policy
from pathlib import Path
from typing import Any

import boto3
import click
from moto import mock_aws
from moto.ses.models import ses_backends
from rich.console import Console
from rich.table import Table

from mailfilter.aws import clients
from mailfilter.aws.decisions import DecisionLog
from mailfilter.aws.quarantine import Quarantine
from mailfilter.events.send_request import parse_send_request
from mailfilter_cli.directory_ops import import_directory
from mailfilter_cli.dynamodb_local import DynamoDBLocalError, dynamodb_local
from mailfilter_cli.local_lambda import LocalFunction, environment
from mailfilter_cli.sam_template import LOCAL_ACCOUNT, LOCAL_REGION, ROOT, create_table, function_spec

BUCKET = "csp-mail-filter-demo"
TABLES = ("DirectoryTable", "DecisionsTable", "IdempotencyTable")
INBOUND, GATEWAY, AUDIT = "InboundFilterFunction", "OutboundGatewayFunction", "OutboundAuditFunction"


def function_for(event: Any) -> str | None:
    """Which function of the template takes this event, as its event source would deliver it."""
    if not isinstance(event, dict):
        return None
    records = event.get("Records")
    if isinstance(records, list) and records and isinstance(records[0], dict):
        return {"aws:ses": INBOUND, "aws:sqs": GATEWAY}.get(records[0].get("eventSource"))
    return AUDIT if event.get("source") == "aws.ses" else None


def message_ids(event: dict[str, Any]) -> list[str]:
    """The ids under which the functions record this event's messages."""
    if function_for(event) == INBOUND:
        return [event["Records"][0]["ses"]["mail"]["messageId"]]
    if function_for(event) == AUDIT:
        return [event["detail"]["mail"]["messageId"]]
    ids = []
    for record in event["Records"]:
        ids.append(record.get("messageId", ""))
        with contextlib.suppress(ValueError, TypeError, KeyError):  # an unreadable body is recorded under the SQS id
            body = json.loads(record["body"])
            ids.append(body.get("message_id") or "")
            ids.append(parse_send_request(body).effective_message_id)
    return list(dict.fromkeys(i for i in ids if i))


@dataclass
class Outcome:
    event: Path
    function: str
    response: Any
    decisions: list[dict[str, Any]] = field(default_factory=list)
    sent: list[tuple[list[str], str]] = field(default_factory=list)  # (envelope recipients, subject)
    quarantined: list[str] = field(default_factory=list)


@contextlib.contextmanager
def embedded_aws(use_dynamodb_local: bool) -> Iterator[str]:
    """moto for every service; DynamoDB requests pass through to DynamoDB Local when it runs. Yields its name."""
    with contextlib.ExitStack() as stack:
        passthrough: list[str] = []
        database = "moto's DynamoDB"
        if use_dynamodb_local:
            try:
                endpoint = stack.enter_context(dynamodb_local())
            except DynamoDBLocalError as error:
                click.echo(f"DynamoDB Local is not available ({error}); using moto's DynamoDB instead.", err=True)
            else:
                stack.enter_context(environment({"AWS_ENDPOINT_URL_DYNAMODB": endpoint}))
                passthrough.append(re.escape(endpoint) + ".*")
                database = f"AWS DynamoDB Local at {endpoint}"
        stack.enter_context(environment({"AWS_ACCESS_KEY_ID": "demo", "AWS_SECRET_ACCESS_KEY": "demo", "AWS_DEFAULT_REGION": LOCAL_REGION}))
        stack.enter_context(mock_aws(config={"core": {"passthrough": {"urls": passthrough, "services": []}}}))
        clients.reset()
        yield database
        clients.reset()


def create_resources(directory_file: Path) -> dict[str, str]:
    """Tables as the template defines them, the mail bucket, verified identities, the sample directory."""
    for name in TABLES:
        create_table(clients.client("dynamodb"), name, name)
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    boto3.client("ses").verify_domain_identity(Domain="vendor.example")
    import_directory(directory_file, "DirectoryTable")
    return {"MAIL_BUCKET": BUCKET}


def run_event(path: Path, functions: dict[str, LocalFunction]) -> Outcome | None:
    event = json.loads(path.read_text(encoding="utf-8"))
    function_id = function_for(event)
    if function_id is None:
        return None
    sent_before = len(ses_backends[LOCAL_ACCOUNT][LOCAL_REGION].sent_messages)
    quarantine = Quarantine(BUCKET)
    held_before = set(quarantine.ids())
    if function_id == INBOUND:  # the receipt rule's S3 action stores the raw message first
        raw = path.with_suffix(".eml")
        boto3.client("s3").put_object(Bucket=BUCKET, Key=f"inbound/{message_ids(event)[0]}", Body=raw.read_bytes())
    response = functions[function_id].invoke(event)
    outcome = Outcome(path, function_id, response)
    for message_id in message_ids(event):
        outcome.decisions.extend(DecisionLog("DecisionsTable").for_message(message_id))
    for message in ses_backends[LOCAL_ACCOUNT][LOCAL_REGION].sent_messages[sent_before:]:
        raw_data = getattr(message, "raw_data", "") or ""
        subject = message_from_string(raw_data, policy=email_policy.default)["Subject"] if raw_data else getattr(message, "subject", "")
        outcome.sent.append((sorted(set(message.destinations)), str(subject or "")))
    outcome.quarantined = sorted(set(quarantine.ids()) - held_before)
    return outcome


def report(console: Console, outcome: Outcome) -> None:
    response = json.dumps(outcome.response, default=str)
    console.rule(f"[bold]{outcome.event.name}[/] → {outcome.function}: {response}")
    if not outcome.decisions:
        console.print("  no decision recorded (nothing for the filter to decide)")
    table = Table(show_header=True, header_style="bold", expand=False)
    for column in ("message", "recipient", "action", "effective", "rule", "reason"):
        table.add_column(column, overflow="fold")
    for d in outcome.decisions:
        table.add_row(
            d.get("message_id", ""),
            d.get("recipient", ""),
            d.get("kind") if d.get("kind") not in (None, "decision") else d.get("action", ""),
            d.get("effective", "-"),
            d.get("rule", "-"),
            d.get("reason") or d.get("error", ""),
        )
    if outcome.decisions:
        console.print(table)
    for recipients, subject in outcome.sent:
        console.print(f"  SES sent to {', '.join(recipients)}: {subject}")
    for item in outcome.quarantined:
        console.print(f"  quarantined: {item}")
    if not outcome.sent and not outcome.quarantined:
        console.print("  nothing sent, nothing quarantined")


@click.command()
@click.option("--events", "events_dir", default=ROOT / "events", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--directory", "directory_file", default=ROOT / "events" / "directory.jsonl", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--dynamodb", type=click.Choice(["local", "moto"]), default="local", show_default=True, help="DynamoDB Local (needs Java) or moto."
)
@click.option("--log-file", default=ROOT / ".demo-function-logs.jsonl", type=click.Path(dir_okay=False, path_type=Path))
def demo(events_dir: Path, directory_file: Path, dynamodb: str, log_file: Path) -> None:
    """Run every sample event through the real functions on embedded AWS services, and report."""
    # The report goes to the terminal; the functions' own structured logs and metrics, which
    # powertools writes to standard output, go to the log file.
    console = Console(file=sys.stdout, width=None if sys.stdout.isatty() else 180)
    with (
        embedded_aws(dynamodb == "local") as database,
        log_file.open("w", encoding="utf-8") as log,
        contextlib.redirect_stdout(log),
    ):
        console.print(f"Embedded AWS: {database}; moto's S3, SES and SQS. Function logs: {log_file}")
        overrides = create_resources(directory_file)
        functions = {name: LocalFunction(function_spec(name, {"Parameters": overrides})) for name in (INBOUND, GATEWAY, AUDIT)}
        outcomes = [outcome for path in sorted(events_dir.glob("*.json")) if (outcome := run_event(path, functions))]
        for outcome in outcomes:
            report(console, outcome)
        console.rule("[bold]summary")
        console.print(summary(outcomes))


def summary(outcomes: list[Outcome]) -> str:
    """One line over the whole run: recipients by outcome, and where mail went."""
    by_outcome = Counter(
        d["kind"] if d.get("kind") not in (None, "decision") else d.get("effective") for o in outcomes for d in o.decisions
    )
    counts = ", ".join(f"{count} {name}" for name, count in sorted(by_outcome.items()))
    sent = sum(len(o.sent) for o in outcomes)
    held = sum(len(o.quarantined) for o in outcomes)
    return f"{len(outcomes)} events; recipient decisions: {counts}; {sent} messages sent by SES; {held} kept in quarantine"
