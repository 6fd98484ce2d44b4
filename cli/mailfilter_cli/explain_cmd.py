"""`mailfilter explain`: what the filter decides for each message of an event, with no side effects.

It runs the functions' own path (event adapter, the gateway's own validation
and reading of send requests, classification, lookup, decision table) and
prints one JSON object per message, or a table.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from mailfilter.aws.directory_table import DirectoryUnavailable, DynamoDirectory
from mailfilter.directory import Directory
from mailfilter.directory.load import DirectoryFileError
from mailfilter.directory.memory import InMemoryDirectory
from mailfilter.engine import evaluate
from mailfilter.events import EventError
from mailfilter.events.detect import messages_from_event
from mailfilter.events.send_request import decode_json
from mailfilter.model import Verdict
from mailfilter.policy.config import Policy, PolicyFileError, load_policy


def event_files(paths: tuple[Path, ...]) -> list[Path]:
    """Files as given; a folder stands for the event files in it, in name order."""
    files: list[Path] = []
    for path in paths:
        files.extend(sorted(path.glob("*.json")) if path.is_dir() else [path])
    return files


def read_event(path: Path) -> Any:
    try:
        return decode_json(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as error:  # a number too long or nesting too deep too
        raise click.ClickException(f"{path}: cannot read the event: {_one_line(error)}") from None


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def explain_event(data: Any, directory: Directory, policy: Policy) -> list[Verdict]:
    """The verdict for every message in one event document."""
    return [evaluate(message, directory, policy) for message in messages_from_event(data, policy)]


def _table(console: Console, source: Path, verdict: Verdict) -> None:
    c = verdict.classification
    title = (
        f"{source.name}: {verdict.direction.value} {verdict.message_id}  "
        f"[{c.cloud.value} ({c.cloud_source.value}), {c.category.value} ({c.category_source.value}), "
        f"product {c.product or '-'} ({c.product_source.value}), {verdict.mode.value}]"
    )
    table = Table(title=title, title_justify="left", show_lines=False)
    for column in ("recipient", "customer", "action", "effective", "deliver to", "rule", "reason"):
        table.add_column(column, overflow="fold")
    for d in verdict.decisions:
        table.add_row(
            d.recipient,
            d.customer_name or "-",
            d.action.value,
            d.effective.value,
            "\n".join(d.deliver_to) or "(quarantine)",
            d.rule if d.seed_rule is None else f"{d.rule} (rule {d.seed_rule})",
            d.reason,
        )
    console.print(table)


def load_directory(directory_file: Path | None, table: str | None = None) -> Directory:
    """The file when one is given (offline); otherwise the DynamoDB table (--table or DIRECTORY_TABLE)."""
    if directory_file is None:
        if table:
            return DynamoDirectory(table)
        raise click.UsageError("give --directory FILE.jsonl, or --table (or DIRECTORY_TABLE) to read the directory from DynamoDB")
    try:
        return InMemoryDirectory.from_file(directory_file)
    except (OSError, DirectoryFileError) as error:
        raise click.ClickException(str(error)) from None


@click.command()
@click.argument("events", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--directory", "directory_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Directory JSON Lines file."
)
@click.option("--table", envvar="DIRECTORY_TABLE", show_envvar=True, help="Directory table in DynamoDB (used when no --directory).")
@click.option(
    "--policy", "policy_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Policy TOML file (default: shipped)."
)
@click.option("--format", "output", type=click.Choice(["json", "table"]), default="json", show_default=True)
def explain(events: tuple[Path, ...], directory_file: Path | None, table: str | None, policy_file: Path | None, output: str) -> None:
    """Explain what the filter decides for each message in EVENTS (files, or folders of *.json).

    Accepts SES receipt-rule events, outbound send requests (alone or in an SQS
    event) and EventBridge SES "Email Sent" events.
    """
    try:
        policy = load_policy(policy_file)
    except PolicyFileError as error:
        raise click.ClickException(str(error)) from None
    directory = load_directory(directory_file, table)
    console = Console(width=None if sys.stdout.isatty() else 200)  # a report in a file or CI log reads wide
    for path in event_files(events):
        try:
            verdicts = explain_event(read_event(path), directory, policy)
        except EventError as error:
            raise click.ClickException(f"{path}: {_one_line(error)}") from None
        except DirectoryUnavailable as error:
            raise click.ClickException(str(error)) from None
        for verdict in verdicts:
            if output == "json":
                click.echo(json.dumps(verdict.as_dict(), ensure_ascii=False))
            else:
                _table(console, path, verdict)
