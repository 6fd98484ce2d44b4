"""The report of recorded decisions: counts per time bucket, as tables (CSV, JSON) and as one self-contained HTML page.

The charts are plotly's, with plotly.js inlined once in the page (`include_plotlyjs=True`),
so the file opens with no network. Data comes from the decisions table (`mailfilter.aws.trace`,
the `by-day` index) and, when the mail bucket is known, the quarantine's items.
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

HOURLY_UP_TO = timedelta(days=2)  # a shorter range is counted per hour, a longer one per day
NONE = "(none)"


@dataclass
class Chart:
    """One chart and its table: counts per time bucket and series."""

    name: str  # the CSV's `chart` column and the element id
    title: str
    kind: str  # "bar" (stacked) or "line"
    counts: Counter[tuple[str, str]] = field(default_factory=Counter)  # (bucket, series) -> count
    note: str = ""

    def series(self) -> list[str]:
        return sorted({series for _, series in self.counts})

    def rows(self) -> list[tuple[str, str, int]]:
        return sorted((bucket, series, count) for (bucket, series), count in self.counts.items())


@dataclass
class Report:
    since: datetime
    until: datetime
    buckets: list[str]
    charts: list[Chart]
    records: int
    quarantine_items: int | None  # None: the mail bucket was not read

    def csv_rows(self) -> Iterable[list[Any]]:
        for chart in self.charts:
            for bucket, series, count in chart.rows():
                yield [chart.name, bucket, series, count]

    def as_json(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "records": self.records,
            "quarantine_items": self.quarantine_items,
            "charts": [
                {"chart": c.name, "title": c.title, "rows": [{"bucket": b, "series": s, "count": n} for b, s, n in c.rows()]}
                for c in self.charts
            ],
        }


def bucket_of(moment: str | datetime, hourly: bool) -> str:
    text = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S") if isinstance(moment, datetime) else moment
    return f"{text[:13]}:00" if hourly else text[:10]


def buckets_between(since: datetime, until: datetime, hourly: bool) -> list[str]:
    step = timedelta(hours=1) if hourly else timedelta(days=1)
    start = since.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    if not hourly:
        start = start.replace(hour=0)
    out = []
    while start <= until:
        out.append(bucket_of(start, hourly))
        start += step
    return out


def build(records: Iterable[dict[str, Any]], quarantine: Iterable[Any] | None, since: datetime, until: datetime) -> Report:
    """Count the records (newest first or in any order) and the quarantine items into the report's charts."""
    hourly = until - since <= HOURLY_UP_TO
    by_action = Chart("decisions-by-action", "Decisions by action", "bar")
    by_rule = Chart("decisions-by-rule", "Decisions by rule", "bar")
    by_cloud = Chart("decisions-by-cloud", "Decisions by cloud", "bar")
    by_partner = Chart("rerouted-by-partner", "Rerouted to partners (recipients)", "bar")
    violations = Chart("audit-violations", "Violations the audit found (mail sent around the gateway)", "bar")
    quarantined = Chart("quarantine", "Quarantine: backlog, new items and releases", "line")
    deferrals = Chart("deferrals", "Deferred and rejected messages (recipients)", "bar")
    count = 0
    released_messages: dict[str, str] = {}
    blocked_messages: dict[str, str] = {}
    for record in records:
        count += 1
        bucket = bucket_of(record["at"], hourly)
        kind = record.get("kind")
        if kind == "decision":
            action = record.get("action", "")
            effective = record.get("effective", action)
            by_action.counts[(bucket, action if effective == action else f"{action} (not enforced)")] += 1
            by_rule.counts[(bucket, record.get("rule", NONE))] += 1
            by_cloud.counts[(bucket, record.get("cloud", NONE))] += 1
            if effective == "reroute":
                for partner in record.get("partners") or [NONE]:
                    by_partner.counts[(bucket, partner)] += 1
            if effective == "block":
                blocked_messages.setdefault(record["message_id"], bucket)
        elif kind == "violation":
            violations.counts[(bucket, record.get("rule", NONE))] += 1
        elif kind in ("deferred", "rejected"):
            deferrals.counts[(bucket, kind)] += 1
        elif kind == "released":
            released_messages.setdefault(record["message_id"], bucket)
    buckets = buckets_between(since, until, hourly)
    items = None
    if quarantine is not None:
        items = 0
        for item in quarantine:
            items += 1
            quarantined.counts[(bucket_of(item.quarantined_at, hourly), "quarantined")] += 1
            if item.released is not None:
                quarantined.counts[(bucket_of(item.released.at, hourly), "released")] += 1
    else:
        quarantined.note = "from the decisions table (messages with a blocked recipient; releases recorded); the mail bucket was not read"
        for bucket in blocked_messages.values():
            quarantined.counts[(bucket, "quarantined")] += 1
        for bucket in released_messages.values():
            quarantined.counts[(bucket, "released")] += 1
    backlog = 0
    for bucket in buckets:
        backlog += quarantined.counts.get((bucket, "quarantined"), 0) - quarantined.counts.get((bucket, "released"), 0)
        quarantined.counts[(bucket, "backlog")] = max(backlog, 0)
    charts = [by_action, by_rule, by_cloud, by_partner, violations, quarantined, deferrals]
    for chart in charts:
        chart.counts = Counter({key: n for key, n in chart.counts.items() if n or chart.kind == "line"})
    return Report(since, until, buckets, charts, count, items)


