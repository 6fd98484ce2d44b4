"""`mailfilter policy`: validate a policy file and show its decision table."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from mailfilter_cli import output

if TYPE_CHECKING:
    from mailfilter.policy.config import Policy

STDIN = "-"
RULE_COLUMNS = ("rule", "seed", "segments", "categories", "product", "action")


@click.group()
def policy() -> None:
    """Validate and show policy files."""


def _load(file: Path | None) -> tuple[Policy, str]:
    """The validated policy and the name it is reported under; a refused file is exit status 1 with the reason."""
    from mailfilter.policy.config import load_policy  # noqa: PLC0415
    from mailfilter.vocabulary.errors import PolicyFileError  # noqa: PLC0415

    if file is None:
        label = "shipped default policy"
    elif str(file) == STDIN:
        label = "<stdin>"
    else:
        label = str(file)
    try:
        if file is None or str(file) != STDIN:
            return load_policy(file), label
        with tempfile.TemporaryDirectory(prefix="mailfilter-policy-") as folder:
            copy = Path(folder) / "stdin.toml"
            copy.write_bytes(sys.stdin.buffer.read())
            try:
                return load_policy(copy), label
            except PolicyFileError as error:
                raise PolicyFileError(str(error).replace(str(copy), label)) from None
    except PolicyFileError as error:
        raise click.ClickException(str(error)) from None


def _rule_cells(rule: Any) -> list[str]:
    return [
        rule.id,
        str(rule.seed_rule or "-"),
        ", ".join(rule.segments),
        ", ".join(rule.categories),
        rule.product.value,
        rule.action.value,
    ]


@policy.command()
@click.argument("file", required=False, type=click.Path(exists=True, dir_okay=False, allow_dash=True, path_type=Path))
@output.format_option()
def check(file: Path | None, output_format: str) -> None:
    """Validate FILE (default: the shipped policy; - for stdin) and print its decision table.

    json: one object (mode, default cloud, rules, counts); csv: one row per rule.
    An invalid file is reported with every problem, and the exit status is 1.
    """
    loaded, label = _load(file)
    counts = {
        "rules": len(loaded.rules),
        "senders": len(loaded.senders),
        "desks": len(loaded.desks),
        "subjects": len(loaded.subjects),
        "products": len(loaded.products),
    }
    if output_format == output.JSON:
        output.json_line(
            {
                "file": label,
                "valid": True,
                "mode": loaded.mode.value,
                "default_cloud": loaded.default_cloud.value,
                "rules": [rule.model_dump(mode="json") for rule in loaded.rules],
                "counts": counts,
            }
        )
        return
    if output_format == output.CSV:
        output.csv_rows(
            ["rule", "seed_rule", "segments", "categories", "product", "action"],
            ([r.id, r.seed_rule, list(r.segments), list(r.categories), r.product.value, r.action.value] for r in loaded.rules),
        )
        return
    view = output.table(*RULE_COLUMNS, title=f"{label}: mode {loaded.mode.value}, default cloud {loaded.default_cloud.value}")
    output.print_table(output.fit(view, [_rule_cells(rule) for rule in loaded.rules], keep_whole=(0,)))
    click.echo(
        f"valid: {counts['rules']} rules, {counts['senders']} sender and {counts['desks']} desk addresses, "
        f"{counts['subjects']} subject and {counts['products']} product patterns"
    )


REPLAY_KINDS = frozenset({"decision", "violation"})


@policy.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, allow_dash=True, path_type=Path))
@click.option("--since", default="30d", show_default=True, help="Replay decisions from this age or date on, e.g. 30d or 2025-01-14.")
@click.option("--until", help="Up to this age or date [default: now].")
@click.option("--examples", type=click.IntRange(min=0), default=3, show_default=True, help="Examples shown of each change.")
@click.option("--table", envvar="DECISIONS_TABLE", show_envvar=True, help="The decisions table; else from .mailfilter/local.env.json.")
@output.format_option()
def replay(file: Path, since: str, until: str | None, examples: int, table: str | None, output_format: str) -> None:
    """Decide every recorded decision again under FILE, with the directory as recorded, and say what would change.

    Counts per old -> new outcome (action and rule), per partner and per customer, and the first
    examples of each change. Rules with mode = "audit" in FILE are counted as on trial. json: one
    object; csv: one row per count. Exit status 1 when no recorded decision could be replayed.
    """
    from mailfilter.audit.replay import replay as run_replay  # noqa: PLC0415
    from mailfilter.aws.trace import TraceFilter  # noqa: PLC0415
    from mailfilter.vocabulary.errors import DecisionLogError  # noqa: PLC0415
    from mailfilter_cli.moments import parse_moment  # noqa: PLC0415
    from mailfilter_cli.trace_cmd import decision_trace  # noqa: PLC0415

    loaded, label = _load(file)
    wanted = TraceFilter(since=parse_moment(since), until=parse_moment(until) if until else None, kinds=REPLAY_KINDS)
    store = decision_trace(table)
    try:
        report = run_replay(store.records(wanted), loaded, examples_per_change=examples)
    except DecisionLogError as error:
        raise click.ClickException(str(error)) from None
    print_replay(report, label, since, output_format)
    if not report.replayed:
        raise SystemExit(1)


def _example(change: Any) -> dict[str, Any]:
    record, new = change.record, change.new
    return {
        "at": record.get("at"),
        "message_id": record.get("message_id"),
        "recipient": record.get("recipient"),
        "customer": record.get("customer_name") or record.get("customer"),
        "old": {name: record.get(name) for name in ("action", "effective", "rule", "reason", "deliver_to")},
        "new": {"action": new.action.value, "effective": new.effective.value, "rule": new.rule, "reason": new.reason,
                "deliver_to": list(new.deliver_to)},
    }  # fmt: skip


def print_replay(report: Any, label: str, since: str, output_format: str) -> None:
    skipped = "; ".join(f"{count} {why}" for why, count in sorted(report.skipped.items()))
    if output_format == output.JSON:
        output.json_line(
            {
                "policy": label,
                "since": since,
                "read": report.read,
                "replayed": report.replayed,
                "unchanged": report.unchanged,
                "changed": report.changed,
                "not_replayed": dict(report.skipped),
                "changes": [{"old": old, "new": new, "decisions": n} for (old, new), n in report.transitions.most_common()],
                "actions": [{"old": old, "new": new, "decisions": n} for (old, new), n in report.actions.most_common()],
                "by_partner": [{"partner": p, "old": o, "new": n, "decisions": c} for (p, o, n), c in sorted(report.by_partner.items())],
                "by_customer": [{"customer": k, "old": o, "new": n, "decisions": c} for (k, o, n), c in sorted(report.by_customer.items())],
                "on_trial": dict(report.on_trial),
                "examples": [_example(change) for changes in report.examples.values() for change in changes],
            }
        )
        return
    if output_format == output.CSV:
        rows: list[list[Any]] = [["change", "", old, new, n] for (old, new), n in report.transitions.most_common()]
        rows += [["action", "", old, new, n] for (old, new), n in report.actions.most_common()]
        rows += [["partner", p, o, n, c] for (p, o, n), c in sorted(report.by_partner.items())]
        rows += [["customer", k, o, n, c] for (k, o, n), c in sorted(report.by_customer.items())]
        rows += [["on-trial", rule, "", "", n] for rule, n in sorted(report.on_trial.items())]
        output.csv_rows(("count", "key", "old", "new", "decisions"), rows)
        return
    click.echo(
        f"{label} replayed on {report.replayed} of {report.read} recorded decisions since {since}: "
        f"{report.changed} would change, {report.unchanged} would not" + (f"; not replayed: {skipped}" if skipped else "")
    )
    if report.transitions:
        view = output.table("old (action rule)", "new (action rule)", "decisions", title="changes")
        output.print_table(output.fit(view, [[o, n, str(c)] for (o, n), c in report.transitions.most_common()]))
        view = output.table("partner", "old", "new", "decisions", title="per partner")
        output.print_table(output.fit(view, [[p, o, n, str(c)] for (p, o, n), c in sorted(report.by_partner.items())], keep_whole=(0,)))
        view = output.table("customer", "old", "new", "decisions", title="per customer")
        output.print_table(output.fit(view, [[k, o, n, str(c)] for (k, o, n), c in sorted(report.by_customer.items())]))
        view = output.table("message id", "recipient", "old", "new", "new reason", title="examples")
        example_rows = [
            [ch.record.get("message_id", ""), ch.record.get("recipient", ""), old, new, ch.new.reason]
            for (old, new), changes in report.examples.items()
            for ch in changes
        ]
        output.print_table(output.fit(view, example_rows, keep_whole=(0, 1)))
    for rule, count in sorted(report.on_trial.items()):
        click.echo(f'on trial (mode = "audit"): {rule} would decide {count} recorded decision(s), recorded and counted, not enforced')
