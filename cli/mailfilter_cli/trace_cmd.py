"""`mailfilter trace`: the recorded decisions, filtered, newest first; and their export to S3 for Athena.

Each filter with a key of its own is one DynamoDB Query (`mailfilter.aws.trace`):
a message id, a customer, a recipient; anything else reads the `by-day` index
for each day of the range. Records stream out as they are read; `--limit`
stops after that many and prints, on stderr, the `--after` token that goes on.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

from mailfilter_cli import output, settings
from mailfilter_cli.moments import Moment

if TYPE_CHECKING:
    from mailfilter.aws.trace import Cursor, DecisionTrace, TraceFilter

COLUMNS = ("at (UTC)", "message id", "kind", "recipient", "action", "effective", "customer", "partners", "rule", "cloud")
CSV_COLUMNS = ("at", "message_id", "kind", "recipient", "action", "effective", "customer", "partners", "rule", "cloud", "reason")
HIDDEN = ("pk", "day")  # keys of the table's layout, not of the record
DEFAULT_SINCE = "7d"


def decision_trace(table: str | None) -> DecisionTrace:
    """The decisions table from the flag, DECISIONS_TABLE or the env file, with the AWS location it names."""
    from mailfilter.aws.trace import DecisionTrace  # noqa: PLC0415

    name = settings.require("DECISIONS_TABLE", table, flag="--table", what="decisions table")
    settings.use_aws_location()
    return DecisionTrace(name)


def public(record: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in record.items() if name not in HIDDEN}


def row(record: dict[str, Any], *, iso: bool = False) -> list[Any]:
    at = record.get("at", "")
    kind = record.get("kind", "")
    return [
        at if iso else at[:19].replace("T", " "),
        record.get("message_id", ""),
        kind,
        record.get("recipient", ""),
        record.get("action", "" if iso else "-"),
        record.get("effective", "" if iso else "-"),
        record.get("customer_name") or record.get("customer") or ("" if iso else "-"),
        (record.get("partners") or []) if iso else (" ".join(record.get("partners") or []) or "-"),
        record.get("rule") or ("" if iso else record.get("error", "-")),
        record.get("cloud", ""),
    ]


def _limited(records: Iterator[dict[str, Any]], limit: int) -> tuple[list[dict[str, Any]], bool]:
    taken: list[dict[str, Any]] = []
    for record in records:
        if limit and len(taken) == limit:
            return taken, True
        taken.append(record)
    return taken, False


@click.command()
@click.option("--message-id", help="One message's records (the table's own key).")
@click.option("--customer", metavar="TENANT", help="One customer's records (tenant id; the by-customer index).")
@click.option("--recipient", metavar="ADDRESS", help="One recipient address (the by-recipient index).")
@click.option("--partner", metavar="PARTNER_ID", help="Records whose customer has this partner.")
@click.option("--rule", help="Records decided by this rule, e.g. product-mail-for-csp-customer.")
@click.option(
    "--action",
    type=click.Choice(["allow", "reroute", "block", "deferred", "rejected", "released", "violation"]),
    help="An action, or a kind of record.",
)
@click.option("--cloud", type=click.Choice(["commercial", "usgov", "germany"]))
@click.option("--direction", type=click.Choice(["outbound", "inbound"]))
@click.option("--since", type=Moment(), default=DEFAULT_SINCE, show_default=True, help="From this age or date on, e.g. 7d or 2025-01-14.")
@click.option("--until", type=Moment(), help="Up to this age or date [default: now].")
@click.option("--limit", type=click.IntRange(min=0), default=100, show_default=True, help="Stop after this many records; 0: all of them.")
@click.option("--after", "token", metavar="TOKEN", help="Go on after the last record of an earlier listing (its token, printed on stderr).")
@click.option(
    "--export",
    "export_to",
    metavar="s3://BUCKET/PREFIX",
    help="Write every matching record (no limit) to S3 as gzipped JSON Lines under dt=YYYY-MM-DD/, for Athena (docs/athena/).",
)
@click.option("--table", envvar="DECISIONS_TABLE", show_envvar=True, help="The decisions table; else from .mailfilter/local.env.json.")
@output.format_option()
def trace(
    message_id: str | None,
    customer: str | None,
    recipient: str | None,
    partner: str | None,
    rule: str | None,
    action: str | None,
    cloud: str | None,
    direction: str | None,
    since: datetime,
    until: datetime | None,
    limit: int,
    token: str | None,
    export_to: str | None,
    table: str | None,
    output_format: str,
) -> None:
    """Recorded decisions, newest first: what happened to which mail, by which rule and why.

    json: every field of each record (its classification and customer as decided, too), one a line;
    csv: one row per record. Exit status 1 when nothing matches.
    """
    from mailfilter.aws.trace import Cursor, TraceFilter  # noqa: PLC0415
    from mailfilter.vocabulary.errors import DecisionLogError  # noqa: PLC0415

    if until is not None and until < since:
        raise click.BadParameter("--until is before --since", param_hint="--until")
    wanted = TraceFilter(
        since=since,
        until=until,
        message_id=message_id,
        customer=customer,
        recipient=recipient.lower() if recipient else None,
        partner=partner,
        rule=rule,
        action=action,
        cloud=cloud,
        direction=direction,
    )
    try:
        cursor = Cursor.decode(token) if token else None
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--after") from None
    store = decision_trace(table)
    try:
        if export_to:
            export(store, wanted, export_to, output_format)
            return
        found = _print(store.records(wanted, cursor=cursor), limit, output_format)
    except DecisionLogError as error:
        raise click.ClickException(str(error)) from None
    if not found[0]:
        click.echo(f"no recorded decisions match (query: {store.query_plan(wanted)}, since {since:%Y-%m-%d %H:%M} UTC)", err=True)
        raise SystemExit(1)
    shown, more, last = found
    if more and last is not None:
        click.echo(f"{shown} record(s); more: add --after {last.encode()}", err=True)
    elif output_format == output.TABLE:
        click.echo(f"{shown} record(s)", err=True)


def _print(records: Iterator[dict[str, Any]], limit: int, output_format: str) -> tuple[int, bool, Cursor | None]:
    """Print as the format says (JSON Lines and CSV as they are read); returns (shown, more, cursor after the last)."""
    from mailfilter.aws.trace import Cursor  # noqa: PLC0415

    shown: list[dict[str, Any]] = []
    more = False
    if output_format == output.TABLE:
        shown, more = _limited(records, limit)
        if shown:
            view = output.table(*COLUMNS)
            output.print_table(output.fit(view, [[output.cell_text(c) for c in row(r)] for r in shown], keep_whole=(1, 3)))
        return len(shown), more, Cursor.after(shown)
    if output_format == output.CSV:
        output.csv_rows(CSV_COLUMNS, [])
    for record in records:
        if limit and len(shown) == limit:
            more = True
            break
        shown.append(record)
        if output_format == output.JSON:
            output.json_line(public(record))
        else:
            output.csv_rows((), [[*row(record, iso=True), record.get("reason") or record.get("error", "")]])
    return len(shown), more, Cursor.after(shown)


# ---------------------------------------------------------------- export for Athena


def parse_s3_url(url: str) -> tuple[str, str]:
    if not url.startswith("s3://") or len(url) <= len("s3://"):
        raise click.BadParameter(f"{url!r}: expected s3://BUCKET/PREFIX", param_hint="--export")
    bucket, _, prefix = url[len("s3://") :].partition("/")
    return bucket, prefix.strip("/")


def export_key(prefix: str, day: str, wanted: TraceFilter, until: datetime) -> str:
    """One object per day and exported window: exporting the same window again replaces it."""
    window = f"{wanted.since.astimezone(UTC):%Y%m%dT%H%M%SZ}-{until.astimezone(UTC):%Y%m%dT%H%M%SZ}"
    return "/".join(part for part in (prefix, f"dt={day}", f"decisions-{window}.jsonl.gz") if part)


def by_day(records: Iterable[dict[str, Any]]) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """Records grouped by their UTC day (they arrive newest first, so each day's are together)."""
    day, batch = None, []
    for record in records:
        current = record["at"][:10]
        if day is not None and current != day:
            yield day, batch
            batch = []
        day = current
        batch.append(record)
    if day is not None:
        yield day, batch


def export(store: DecisionTrace, wanted: TraceFilter, url: str, output_format: str) -> None:
    """Every matching record to S3, as Athena reads it (docs/athena/decisions.sql), one object per day."""
    from mailfilter.aws import clients  # noqa: PLC0415

    bucket, prefix = parse_s3_url(url)
    until = wanted.until or datetime.now(UTC)
    wanted = type(wanted)(**{**wanted.__dict__, "until": until})
    s3 = clients.client("s3")
    written: list[dict[str, Any]] = []
    for day, records in by_day(store.records(wanted)):
        lines = "".join(json.dumps(public(r), ensure_ascii=False, sort_keys=True, default=str) + "\n" for r in reversed(records))
        key = export_key(prefix, day, wanted, until)
        body = gzip.compress(lines.encode("utf-8"), mtime=0)
        s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/gzip")
        written.append({"day": day, "records": len(records), "object": f"s3://{bucket}/{key}"})
    total = sum(w["records"] for w in written)
    if output_format == output.JSON:
        output.json_line({"exported": total, "objects": written})
    elif output_format == output.CSV:
        output.csv_rows(("day", "records", "object"), ([w["day"], w["records"], w["object"]] for w in written))
    else:
        for w in written:
            click.echo(f"  {w['object']}: {w['records']} record(s)")
        click.echo(f"exported {total} record(s) in {len(written)} object(s) to s3://{bucket}/{prefix}")
