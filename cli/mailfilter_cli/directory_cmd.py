"""`mailfilter directory`: load, export, inspect and count the customer directory in DynamoDB."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from botocore.exceptions import BotoCoreError, ClientError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TaskProgressColumn, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from mailfilter.addresses import InvalidAddressError, normalise_address
from mailfilter.aws.batch import BatchIncompleteError
from mailfilter.aws.directory_table import DirectoryUnavailable, DynamoDirectory
from mailfilter.directory.load import DirectoryFileError
from mailfilter.model import Cloud
from mailfilter_cli.directory_ops import directory_stats, export_directory, import_directory

table_option = click.option(
    "--table",
    envvar="DIRECTORY_TABLE",
    show_envvar=True,
    help="The directory table (the stack's DirectoryTable).",
)


def _table_name(table: str | None) -> str:
    if not table:
        raise click.UsageError("no directory table: pass --table or set DIRECTORY_TABLE")
    return table


def _aws_failure(error: Exception) -> click.ClickException:
    return click.ClickException(f"DynamoDB: {error}")


class _Rate(ProgressColumn):
    """Customers per second, from rich's own speed estimate."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f} customers/s" if speed else "-- customers/s", style="progress.data.speed")


@click.group()
def directory() -> None:
    """Load, export and inspect the customer directory in DynamoDB."""


@directory.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@table_option
@click.option("--prune", is_flag=True, help="Also delete customers, partners and entries the file no longer has.")
@click.option("--dry-run", is_flag=True, help="Validate and count what would change; write nothing.")
@click.option("--workers", default=8, show_default=True, type=click.IntRange(1, 64), help="Parallel writers.")
def import_cmd(file: Path, table: str | None, prune: bool, dry_run: bool, workers: int) -> None:
    """Validate FILE (JSON Lines) as a whole, then make the table match it.

    Nothing is written if any line is invalid. Re-importing the same file
    writes nothing; a customer whose addresses or domains changed loses the old ones.
    """
    name = _table_name(table)
    err = Console(stderr=True)
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        _Rate(),
        TimeRemainingColumn(),
        console=err,
        transient=False,
    )
    task = None

    def started(customers: int) -> None:
        nonlocal task
        progress.start()
        task = progress.add_task("checking" if dry_run else "importing", total=customers)

    def advanced(count: int) -> None:
        if task is not None:
            progress.advance(task, count)

    try:
        report = import_directory(file, name, prune=prune, dry_run=dry_run, workers=workers, on_start=started, on_progress=advanced)
    except DirectoryFileError as error:
        for issue in error.issues:
            click.echo(str(issue), err=True)
        count = len(error.issues)
        raise click.ClickException(f"{count} problem{'s' if count != 1 else ''} in {file}; nothing was written") from None
    except (ClientError, BotoCoreError, BatchIncompleteError) as error:
        raise _aws_failure(error) from None
    finally:
        progress.stop()
    verb = "would write" if dry_run else "wrote"
    gone = "would delete" if dry_run else "deleted"
    click.echo(
        f"{file}: {report.partners} partners, {report.customers} customers; "
        f"{verb} {report.changed['partners']} partners and {report.changed['customers']} customers "
        f"(unchanged: {report.unchanged['partners']} partners, {report.unchanged['customers']} customers); "
        f"{gone} {report.deleted['entries']} stale entries"
        + (f", {report.deleted['customers']} customers and {report.deleted['partners']} partners" if prune else "")
    )


@directory.command("export")
@table_option
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True, path_type=Path), help="Write here instead of stdout.")
def export_cmd(table: str | None, output: Path | None) -> None:
    """Write the directory as JSON Lines (the import format), partners first."""
    name = _table_name(table)
    try:
        if output is None:
            counts = export_directory(name, sys.stdout)
        else:
            with open(output, "w", encoding="utf-8") as out:
                counts = export_directory(name, out)
    except (ClientError, BotoCoreError) as error:
        raise _aws_failure(error) from None
    click.echo(f"exported {counts['partner']} partners and {counts['customer']} customers", err=True)


@directory.command("show")
@click.argument("address")
@table_option
@click.option("--cloud", type=click.Choice([c.value for c in Cloud]), help="Only this cloud (default: every cloud).")
def show_cmd(address: str, table: str | None, cloud: str | None) -> None:
    """Which customer ADDRESS belongs to, which entry matched it, and who its partners are."""
    name = _table_name(table)
    try:
        normalised = normalise_address(address)
    except InvalidAddressError as error:
        raise click.BadParameter(str(error), param_hint="ADDRESS") from None
    reader = DynamoDirectory(name, cache_ttl_seconds=0)
    console = Console()
    found = False
    for each in [Cloud(cloud)] if cloud else list(Cloud):
        try:
            match = reader.lookup(each, [normalised])[normalised]
        except DirectoryUnavailable as error:
            raise _aws_failure(error) from None
        if match is None:
            if cloud:
                console.print(f"{normalised}: no customer in {each.value}")
            continue
        found = True
        view = match.customer
        console.print(
            f"[bold]{normalised}[/] in [bold]{each.value}[/]: {view.name} (tenant {view.tenant_id}), "
            f"matched by {match.matched_by} entry {match.entry}",
            soft_wrap=True,  # one line per fact, so it can be grepped
        )
        direct = ", ".join(sorted(view.direct_products)) or "-"
        console.print(f"  direct relationship: {'yes' if view.direct_relationship else 'no'}; direct products: {direct}")
        if not view.partners:
            console.print("  no CSP partner")
            continue
        partners = Table("partner", "name", "owns", "contacts", title="  CSP partners", title_justify="left")
        for link in view.partners:
            partners.add_row(link.partner_id, link.name, ", ".join(link.products) or "every product", ", ".join(link.contacts) or "-")
        console.print(partners)
    if not found and not cloud:
        console.print(f"{normalised}: no customer in any cloud")
    if not found:
        sys.exit(1)


@directory.command("stats")
@table_option
def stats_cmd(table: str | None) -> None:
    """Count partners, customers and entries per cloud."""
    name = _table_name(table)
    try:
        stats = directory_stats(name)
    except (ClientError, BotoCoreError) as error:
        raise _aws_failure(error) from None
    columns = ("partners", "customers", "CSP customers", "address entries", "domain entries")
    table_view = Table("cloud", *columns, title=f"directory {name}", title_justify="left")
    for cloud, counts in stats.items():
        table_view.add_row(cloud, *(f"{counts[c]:,}" for c in columns))
    Console().print(table_view)
