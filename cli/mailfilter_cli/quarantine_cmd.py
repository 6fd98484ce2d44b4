"""`mailfilter quarantine`: list, show, release and purge blocked mail kept in the mail bucket.

The bucket is needed only when a subcommand runs (`quarantine list --help` needs
nothing); boto3, pydantic and rich are imported then too.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import click

from mailfilter_cli import output
from mailfilter_cli.moments import Moment
from mailfilter_cli.quarantine_release import release_item
from mailfilter_cli.quarantine_store import quarantine_of, reported

if TYPE_CHECKING:
    from mailfilter.aws.quarantine import Quarantine
    from mailfilter.vocabulary.holds import QuarantineItem

_ID_DAY = re.compile(r"^(\d{4})(\d{2})(\d{2})-")
LIST_COLUMNS = ("id", "quarantined (UTC)", "message id", "customers", "blocked recipients", "rules", "released")


@click.group()
@click.option("--bucket", envvar="MAIL_BUCKET", show_envvar=True, help="The mail bucket; else from .mailfilter/local.env.json.")
@click.option("--prefix", envvar="QUARANTINE_PREFIX", show_envvar=True, help="Where quarantined items are kept [default: quarantine/].")
@click.pass_context
def quarantine(ctx: click.Context, bucket: str | None, prefix: str | None) -> None:
    """Blocked mail kept in S3: list it, show it, release it, purge it."""
    ctx.obj = {"bucket": bucket, "prefix": prefix}


quarantine.add_command(release_item)


def _released(item: QuarantineItem) -> str:
    done = item.released
    if done is None:
        return ""
    why = f": {done.reason}" if done.reason else ""
    return f"{done.action} by {done.by} at {done.at:%Y-%m-%d %H:%M}{why}"


def _rules(item: QuarantineItem) -> list[str]:
    return sorted({d["rule"] for d in item.verdict.get("decisions", ()) if d.get("recipient") in item.recipients})


@quarantine.command("list")
@click.option("--customer", metavar="TENANT", help="Only this customer's (tenant id).")
@click.option("--since", type=Moment(), help="Only from this age or date on, e.g. 7d or 2025-01-14.")
@output.format_option(json_alias=True)
@click.pass_context
def list_items(ctx: click.Context, customer: str | None, since: datetime | None, output_format: str) -> None:
    """Quarantined messages, oldest first (json: the whole item, one a line)."""
    store = quarantine_of(ctx)
    with reported():
        items = store.list(customer=customer, since=since)
        if output_format == output.JSON:
            for item in items:
                click.echo(item.model_dump_json())
        elif output_format == output.CSV:
            output.csv_rows([c.split(" (")[0].replace(" ", "_") for c in LIST_COLUMNS], (_row(item, iso=True) for item in items))
        else:
            rows = [_row(item) for item in items]
            output.print_table(output.fit(output.table(*LIST_COLUMNS), rows, keep_whole=(0,)))
            click.echo(f"{len(rows)} item(s)", err=True)


def _row(item: QuarantineItem, *, iso: bool = False) -> list[str]:
    return [
        item.id,
        item.quarantined_at.isoformat() if iso else f"{item.quarantined_at:%Y-%m-%d %H:%M}",
        item.message_id,
        (" " if iso else ", ").join(item.customers),
        (" " if iso else ", ").join(item.recipients),
        (" " if iso else ", ").join(_rules(item)),
        _released(item),
    ]


@quarantine.command()
@click.argument("item_id")
@output.format_option(output.JSON, output.TABLE, default=output.JSON)
@click.pass_context
def show(ctx: click.Context, item_id: str, output_format: str) -> None:
    """The whole item: the original request, every decision, the release if any. Exit status 1 if there is none."""
    from mailfilter.aws.quarantine import to_json  # noqa: PLC0415

    store = quarantine_of(ctx)
    with reported():
        item = store.get(item_id)
    if output_format == output.JSON:
        click.echo(to_json(item))
        return
    console = output.console()
    facts = [
        ("id", item.id),
        ("quarantined", f"{item.quarantined_at:%Y-%m-%d %H:%M:%S} UTC"),
        ("direction", item.direction),
        ("cloud", item.cloud),
        ("message id", item.message_id),
        ("customers", ", ".join(item.customers)),
        ("blocked recipients", ", ".join(item.recipients)),
        ("released", _released(item) or "no"),
    ]
    output.print_table(output.fit(output.table("field", "value", show_header=False), facts, keep_whole=(1,)), console)
    view = output.table("recipient", "action", "effective", "deliver to", "rule", "reason", title="decisions", title_justify="left")
    rows = [
        (d["recipient"], d["action"], d["effective"], "\n".join(d.get("deliver_to", ())) or "(quarantine)", d["rule"], d["reason"])
        for d in item.verdict.get("decisions", ())
    ]
    output.print_table(output.fit(view, rows, keep_whole=(0,)), console)


def _day_of(item_id: str) -> datetime | None:
    match = _ID_DAY.match(item_id)
    return datetime(int(match[1]), int(match[2]), int(match[3]), tzinfo=UTC) if match else None


def purge_candidates(store: Quarantine, older_than: datetime) -> list[tuple[str, datetime]]:
    """The items `Quarantine.purge(older_than)` deletes: every item from a day before `older_than`'s (UTC)."""
    cutoff = older_than.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    found = []
    for item_id in store.ids():
        day = _day_of(item_id)
        if day is not None and day < cutoff:
            found.append((item_id, day))
    return found


@quarantine.command()
@click.option("--older-than", type=Moment(), required=True, help="An age such as 30d, or a date: items from days before it go.")
@click.option("--dry-run", is_flag=True, help="List what would go and how many; delete nothing.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@output.format_option()
@click.pass_context
def purge(ctx: click.Context, older_than: datetime, dry_run: bool, yes: bool, output_format: str) -> None:
    """Delete quarantined items (released or not) from days before --older-than.

    The items are counted first, and the count is shown before asking for
    confirmation (on stderr). --dry-run lists them (json: one object a line) and deletes nothing.
    """
    store = quarantine_of(ctx)
    day = f"{older_than.astimezone(UTC):%Y-%m-%d}"
    with reported():
        doomed = purge_candidates(store, older_than)
    if dry_run:
        _list_doomed(doomed, output_format)
        click.echo(f"would purge {len(doomed)} item(s) from before {day}; nothing was deleted", err=output_format != output.TABLE)
        return
    if doomed and not yes:
        click.confirm(f"Delete {len(doomed)} quarantined item(s) from before {day}, released or not?", abort=True, err=True)
    with reported():
        purged = store.purge(older_than) if doomed else []
    if output_format == output.JSON:
        output.json_line({"purged": len(purged), "before": day, "ids": purged})
    elif output_format == output.CSV:
        output.csv_rows(["id"], ([item_id] for item_id in purged))
    else:
        click.echo(f"purged {len(purged)} item(s)")


def _list_doomed(doomed: list[tuple[str, datetime]], output_format: str) -> None:
    rows = [(item_id, f"{day:%Y-%m-%d}") for item_id, day in doomed]
    if output_format == output.JSON:
        for item_id, day in rows:
            output.json_line({"id": item_id, "day": day})
    elif output_format == output.CSV:
        output.csv_rows(["id", "day"], rows)
    elif rows:
        output.print_table(output.fit(output.table("id", "day"), rows, keep_whole=(0,)))
