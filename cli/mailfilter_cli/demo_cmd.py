"""`mailfilter demo`: the whole filter on embedded AWS services, no account and no Docker needed.

The services and resources are `mailfilter local up`'s own (`local_cmd.services`
and `create_resources`), run in this process: AWS's DynamoDB Local when Java and
the jar are installed (moto's DynamoDB otherwise) and moto's server for S3, SES
and SQS; every table, bucket, queue and identity of template.yaml; the sample
directory imported with `mailfilter directory import`'s code; the inbound
samples' raw messages where the receipt rule stores them. Every sample event
then goes through the real handler, as Lambda would call it. The report shows,
per message, each recipient's decision and where the mail actually went: what
SES accepted and what is in quarantine.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from mailfilter_cli.local_events import AUDIT, GATEWAY, INBOUND, SMTP, function_for
from mailfilter_cli.local_lambda import LocalFunction, drain_queue, environment
from mailfilter_cli.local_services import services
from mailfilter_cli.local_stack import create_resources
from mailfilter_cli.sam_template import function_spec, project_root


@dataclass
class Outcome:
    event: Path
    function: str
    response: Any
    decisions: list[dict[str, Any]] = field(default_factory=list)
    sent: list[tuple[list[str], str]] = field(default_factory=list)  # (envelope recipients, subject)
    quarantined: list[str] = field(default_factory=list)


def run_event(path: Path, functions: dict[str, LocalFunction]) -> Outcome | None:
    """One sample event through the function its source would deliver it to (its raw message is already stored)."""
    event = json.loads(path.read_text(encoding="utf-8"))
    function_id = function_for(event)
    if function_id is None:
        return None
    invocation = functions[function_id].run(event)
    if invocation.error is None and function_id == SMTP:
        # The intake queued a send request; SQS would hand it to the gateway, and here the demo does.
        invocation = functions[GATEWAY].run(drain_queue(functions[SMTP].environment["OUTBOUND_QUEUE_URL"]))
        function_id = f"{SMTP} → {GATEWAY}"
    if invocation.error is not None:
        raise invocation.error
    outcome = Outcome(path, function_id, invocation.response, decisions=invocation.decisions, quarantined=invocation.quarantined)
    outcome.sent = [(sorted(set(sent.recipients)), sent.subject) for sent in invocation.sent]
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
@click.option(
    "--events", "events_dir", type=click.Path(exists=True, file_okay=False, path_type=Path), help="Default: the project's events/."
)
@click.option("--directory", "directory_file", type=click.Path(exists=True, path_type=Path), help="Default: events/directory.jsonl.")
@click.option(
    "--dynamodb", type=click.Choice(["local", "moto"]), default="local", show_default=True, help="DynamoDB Local (needs Java) or moto."
)
@click.option("--log-file", type=click.Path(dir_okay=False, path_type=Path), help="Default: .demo-function-logs.jsonl in the project.")
@click.option(
    "--report",
    "report_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write `mailfilter report` of the demo's decisions.",
)
def demo(events_dir: Path | None, directory_file: Path | None, dynamodb: str, log_file: Path | None, report_file: Path | None) -> None:
    """Run every sample event through the real functions on embedded AWS services, and report."""
    root = project_root()
    events_dir = events_dir or root / "events"
    directory_file = directory_file or events_dir / "directory.jsonl"
    log_file = log_file or root / ".demo-function-logs.jsonl"
    # The report goes to the terminal; the functions' own structured logs and metrics, which
    # powertools writes to standard output, go to the log file.
    console = Console(file=sys.stdout, width=None if sys.stdout.isatty() else 180)
    with (
        services(dynamodb) as running,
        environment(running.environment()),
        log_file.open("w", encoding="utf-8") as log,
        contextlib.redirect_stdout(log),
    ):
        console.print(f"Embedded AWS: {running.database}; moto's S3, SES and SQS at {running.moto}. Function logs: {log_file}")
        made = create_resources(directory_file, events_dir)
        started = datetime.now(UTC) - timedelta(minutes=1)
        functions = {name: LocalFunction(function_spec(name, {"Parameters": made.variables})) for name in (INBOUND, GATEWAY, AUDIT, SMTP)}
        outcomes = [outcome for path in sorted(events_dir.glob("*.json")) if (outcome := run_event(path, functions))]
        for outcome in outcomes:
            report(console, outcome)
        console.rule("[bold]summary")
        console.print(summary(outcomes))
        if report_file is not None:
            write_report(report_file, made.variables, started)
            console.print(f"report of the demo's decisions: {report_file} (`mailfilter report`; opens with no network)")


def write_report(path: Path, variables: dict[str, str], since: datetime) -> None:
    """`mailfilter report` over what the demo recorded: its decisions table and its quarantine."""
    from mailfilter_cli.report import render_html  # noqa: PLC0415
    from mailfilter_cli.report_cmd import gather  # noqa: PLC0415

    gathered = gather(variables["DECISIONS_TABLE"], variables["MAIL_BUCKET"], variables.get("QUARANTINE_PREFIX"), since, None)
    path.write_text(render_html(gathered, title="csp-mail-filter report: the demo's decisions"), encoding="utf-8")


def summary(outcomes: list[Outcome]) -> str:
    """One line over the whole run: recipients by outcome, and where mail went."""
    by_outcome = Counter(
        d["kind"] if d.get("kind") not in (None, "decision") else d.get("effective") for o in outcomes for d in o.decisions
    )
    counts = ", ".join(f"{count} {name}" for name, count in sorted(by_outcome.items()))
    sent = sum(len(o.sent) for o in outcomes)
    held = sum(len(o.quarantined) for o in outcomes)
    return f"{len(outcomes)} events; recipient decisions: {counts}; {sent} messages sent by SES; {held} kept in quarantine"
