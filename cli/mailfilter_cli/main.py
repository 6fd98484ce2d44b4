"""The `mailfilter` command: one group, one module per subcommand, each imported only when it is used.

`mailfilter --help` starts in a fraction of a second (bench/cli_startup.py)
because a subcommand can be registered by where it lives, "module:attribute":
its module is imported when the subcommand runs or shows its own help, and the
group's listing shows the short help given at registration. A command object
registers as in click, imported up front.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import click

from mailfilter_cli import settings

PACKAGE = "csp-mail-filter"


class LazyGroup(click.Group):
    """A click group whose subcommands may be given as "module:attribute", imported on first use.

    `add_command(command)` works as in click; `add_command("pkg.module:name", "name", short_help="...")`
    registers without importing. The short help is what `--help` lists; without one,
    listing the group imports the module to read it.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands: dict[str, tuple[str, str | None]] = {}

    def add_command(self, cmd: click.Command | str, name: str | None = None, *, short_help: str | None = None) -> None:  # type: ignore[override]
        if isinstance(cmd, str):
            module, _, attribute = cmd.partition(":")
            if not module or not attribute:
                raise ValueError(f"a lazy command is 'module:attribute', not {cmd!r}")
            self.lazy_commands[name or attribute.replace("_", "-")] = (cmd, short_help)
            return
        super().add_command(cmd, name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy_commands:
            super().add_command(self._load(cmd_name), cmd_name)
        return self.commands.get(cmd_name)

    def _load(self, name: str) -> click.Command:
        spec, _ = self.lazy_commands[name]
        module, _, attribute = spec.partition(":")
        command = getattr(importlib.import_module(module), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{spec} is not a click command")
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """As click lists commands, from registered short help where a command is not imported yet."""
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows: list[tuple[str, str]] = []
        for name in names:
            short_help = None if name in self.commands else self.lazy_commands[name][1]
            if short_help is None:
                command = self.get_command(ctx, name)
                if command is None or command.hidden:
                    continue
                short_help = command.get_short_help_str(limit)
            rows.append((name, short_help))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def _version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415 - only for --version

    try:
        number = version(PACKAGE)
    except PackageNotFoundError:
        number = "unknown (not installed)"
    click.echo(f"mailfilter ({PACKAGE}) {number}")
    ctx.exit()


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_version, help="Show the installed version and exit.")
@click.option(
    "--project-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar=settings.PROJECT_DIR_VARIABLE,
    show_envvar=True,
    help="The csp-mail-filter checkout (holding template.yaml); default: the current directory or a parent.",
)
@click.pass_context
def cli(ctx: click.Context, project_dir: Path | None) -> None:
    """csp-mail-filter: explain, inspect and operate the CSP mail filter.

    Every command takes --format table|json|csv (those its output has) and reads
    `-` as standard input where it takes a file. Settings come from flags, then
    environment variables, then .mailfilter/local.env.json (`mailfilter local up`).
    Exit status: 0 ok, 1 findings (not found, refused, deferred), 2 usage errors.
    """
    settings.remember_project_dir(ctx, project_dir)


cli.add_command("mailfilter_cli.explain_cmd:explain", short_help="What the filter decides for each message of events.")
cli.add_command("mailfilter_cli.directory_cmd:directory", short_help="Load, export and inspect the customer directory.")
cli.add_command("mailfilter_cli.quarantine_cmd:quarantine", short_help="List, show, release and purge quarantined mail.")
cli.add_command("mailfilter_cli.policy_cmd:policy", short_help="Validate, show and replay policy files.")
cli.add_command("mailfilter_cli.trace_cmd:trace", short_help="Recorded decisions by message, customer, partner, rule, time.")
cli.add_command("mailfilter_cli.report_cmd:report", short_help="Charts of recorded decisions as one HTML file.")
cli.add_command("mailfilter_cli.send_cmd:send", short_help="Store a message in S3 and queue it for the gateway.")
cli.add_command("mailfilter_cli.invoke_cmd:invoke", short_help="Invoke one function of template.yaml in this process.")
cli.add_command("mailfilter_cli.demo_cmd:demo", short_help="Run the sample events through the real functions.")
cli.add_command("mailfilter_cli.local_cmd:local", short_help="Run the template's AWS services here: DynamoDB Local and moto.")

if __name__ == "__main__":  # python -m mailfilter_cli.main
    cli(prog_name="mailfilter")
