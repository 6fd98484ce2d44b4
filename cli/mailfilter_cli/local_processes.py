"""Finding and stopping the processes `mailfilter local up` leaves running: its supervisor and DynamoDB Local.

A pid is signalled only while its command line still names what was started
(a reused pid is never signalled).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path
from typing import Any


def _command_line(pid: int) -> str | None:
    """The process's command line, or None when /proc cannot say (not Linux)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except FileNotFoundError:
        return "" if Path("/proc/self").exists() else None
    except OSError:
        return None


def alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie does not; a child of ours is reaped here)."""
    with contextlib.suppress(ChildProcessError, OSError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError, IndexError):
        status = Path(f"/proc/{pid}/stat").read_text()
        return status[status.rindex(")") + 2] not in "ZX"
    return True


def _is_ours(pid: int, marker: str) -> bool:
    """`pid` runs and its command line has `marker` (a reused pid is never signalled)."""
    if not alive(pid):
        return False
    command = _command_line(pid)
    return command is None or marker in command


SUPERVISOR_MARKER = "mailfilter_cli.local_cmd supervise"
JAVA_MARKER = "DynamoDBLocal.jar"


def supervisor_running(state: dict[str, Any] | None) -> bool:
    return state is not None and _is_ours(state["pid"], SUPERVISOR_MARKER)


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def stop_processes(state: dict[str, Any], timeout: float = 15.0) -> list[str]:
    """SIGTERM the supervisor (it stops DynamoDB Local), SIGKILL what is still there after `timeout`; what was stopped."""
    stopped = []
    pid, java = state["pid"], state.get("dynamodb_local_pid")
    if _is_ours(pid, SUPERVISOR_MARKER):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        if not _wait_gone(pid, timeout):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            _wait_gone(pid, 5)
        stopped.append(f"supervisor (pid {pid})")
    if java and _is_ours(java, JAVA_MARKER) and not _wait_gone(java, 5):  # it dies with the supervisor; this is the belt
        with contextlib.suppress(ProcessLookupError):
            os.kill(java, signal.SIGKILL)
        _wait_gone(java, 5)
    if java:
        stopped.append(f"DynamoDB Local (pid {java})")
    return stopped
