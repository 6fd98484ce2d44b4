"""`mailfilter report`: charts of the recorded decisions in one self-contained HTML file, or their tables as CSV or JSON."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from mailfilter_cli import output, settings
from mailfilter_cli.moments import Moment

if TYPE_CHECKING:
    from mailfilter_cli.report import Report

HTML = "html"


def gather(table: str | None, bucket: str | None, prefix: str | None, since: datetime, until: datetime | None) -> Report:
    """Read the decisions (the by-day index) and, when the mail bucket is known, the quarantine; count them."""
    from mailfilter.aws.quarantine import Quarantine  # noqa: PLC0415
    from mailfilter.aws.trace import TraceFilter  # noqa: PLC0415
    from mailfilter_cli.report import build  # noqa: PLC0415
    from mailfilter_cli.trace_cmd import decision_trace  # noqa: PLC0415

    until = until or datetime.now(UTC)
    store = decision_trace(table)
    bucket = settings.setting("MAIL_BUCKET", bucket)
    items: Any = None
    if bucket:
        quarantine = Quarantine(bucket, settings.setting("QUARANTINE_PREFIX", prefix) or "quarantine/")
        items = [item for item in quarantine.list(since=since) if item.quarantined_at <= until]
    return build(store.records(TraceFilter(since=since, until=until)), items, since, until)


def write(report: Report, output_format: str, out: Path | None) -> None:
    from mailfilter_cli.report import render_html  # noqa: PLC0415

    if output_format == HTML:
        target = out or Path("report.html")
        target.write_text(render_html(report), encoding="utf-8")
        charts = ", ".join(chart.name for chart in report.charts)
        click.echo(f"wrote {target} ({target.stat().st_size // 1024} KiB, opens with no network): {report.records} records; {charts}")
        return
    if out is not None:
        raise click.UsageError("--out is for --format html; csv and json go to standard output")
    if output_format == output.JSON:
        output.json_line(report.as_json())
    else:
        output.csv_rows(("chart", "period", "series", "count"), report.csv_rows())


@click.command()
@click.option("--since", type=Moment(), default="7d", show_default=True, help="From this age or date on, e.g. 7d or 2025-01-14.")
@click.option("--until", type=Moment(), help="Up to this age or date [default: now].")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="The HTML file [default: report.html].")
@click.option(
    "--format",
    "output_format",
    type=click.Choice([HTML, output.CSV, output.JSON]),
    default=HTML,
    show_default=True,
    help="html: one self-contained file with charts (--out); csv: the charts' tables, one row per period and series; json: one object.",
)
@click.option("--table", envvar="DECISIONS_TABLE", show_envvar=True, help="The decisions table; else from .mailfilter/local.env.json.")
@click.option("--bucket", envvar="MAIL_BUCKET", show_envvar=True, help="The mail bucket, for the quarantine's backlog and releases.")
@click.option("--prefix", envvar="QUARANTINE_PREFIX", show_envvar=True, help="Where quarantined items are kept [default: quarantine/].")
def report(
    since: datetime, until: datetime | None, out: Path | None, output_format: str, table: str | None, bucket: str | None, prefix: str | None
) -> None:
    """Decisions over time by action, rule and cloud; rerouted volume per partner; audit violations; quarantine; deferrals.

    The HTML file holds plotly.js and every chart with its table, and needs no network to open.
    """
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

    from mailfilter.vocabulary.errors import DecisionLogError  # noqa: PLC0415

    try:
        gathered = gather(table, bucket, prefix, since, until)
    except DecisionLogError as error:
        raise click.ClickException(str(error)) from None
    except (ClientError, BotoCoreError) as error:
        raise click.ClickException(f"S3: {error}") from None
    write(gathered, output_format, out)
