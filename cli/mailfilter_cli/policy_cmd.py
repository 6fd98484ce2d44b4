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
    from mailfilter.policy.config import PolicyFileError, load_policy  # noqa: PLC0415

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
