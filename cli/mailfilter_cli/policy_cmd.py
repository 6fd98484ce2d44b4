"""`mailfilter policy`: validate a policy file and show its decision table."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from mailfilter.policy.config import PolicyFileError, load_policy


@click.group()
def policy() -> None:
    """Validate and show policy files."""


@policy.command()
@click.argument("file", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path))
def check(file: Path | None) -> None:
    """Validate FILE (default: the shipped policy) and print its decision table."""
    try:
        loaded = load_policy(file)
    except PolicyFileError as error:
        raise click.ClickException(str(error)) from None
    table = Table(title=f"{file or 'shipped default policy'}: mode {loaded.mode.value}, default cloud {loaded.default_cloud.value}")
    for column in ("rule", "seed", "segments", "categories", "product", "action"):
        table.add_column(column)
    for rule in loaded.rules:
        table.add_row(
            rule.id,
            str(rule.seed_rule or "-"),
            ", ".join(rule.segments),
            ", ".join(rule.categories),
            rule.product.value,
            rule.action.value,
        )
    Console(width=160).print(table)
    click.echo(
        f"valid: {len(loaded.rules)} rules, {len(loaded.senders)} sender and {len(loaded.desks)} desk addresses, "
        f"{len(loaded.subjects)} subject and {len(loaded.products)} product patterns"
    )
