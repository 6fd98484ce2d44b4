"""`mailfilter directory`: load, export, inspect and count the customer directory in DynamoDB.

boto3, pydantic and rich are imported only when a subcommand runs: `--help` needs none of them.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from mailfilter.vocabulary.model import Cloud
from mailfilter_cli import output, settings
from mailfilter_cli.directory_output import match_dict, progress_bar, show_match

STDIN = "-"
STAT_COLUMNS = ("partners", "customers", "CSP customers", "address entries", "domain entries")

table_option = click.option(
    "--table",
    envvar="DIRECTORY_TABLE",
    show_envvar=True,
    help="The directory table (the stack's DirectoryTable); else from .mailfilter/local.env.json.",
)


def _table_name(table: str | None) -> str:
    name = settings.require("DIRECTORY_TABLE", table, flag="--table", what="directory table")
    settings.use_aws_location()
    return name


def _aws_errors() -> tuple[type[Exception], ...]:
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

    from mailfilter.vocabulary.errors import BatchIncompleteError, DirectoryUnavailable  # noqa: PLC0415

    return ClientError, BotoCoreError, BatchIncompleteError, DirectoryUnavailable


def _aws_failure(error: Exception) -> click.ClickException:
    return click.ClickException(f"DynamoDB: {error}")


def _snake(name: str) -> str:
    return name.lower().replace(" ", "_")


@contextmanager
def _readable(file: Path) -> Iterator[tuple[Path, str]]:
    """The file and the name problems are reported under; standard input is copied to a temporary file first.

    Import reads its file twice (validation, then writing) and never holds it in memory.
    """
    if str(file) != STDIN:
        yield file, str(file)
        return
    with tempfile.TemporaryDirectory(prefix="mailfilter-import-") as folder:
        copy = Path(folder) / "stdin.jsonl"
        with copy.open("wb") as out:
            shutil.copyfileobj(sys.stdin.buffer, out)
        yield copy, "<stdin>"


@click.group()
def directory() -> None:
    """Load, export and inspect the customer directory in DynamoDB."""


@directory.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, allow_dash=True, path_type=Path))
@table_option
@click.option("--prune", is_flag=True, help="Also delete customers, partners and entries the file no longer has.")
@click.option("--dry-run", is_flag=True, help="Validate and count what would change; write nothing.")
@click.option("--workers", default=8, show_default=True, type=click.IntRange(1, 64), help="Parallel writers.")
@output.format_option(output.TABLE, output.JSON)
def import_cmd(file: Path, table: str | None, prune: bool, dry_run: bool, workers: int, output_format: str) -> None:
    """Validate FILE (JSON Lines; - for stdin) as a whole, then make the table match it.

    Nothing is written if any line is invalid (every problem is listed as
    file:line: field: problem, and the exit status is 1). Re-importing the same
    file writes nothing; a customer whose addresses or domains changed loses the old ones.
    """
    name = _table_name(table)
    from mailfilter.directory.load import DirectoryFileError  # noqa: PLC0415
    from mailfilter_cli.directory_import import import_directory  # noqa: PLC0415

    progress, started, advanced = progress_bar(dry_run)
    with _readable(file) as (path, label):
        try:
            report = import_directory(
                path, name, prune=prune, dry_run=dry_run, workers=workers, on_start=started, on_progress=advanced, source=label
            )
        except DirectoryFileError as error:
            for issue in error.issues:
                click.echo(str(issue), err=True)
            count = len(error.issues)
            raise click.ClickException(f"{count} problem{'s' if count != 1 else ''} in {label}; nothing was written") from None
        except _aws_errors() as error:
            raise _aws_failure(error) from None
        finally:
            progress.stop()
    if output_format == output.JSON:
        output.json_line(
            {
                "file": label,
                "table": name,
                "dry_run": dry_run,
                "partners": report.partners,
                "customers": report.customers,
                "changed": dict(report.changed),
                "unchanged": dict(report.unchanged),
                "deleted": dict(report.deleted),
            }
        )
        return
    verb = "would write" if dry_run else "wrote"
    gone = "would delete" if dry_run else "deleted"
    click.echo(
        f"{label}: {report.partners} partners, {report.customers} customers; "
        f"{verb} {report.changed['partners']} partners and {report.changed['customers']} customers "
        f"(unchanged: {report.unchanged['partners']} partners, {report.unchanged['customers']} customers); "
        f"{gone} {report.deleted['entries']} stale entries"
        + (f", {report.deleted['customers']} customers and {report.deleted['partners']} partners" if prune else "")
    )


@directory.command("export")
@table_option
@click.option(
    "--output", "-o", "output_file", type=click.Path(dir_okay=False, writable=True, path_type=Path), help="Write here instead of stdout."
)
@output.format_option(output.JSON, default=output.JSON)
def export_cmd(table: str | None, output_file: Path | None, output_format: str) -> None:
    """Write the directory as JSON Lines (the import format), partners first."""
    name = _table_name(table)
    from mailfilter_cli.directory_export import export_directory  # noqa: PLC0415

    try:
        if output_file is None:
            counts = export_directory(name, sys.stdout)
        else:
            with open(output_file, "w", encoding="utf-8") as out:
                counts = export_directory(name, out)
    except _aws_errors() as error:
        raise _aws_failure(error) from None
    click.echo(f"exported {counts['partner']} partners and {counts['customer']} customers", err=True)


@directory.command("show")
@click.argument("address")
@table_option
@click.option("--cloud", type=click.Choice([c.value for c in Cloud]), help="Only this cloud (default: every cloud).")
@output.format_option(output.TABLE, output.JSON)
@click.pass_context
def show_cmd(ctx: click.Context, address: str, table: str | None, cloud: str | None, output_format: str) -> None:
    """Which customer ADDRESS belongs to, which entry matched it, and who its partners are.

    json: one object per cloud looked in ("customer": null where none matched).
    Exit status 1 when no customer matched.
    """
    from mailfilter.aws.directory_table import DynamoDirectory  # noqa: PLC0415
    from mailfilter.vocabulary.addresses import normalise_address  # noqa: PLC0415
    from mailfilter.vocabulary.errors import DirectoryUnavailable, InvalidAddressError  # noqa: PLC0415

    try:
        normalised = normalise_address(address)
    except InvalidAddressError as error:
        raise click.BadParameter(str(error), param_hint="ADDRESS") from None
    name = _table_name(table)
    reader = DynamoDirectory(name, cache_ttl_seconds=0)
    found = False
    for each in [Cloud(cloud)] if cloud else list(Cloud):
        try:
            match = reader.lookup(each, [normalised])[normalised]
        except DirectoryUnavailable as error:
            raise _aws_failure(error) from None
        found = found or match is not None
        if output_format == output.JSON:
            output.json_line(match_dict(normalised, each.value, match))
        elif match is not None:
            show_match(normalised, each.value, match)
        elif cloud:
            click.echo(f"{normalised}: no customer in {each.value}")
    if not found and not cloud and output_format == output.TABLE:
        click.echo(f"{normalised}: no customer in any cloud")
    if not found:
        ctx.exit(1)


@directory.command("stats")
@table_option
@output.format_option()
def stats_cmd(table: str | None, output_format: str) -> None:
    """Count partners, customers and entries per cloud (json: one object per cloud)."""
    name = _table_name(table)
    from mailfilter_cli.directory_export import directory_stats  # noqa: PLC0415

    try:
        stats = directory_stats(name)
    except _aws_errors() as error:
        raise _aws_failure(error) from None
    if output_format == output.JSON:
        for cloud, counts in stats.items():
            output.json_line({"cloud": cloud, **{_snake(c): counts[c] for c in STAT_COLUMNS}})
    elif output_format == output.CSV:
        output.csv_rows(
            ["cloud", *map(_snake, STAT_COLUMNS)], ([cloud, *(counts[c] for c in STAT_COLUMNS)] for cloud, counts in stats.items())
        )
    else:
        view = output.table("cloud", *STAT_COLUMNS, title=f"directory {name}", title_justify="left")
        output.print_table(output.fit(view, [(cloud, *(f"{counts[c]:,}" for c in STAT_COLUMNS)) for cloud, counts in stats.items()]))
