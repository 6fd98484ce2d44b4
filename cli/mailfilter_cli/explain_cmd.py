"""`mailfilter explain`: what the filter decides for each message of an event, with no side effects.

It runs the functions' own path (event adapter, the gateway's own validation
and reading of send requests, classification, lookup, decision table) and
prints one JSON object per message (JSON Lines), a table, or CSV with one row
per recipient decision. The policy core is imported only when the command runs.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from mailfilter_cli import output, settings

if TYPE_CHECKING:
    from mailfilter.policy.config import Policy
    from mailfilter.ports import Directory, StoredMail
    from mailfilter.vocabulary.model import Verdict

STDIN = "-"
CSV_COLUMNS = (
    "event",
    "message_id",
    "direction",
    "cloud",
    "category",
    "product",
    "mode",
    "recipient",
    "customer",
    "customer_name",
    "action",
    "effective",
    "deliver_to",
    "rule",
    "seed_rule",
    "reason",
)


def event_files(paths: tuple[Path, ...]) -> list[Path]:
    """Files as given; a folder stands for the event files in it, in name order; `-` is standard input."""
    files: list[Path] = []
    for path in paths:
        files.extend(sorted(path.glob("*.json")) if str(path) != STDIN and path.is_dir() else [path])
    return files


def _label(path: Path) -> str:
    return "<stdin>" if str(path) == STDIN else str(path)


def read_event(path: Path) -> Any:
    from mailfilter.events.send_request import decode_json  # noqa: PLC0415

    try:
        text = sys.stdin.buffer.read().decode("utf-8") if str(path) == STDIN else path.read_text(encoding="utf-8")
        return decode_json(text)
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as error:  # a number too long or nesting too deep too
        raise click.ClickException(f"{_label(path)}: cannot read the event: {_one_line(error)}") from None


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def explain_event(data: Any, directory: Directory, policy: Policy, stored: StoredMail | None = None) -> list[Verdict]:
    """The verdict for every message in one event document; `stored` reads the messages a request names by raw_key."""
    from mailfilter.engine import evaluate  # noqa: PLC0415
    from mailfilter.explain.detect import messages_from_event  # noqa: PLC0415

    return [evaluate(message, directory, policy) for message in messages_from_event(data, policy, stored)]


def stored_mail(bucket: str | None) -> StoredMail | None:
    """The mail bucket (--bucket, MAIL_BUCKET or the local env file), when there is one."""
    name = settings.setting("MAIL_BUCKET", bucket)
    if not name:
        return None
    from mailfilter.aws.raw_mail import MailBucket  # noqa: PLC0415

    settings.use_aws_location()
    return MailBucket(name)


def _table(source: Path, verdict: Verdict) -> None:
    c = verdict.classification
    title = (
        f"{'stdin' if str(source) == STDIN else source.name}: {verdict.direction.value} {verdict.message_id}  "
        f"[{c.cloud.value} ({c.cloud_source.value}), {c.category.value} ({c.category_source.value}), "
        f"product {c.product or '-'} ({c.product_source.value}), {verdict.mode.value}]"
    )
    view = output.table("recipient", "customer", "action", "effective", "deliver to", "rule", "reason", title=title, title_justify="left")
    rows = [
        (
            d.recipient,
            d.customer_name or "-",
            d.action.value,
            d.effective.value,
            "\n".join(d.deliver_to) or "(quarantine)",
            d.rule if d.seed_rule is None else f"{d.rule} (rule {d.seed_rule})",
            d.reason,
        )
        for d in verdict.decisions
    ]
    output.print_table(output.fit(view, rows, keep_whole=(0,)))


def _csv_rows(source: Path, verdict: Verdict) -> list[list[Any]]:
    c = verdict.classification
    return [
        [
            _label(source),
            verdict.message_id,
            verdict.direction.value,
            c.cloud.value,
            c.category.value,
            c.product,
            verdict.mode.value,
            d.recipient,
            d.customer,
            d.customer_name,
            d.action.value,
            d.effective.value,
            list(d.deliver_to),
            d.rule,
            d.seed_rule,
            d.reason,
        ]
        for d in verdict.decisions
    ]


def load_directory(directory_file: Path | None, table: str | None = None) -> Directory:
    """The file when one is given (offline); otherwise the DynamoDB table (--table, DIRECTORY_TABLE or the local env file)."""
    if directory_file is None:
        name = settings.setting("DIRECTORY_TABLE", table)
        if name:
            from mailfilter.aws.directory_table import DynamoDirectory  # noqa: PLC0415

            settings.use_aws_location()
            return DynamoDirectory(name)
        raise click.UsageError("give --directory FILE.jsonl, or --table (or DIRECTORY_TABLE) to read the directory from DynamoDB")
    from mailfilter.directory.load import DirectoryFileError  # noqa: PLC0415
    from mailfilter.directory.memory import InMemoryDirectory  # noqa: PLC0415

    try:
        return InMemoryDirectory.from_file(directory_file)
    except (OSError, DirectoryFileError) as error:
        raise click.ClickException(str(error)) from None


@click.command()
@click.argument("events", nargs=-1, required=True, type=click.Path(exists=True, allow_dash=True, path_type=Path))
@click.option(
    "--directory", "directory_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Directory JSON Lines file."
)
@click.option("--table", envvar="DIRECTORY_TABLE", show_envvar=True, help="Directory table in DynamoDB (used when no --directory).")
@click.option(
    "--policy", "policy_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Policy TOML file (default: shipped)."
)
@click.option("--bucket", envvar="MAIL_BUCKET", show_envvar=True, help="Mail bucket, to read the messages requests name by raw_key.")
@output.format_option(output.JSON, output.TABLE, output.CSV, default=output.JSON)
def explain(
    events: tuple[Path, ...],
    directory_file: Path | None,
    table: str | None,
    policy_file: Path | None,
    bucket: str | None,
    output_format: str,
) -> None:
    """Explain what the filter decides for each message in EVENTS (files, folders of *.json, or - for stdin).

    Accepts SES receipt-rule events, outbound send requests (alone or in an SQS
    event) and EventBridge SES "Email Sent" events. json: one object per
    message; csv: one row per recipient. An event the functions would refuse
    is reported with the functions' words, and the exit status is 1.
    """
    from mailfilter.policy.config import load_policy  # noqa: PLC0415
    from mailfilter.vocabulary.errors import DirectoryUnavailable, EventError, PolicyFileError  # noqa: PLC0415

    if sum(str(path) == STDIN for path in events) > 1:
        raise click.BadParameter("standard input (-) can be read once", param_hint="EVENTS")
    try:
        policy = load_policy(policy_file)
    except PolicyFileError as error:
        raise click.ClickException(str(error)) from None
    directory = load_directory(directory_file, table)
    stored = stored_mail(bucket)
    if output_format == output.CSV:
        output.csv_rows(CSV_COLUMNS, ())
    for path in event_files(events):
        try:
            verdicts = explain_event(read_event(path), directory, policy, stored)
        except EventError as error:
            raise click.ClickException(f"{_label(path)}: {_one_line(error)}") from None
        except DirectoryUnavailable as error:
            raise click.ClickException(str(error)) from None
        for verdict in verdicts:
            if output_format == output.JSON:
                output.json_line(verdict.as_dict())
            elif output_format == output.CSV:
                output.csv_rows((), _csv_rows(path, verdict))
            else:
                _table(path, verdict)
