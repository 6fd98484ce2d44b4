"""`mailfilter explain`: the functions' decision path, with no side effects."""

from __future__ import annotations

import click


@click.command()
def explain() -> None:
    """Explain what the filter would do with each message of an event."""