# ---------------------------------------------------------------- HTML


def figure(chart: Chart, buckets: list[str]) -> Any:
    import plotly.graph_objects as go  # noqa: PLC0415 - the cli extra

    fig = go.Figure()
    series = chart.series() or [NONE]
    for name in series:
        values = [chart.counts.get((bucket, name), 0) for bucket in buckets]
        if chart.kind == "line":
            fig.add_trace(go.Scatter(x=buckets, y=values, name=name, mode="lines+markers"))
        else:
            fig.add_trace(go.Bar(x=buckets, y=values, name=name))
    fig.update_layout(
        title={"text": html.escape(chart.title)},
        barmode="stack",
        showlegend=True,  # a single series is named too (the partner, the cloud)
        height=360,
        margin={"l": 50, "r": 20, "t": 50, "b": 40},
        legend={"orientation": "v"},
        xaxis={"type": "category"},
        yaxis={"rangemode": "tozero"},
        template="plotly_white",
    )
    return fig


def _table(chart: Chart) -> str:
    rows = chart.rows()
    if not rows:
        return "<p class='empty'>nothing recorded</p>"
    body = "".join(
        f"<tr><td>{html.escape(bucket)}</td><td>{html.escape(series)}</td><td class='n'>{count}</td></tr>" for bucket, series, count in rows
    )
    return f"<details><summary>table</summary><table><tr><th>period</th><th>series</th><th>count</th></tr>{body}</table></details>"


STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5rem; color: #222; }
h1 { font-size: 1.4rem; } .meta { color: #555; }
section { margin-bottom: 1.5rem; border-top: 1px solid #ddd; padding-top: .5rem; }
table { border-collapse: collapse; font-size: .85rem; } td, th { border: 1px solid #ccc; padding: 2px 6px; } td.n { text-align: right; }
.note, .empty { color: #666; font-size: .85rem; }
"""


def render_html(report: Report, *, title: str = "csp-mail-filter report") -> str:
    """One page holding plotly.js once and every chart; no request leaves it."""
    parts = []
    for index, chart in enumerate(report.charts):
        fig = figure(chart, report.buckets)
        div = fig.to_html(
            full_html=False,
            include_plotlyjs=index == 0,  # inline, once
            div_id=f"chart-{chart.name}",
            config={"displaylogo": False, "responsive": True},
        )
        note = f"<p class='note'>{html.escape(chart.note)}</p>" if chart.note else ""
        parts.append(f"<section class='chart' data-chart='{chart.name}'>{div}{note}{_table(chart)}</section>")
    quarantine = "not read" if report.quarantine_items is None else f"{report.quarantine_items} item(s)"
    meta = (
        f"{report.since:%Y-%m-%d %H:%M} to {report.until:%Y-%m-%d %H:%M} UTC; "
        f"{report.records} recorded decision(s) and outcomes; quarantine: {quarantine}"
    )
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><p class='meta'>{html.escape(meta)}</p>{''.join(parts)}</body></html>\n"
    )
