"""AWS resources for tests, defined by template.yaml itself so tests cannot drift from what is deployed.

The template reader and the DynamoDB Local launcher are the operator tool's own
(`mailfilter_cli.sam_template`, `mailfilter_cli.dynamodb_local`), so tests,
benchmarks and `mailfilter demo` start and shape their resources the same way.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from botocore.client import BaseClient

from mailfilter.aws import clients
from mailfilter_cli.dynamodb_local import DynamoDBLocalError, dynamodb_local
from mailfilter_cli.sam_template import create_table, load_template, table_definition

__all__ = ["DynamoDBLocalError", "create_tables_from_template", "delete_tables", "dynamodb_local", "table_definition", "template"]


def template() -> dict[str, Any]:
    return load_template()


def create_tables_from_template(names: Iterable[str], *, client: BaseClient | None = None) -> dict[str, str]:
    """Create each named table of template.yaml under a fresh unique name; return logical name -> table name."""
    client = client or clients.client("dynamodb")
    created: dict[str, str] = {}
    for logical_name in names:
        table_name = f"{logical_name}-{uuid.uuid4().hex[:12]}"
        create_table(client, logical_name, table_name)
        created[logical_name] = table_name
    return created


def delete_tables(table_names: Iterable[str], *, client: BaseClient | None = None) -> None:
    client = client or clients.client("dynamodb")
    for table_name in table_names:
        client.delete_table(TableName=table_name)
