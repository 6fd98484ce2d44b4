"""`mailfilter local supervise` (hidden): the process in which the local services outlive `mailfilter local up`.

`up` starts it (`start_supervisor`) as `python -m mailfilter_cli.local_cmd supervise`,
and waits for it to write its pid and endpoints to `.mailfilter/local.json`
(`wait_for_supervisor`). Nothing is left behind:

- moto's server is a thread of the supervisor; DynamoDB Local is its child, and
  on Linux dies with it whatever kills it (prctl PR_SET_PDEATHSIG, SIGKILL);
- SIGTERM, SIGINT and SIGHUP make the supervisor stop DynamoDB Local and exit;
- started attached (`up --foreground`, `up --attach PID`), a watchdog thread stops
  it when that process ends, and with `--foreground` the kernel also sends it
  SIGTERM when its parent dies;
- a supervisor whose state file is gone or names another process stops too, so
  none runs that `local status` cannot find.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from mailfilter_cli.dynamodb_local import die_with_parent
from mailfilter_cli.local_files import Paths, read_state, write_json
from mailfilter_cli.local_processes import alive, stop_processes
from mailfilter_cli.local_services import LocalError, services

START_TIMEOUT = 90.0


def start_supervisor(
    paths: Paths, dynamodb: str, dynamodb_port: int, moto_port: int, *, attach: int | None, foreground: bool
) -> subprocess.Popen:
    """Start the supervisor in a session of its own, its output to the log; with `foreground` it stops when this process dies."""
    command = [sys.executable, "-m", "mailfilter_cli.local_cmd", "supervise", "--project-dir", str(paths.project), "--dynamodb", dynamodb]
    command += ["--dynamodb-port", str(dynamodb_port), "--moto-port", str(moto_port)]
    watched = os.getpid() if foreground else attach
    if watched is not None:
        command += ["--attach", str(watched)]
    with paths.log.open("w", encoding="utf-8") as log:
        return subprocess.Popen(
            command,
            cwd=paths.project,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # the terminal's Ctrl-C and hang-up are not for it
            close_fds=True,
            # attached to this process: the kernel sends it SIGTERM when this process dies
            preexec_fn=die_with_parent(signal.SIGTERM) if foreground else None,  # noqa: PLW1509 - no threads here yet
        )


def wait_for_supervisor(paths: Paths, supervisor: subprocess.Popen) -> dict[str, Any]:
    """The state the supervisor wrote once its services run; LocalError (with its log's tail) if it does not start."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        state = read_state(paths)
        if state is not None and state["pid"] == supervisor.pid:
            return state
        if supervisor.poll() is not None:
            tail = "".join(paths.log.read_text(encoding="utf-8", errors="replace").splitlines(keepends=True)[-20:])
            raise LocalError(f"the local services did not start (exit code {supervisor.returncode}); {paths.log}:\n{tail}")
        time.sleep(0.05)
    raise LocalError(f"the local services did not start within {START_TIMEOUT:.0f} s; see {paths.log}")


def run_in_foreground(paths: Paths, supervisor: subprocess.Popen) -> None:
    """`up --foreground`: wait for the supervisor; stop it (and forget it) on Ctrl-C, SIGTERM or SIGHUP."""

    def interrupt(signal_number: int, frame: Any) -> None:
        raise KeyboardInterrupt

    for signal_number in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signal_number, interrupt)
    click.echo("running in the foreground: Ctrl-C stops the services", err=True)
    try:
        supervisor.wait()
        click.echo(f"the supervisor exited (code {supervisor.returncode}); see {paths.log}", err=True)
    except KeyboardInterrupt:
        pass
    finally:
        state = read_state(paths) or {"pid": supervisor.pid}
        stop_processes(state)
        if state["pid"] == supervisor.pid:
            paths.state.unlink(missing_ok=True)
            paths.env_file.unlink(missing_ok=True)
        click.echo("local services stopped", err=True)


@click.command(hidden=True)
@click.option("--project-dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--dynamodb", type=click.Choice(["local", "moto"]), default="local")
@click.option("--dynamodb-port", default=0, type=int)
@click.option("--moto-port", default=0, type=int)
@click.option("--attach", type=int, default=None)
def supervise(project_dir: Path, dynamodb: str, dynamodb_port: int, moto_port: int, attach: int | None) -> None:
    """Run the services until signalled (TERM, INT, HUP), or until the attached process ends."""
    paths = Paths(project_dir.resolve())
    stop = threading.Event()  # set by the watchdog thread
    signalled: list[int] = []  # set by the handlers, which must not take the Event's lock the main thread may hold

    def on_signal(signal_number: int, frame: Any) -> None:
        signalled.append(signal_number)

    for signal_number in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signal_number, on_signal)
    pidfd = None
    if attach is not None:  # opened now, so a pid reused while the services start is never mistaken for it
        with contextlib.suppress(AttributeError, OSError):
            pidfd = os.pidfd_open(attach)  # readable once it has exited, whoever reaps it
    me = os.getpid()
    print(f"{datetime.now(UTC).isoformat()} supervisor {me} starting", flush=True)
    notes: list[str] = []

    def note(text: str) -> None:
        print(text, flush=True)
        notes.append(text)

    try:
        with services(dynamodb, dynamodb_port=dynamodb_port, moto_port=moto_port, log=sys.stdout, warn=note) as running:
            state = {
                "pid": me,
                "started": datetime.now(UTC).isoformat(),
                "attached_to": attach,
                "moto": running.moto,
                "dynamodb": running.dynamodb,
                "dynamodb_local_pid": running.dynamodb_local_pid,
                "log": str(paths.log),
                "notes": notes,  # e.g. why moto's DynamoDB stands in for DynamoDB Local
            }
            write_json(paths.state, state)
            print(f"supervisor {me}: {running.database}; moto at {running.moto}", flush=True)
            watchdog = threading.Thread(target=_watchdog, args=(stop, attach, pidfd, paths, me), name="watchdog", daemon=True)
            watchdog.start()  # after DynamoDB Local is forked: no thread of ours runs while its child prepares to exec
            while not signalled and not stop.is_set():
                time.sleep(0.1)
            why = f"signal {signal.Signals(signalled[0]).name}" if signalled else "the watchdog"
            print(f"{datetime.now(UTC).isoformat()} supervisor {me} stopping ({why})", flush=True)
    finally:
        state = read_state(paths)
        if state is not None and state["pid"] == me:
            paths.state.unlink(missing_ok=True)
    print(f"{datetime.now(UTC).isoformat()} supervisor {me} stopped", flush=True)


def _watchdog(stop: threading.Event, attach: int | None, pidfd: int | None, paths: Paths, me: int) -> None:
    """Stop when the attached process ends, or when the state file no longer names this supervisor."""
    next_check = time.monotonic() + 2.0
    while not stop.is_set():
        if pidfd is not None:
            ended = bool(select.select([pidfd], [], [], 0.25)[0])
        else:  # no pidfd (not Linux, or the process was already gone): poll
            time.sleep(0.25)
            ended = attach is not None and not alive(attach)
        if ended:
            print(f"supervisor {me}: process {attach} ended", flush=True)
            break
        if time.monotonic() > next_check:
            next_check = time.monotonic() + 2.0
            state = read_state(paths)
            if state is None or state["pid"] != me:
                print(f"supervisor {me}: {paths.state} no longer names it", flush=True)
                break
    if pidfd is not None:
        os.close(pidfd)
    stop.set()
