"""`mailfilter local up|down|status|env`: the filter's AWS services on this machine, to operate as in the cloud.

`up` starts AWS's DynamoDB Local (moto's DynamoDB when Java or the jar is missing)
and moto's server for S3, SES, SESv2 and SQS, on free loopback ports; creates
what template.yaml declares (every table, bucket, queue and configuration set,
and the SES identities its parameters name); imports a directory with
`mailfilter directory import`'s code; stores each sample inbound message where
the receipt rule's S3 action would have; and writes `.mailfilter/local.env.json`,
a `sam local invoke --env-vars` document that `mailfilter invoke` reads by default.

The services outlive `up`: they run in a supervisor process of their own
(`python -m mailfilter_cli.local_cmd supervise`), which stops with them and
leaves nothing behind.

The work is done by:

- local_services: the services themselves (`services()`), and whether one answers;
- local_stack: the template's resources (`create_resources()`);
- local_supervisor: starting the supervisor, waiting for it, and the supervisor itself;
- local_processes: finding and stopping the supervisor and DynamoDB Local;
- local_files: .mailfilter/'s state file, log and env-vars file;
- local_events: which function takes an event.

`mailfilter demo` runs the same `services()` and `create_resources()` in its own process.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import click

from mailfilter_cli.local_files import env_vars_document, export_lines, project_paths, read_state, write_json
from mailfilter_cli.local_lambda import environment
from mailfilter_cli.local_processes import stop_processes, supervisor_running
from mailfilter_cli.local_services import MOTO_SERVICES, LocalError, Services, answers
from mailfilter_cli.local_stack import create_resources
from mailfilter_cli.local_supervisor import run_in_foreground, start_supervisor, supervise, wait_for_supervisor


@click.group()
def local() -> None:
    """The filter's AWS services on this machine: DynamoDB Local and moto, shaped by template.yaml."""


local.add_command(supervise)


@local.command()
@click.option(
    "--directory",
    "directory_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Directory to import (JSON Lines; default: the project's events/directory.jsonl).",
)
@click.option(
    "--events",
    "events_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Where the inbound-*.json events and their .eml raw messages are (default: the project's events/).",
)
@click.option(
    "--dynamodb", type=click.Choice(["local", "moto"]), default="local", show_default=True, help="DynamoDB Local (needs Java) or moto."
)
@click.option("--dynamodb-port", default=0, type=click.IntRange(0, 65535), help="DynamoDB Local's port (default: a free one).")
@click.option("--moto-port", default=0, type=click.IntRange(0, 65535), help="moto's port (default: a free one).")
@click.option("--foreground", is_flag=True, help="Run until Ctrl-C, and stop with this command whatever ends it.")
@click.option("--attach", type=int, metavar="PID", help="Stop the services when process PID ends (a script passes $$).")
@click.option(
    "-t", "--template", "template_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Default: the project's."
)
def up(
    directory_file: Path | None,
    events_dir: Path | None,
    dynamodb: str,
    dynamodb_port: int,
    moto_port: int,
    foreground: bool,
    attach: int | None,
    template_file: Path | None,
) -> None:
    """Start the services, create the template's resources, and print `export` lines for a shell.

    The services keep running after this command (`mailfilter local down` stops
    them). Standard output is only the export lines: `eval "$(mailfilter local up)"`.
    """
    started = time.monotonic()
    paths = project_paths()
    template_file = (template_file or paths.project / "template.yaml").resolve()
    events_dir = events_dir or paths.project / "events"
    directory_file = directory_file or events_dir / "directory.jsonl"
    for given, what in ((events_dir, "events directory"), (directory_file, "directory file")):
        if not given.exists():
            raise click.UsageError(f"no {what} {given}: pass --events/--directory")
    state = read_state(paths)
    if supervisor_running(state):
        raise LocalError(f"the local services already run (supervisor pid {state['pid']}); `mailfilter local down` stops them")
    for stale in (paths.state, paths.env_file):
        stale.unlink(missing_ok=True)
    paths.directory.mkdir(parents=True, exist_ok=True)

    supervisor = start_supervisor(paths, dynamodb, dynamodb_port, moto_port, attach=attach, foreground=foreground)
    try:
        state = wait_for_supervisor(paths, supervisor)
        running = Services(state["moto"], state["dynamodb"], state.get("dynamodb_local_pid"))
        with environment(running.environment()):
            made = create_resources(directory_file, events_dir, template_file, say=lambda text: click.echo(f"  {text}", err=True))
        document = env_vars_document(running, made)
        write_json(paths.env_file, document)
        write_json(paths.state, {**state, "resources": asdict(made), "env_file": str(paths.env_file)})
    except BaseException:
        stop_processes({"pid": supervisor.pid, **(read_state(paths) or {})})
        paths.state.unlink(missing_ok=True)
        raise
    seconds = time.monotonic() - started
    for text in state.get("notes", []):
        click.echo(text, err=True)
    click.echo(
        f"local services up in {seconds:.1f} s (supervisor pid {supervisor.pid}): {running.database}; moto at {running.moto}", err=True
    )
    click.echo(f"env-vars file for `mailfilter invoke`: {_shown(paths.env_file)}; stop with `mailfilter local down`", err=True)
    click.echo(export_lines(document), nl=False)
    if foreground:
        run_in_foreground(paths, supervisor)


