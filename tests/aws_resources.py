"""AWS resources for tests, defined by template.yaml itself so tests cannot drift from what is deployed."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from botocore.client import BaseClient

from mailfilter.aws import clients

TEMPLATE = Path(__file__).resolve().parent.parent / "template.yaml"

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
