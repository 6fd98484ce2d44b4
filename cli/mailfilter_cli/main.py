"""The `mailfilter` command: one group, one module per subcommand."""

from __future__ import annotations

import click

from mailfilter_cli.demo_cmd import demo
from mailfilter_cli.directory_cmd import directory
from mailfilter_cli.explain_cmd import explain
from mailfilter_cli.invoke_cmd import invoke
from mailfilter_cli.policy_cmd import policy
from mailfilter_cli.quarantine_cmd import quarantine


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """csp-mail-filter: explain, inspect and operate the CSP mail filter."""


cli.add_command(explain)
cli.add_command(directory)
cli.add_command(policy)
cli.add_command(invoke)
cli.add_command(demo)
cli.add_command(quarantine)