def _shown(path: Path) -> str:
    with contextlib.suppress(ValueError):
        return str(path.relative_to(Path.cwd()))
    return str(path)


@local.command()
def down() -> None:
    """Stop the local services and the processes they run."""
    started = time.monotonic()
    paths = project_paths()
    state = read_state(paths)
    if not supervisor_running(state):
        paths.env_file.unlink(missing_ok=True)
        paths.state.unlink(missing_ok=True)
        click.echo("no local services run here; nothing to stop")
        return
    stopped = stop_processes(state)
    paths.env_file.unlink(missing_ok=True)
    paths.state.unlink(missing_ok=True)
    click.echo(f"stopped {' and '.join(stopped)} in {time.monotonic() - started:.1f} s")


_LABELS = {
    "AWS::DynamoDB::Table": "tables",
    "AWS::S3::Bucket": "bucket",
    "AWS::SQS::Queue": "queues",
    "AWS::SES::ConfigurationSet": "configuration set",
}


@local.command()
def status() -> None:
    """What runs where; exits 1 when nothing runs or a service does not answer."""
    paths = project_paths()
    state = read_state(paths)
    if not supervisor_running(state):
        click.echo(f"no local services run here (no live supervisor in {_shown(paths.state)}); `mailfilter local up` starts them")
        sys.exit(1)
    since = datetime.fromisoformat(state["started"])
    uptime = int((datetime.now(UTC) - since).total_seconds())
    attached = f"stops with pid {state['attached_to']}" if state.get("attached_to") else "detached"
    ok = True
    rows = [("supervisor", f"pid {state['pid']}, up {uptime // 60} min {uptime % 60} s, {attached}; log {_shown(paths.log)}")]
    for label, endpoint, detail in (
        (
            "DynamoDB",
            state["dynamodb"],
            f"AWS DynamoDB Local, pid {state['dynamodb_local_pid']}" if state.get("dynamodb_local_pid") else "moto",
        ),
        (", ".join(MOTO_SERVICES).replace("SESV2", "SESv2"), state["moto"], "moto, in the supervisor"),
    ):
        answering = answers(endpoint)
        ok &= answering
        rows.append((label, f"{endpoint} ({detail}): {'answers' if answering else 'DOES NOT ANSWER'}"))
    made = state.get("resources") or {}
    by_type: dict[str, list[str]] = {}
    for resource_type, name in (made.get("names") or {}).values():
        by_type.setdefault(resource_type, []).append(name)
    rows += [(_LABELS.get(kind, kind), ", ".join(names)) for kind, names in by_type.items()]
    if made:
        rows.append(("SES identities", ", ".join(made.get("identities", []))))
        rows.append(("directory", made.get("directory") or "-"))
        rows.append(("inbound samples", f"{len(made.get('inbound', []))} raw messages under inbound/"))
    rows.append(("env-vars file", _shown(paths.env_file) if paths.env_file.exists() else "not written (resources not created)"))
    width = max(len(label) for label, _ in rows)
    for label, text in rows:
        click.echo(f"{label:<{width}}  {text}")
    if not ok:
        sys.exit(1)


@local.command("env")
def env_cmd() -> None:
    """Print the `export` lines again: eval "$(mailfilter local env)"."""
    paths = project_paths()
    if not supervisor_running(read_state(paths)) or not paths.env_file.exists():
        raise LocalError("no local services run here; `mailfilter local up` starts them")
    click.echo(export_lines(json.loads(paths.env_file.read_text(encoding="utf-8"))), nl=False)


if __name__ == "__main__":
    local()
