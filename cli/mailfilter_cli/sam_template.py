"""template.yaml read the way `sam local` reads it: functions, their environment, and table definitions.

`mailfilter invoke`, `mailfilter demo`, `mailfilter local up` and the tests take resource definitions
from the template itself, so nothing local can drift from what is deployed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from botocore.client import BaseClient

from mailfilter_cli.settings import project_dir

LOCAL_ACCOUNT, LOCAL_REGION, STACK_NAME = "123456789012", "us-east-1", "csp-mail-filter"
_PSEUDO = {"AWS::Region": LOCAL_REGION, "AWS::AccountId": LOCAL_ACCOUNT, "AWS::Partition": "aws", "AWS::StackName": STACK_NAME}
# CreateTable takes these properties of AWS::DynamoDB::Table as the template writes them.
_CREATE_TABLE_PROPERTIES = ("AttributeDefinitions", "KeySchema", "BillingMode", "GlobalSecondaryIndexes", "LocalSecondaryIndexes")


class TemplateError(ValueError):
    """template.yaml lacks what was asked of it."""


class _TemplateLoader(yaml.SafeLoader):
    """Reads CloudFormation's short-form tags (!Ref, !GetAtt, !Sub, ...) as {"!Tag": value}."""


def _any_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.MappingNode):
        return {f"!{suffix}": loader.construct_mapping(node, deep=True)}
    if isinstance(node, yaml.SequenceNode):
        return {f"!{suffix}": loader.construct_sequence(node, deep=True)}
    return {f"!{suffix}": loader.construct_scalar(node)}


_TemplateLoader.add_multi_constructor("!", _any_tag)


def project_root() -> Path:
    """The project directory the command runs in (settings.project_dir): never a path beside the installed package."""
    root = project_dir()
    assert root is not None  # required=True raises ProjectNotFoundError instead
    return root


def project_template() -> Path:
    return project_root() / "template.yaml"


def load_template(path: Path | None = None) -> dict[str, Any]:
    return _read_template((path or project_template()).resolve())


@cache
def _read_template(path: Path) -> dict[str, Any]:
    return yaml.load(path.read_text(encoding="utf-8"), Loader=_TemplateLoader)


def resources_of_type(resource_type: str, template: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """The template's resources of one type ("AWS::SQS::Queue", ...), by logical id, in template order."""
    resources = (template or load_template()).get("Resources", {})
    return {logical_id: resource for logical_id, resource in resources.items() if resource.get("Type") == resource_type}


def resource_variables(template: dict[str, Any] | None = None) -> dict[str, str]:
    """Environment variables the functions declare as `!Ref <resource>`: variable name -> the resource's logical id."""
    template = template or load_template()
    resources = template.get("Resources", {})
    environments = [template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})]
    environments += [
        resource.get("Properties", {}).get("Environment", {}).get("Variables", {})
        for resource in resources.values()
        if resource.get("Type") == "AWS::Serverless::Function"
    ]
    variables: dict[str, str] = {}
    for environment in environments:
        for name, value in environment.items():
            if isinstance(value, dict) and len(value) == 1:
                (tag, argument), *_ = value.items()
                if tag in ("!Ref", "Ref") and argument in resources:
                    variables[name] = argument
    return variables


def table_definition(logical_id: str, template: dict[str, Any] | None = None) -> dict[str, Any]:
    """The CreateTable arguments (without TableName) of one AWS::DynamoDB::Table."""
    resource = (template or load_template())["Resources"].get(logical_id)
    if resource is None or resource.get("Type") != "AWS::DynamoDB::Table":
        raise TemplateError(f"template.yaml has no AWS::DynamoDB::Table named {logical_id!r}")
    properties = resource["Properties"]
    return {name: properties[name] for name in _CREATE_TABLE_PROPERTIES if name in properties}


def ttl_attribute(logical_id: str, template: dict[str, Any] | None = None) -> str | None:
    ttl = (template or load_template())["Resources"][logical_id]["Properties"].get("TimeToLiveSpecification") or {}
    return ttl.get("AttributeName") if ttl.get("Enabled") else None


def create_table(client: BaseClient, logical_id: str, table_name: str, template: dict[str, Any] | None = None) -> None:
    """Create `table_name` as the template defines `logical_id` (keys, indexes, TTL) and wait for it."""
    client.create_table(TableName=table_name, **table_definition(logical_id, template))
    client.get_waiter("table_exists").wait(TableName=table_name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 100})
    if attribute := ttl_attribute(logical_id, template):
        client.update_time_to_live(TableName=table_name, TimeToLiveSpecification={"AttributeName": attribute, "Enabled": True})


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    code_dir: Path
    module: str
    handler: str
    environment: dict[str, str]


def _resolve(value: Any, parameters: dict[str, str]) -> str:
    """An environment value as sam local resolves it: parameters by value, other resources by logical id."""
    if isinstance(value, bool):
        return str(value).lower()
    if not isinstance(value, dict):
        return str(value)
    (tag, argument), *_ = value.items()
    if tag in ("!Ref", "Ref"):
        return parameters.get(argument, _PSEUDO.get(argument, argument))
    if tag in ("!Sub", "Fn::Sub"):
        text = argument if isinstance(argument, str) else argument[0]
        return re.sub(r"\$\{([^}!]+)\}", lambda m: parameters.get(m[1], _PSEUDO.get(m[1], m[1].split(".")[0])), text)
    if tag in ("!Join", "Fn::Join"):
        separator, items = argument
        return separator.join(_resolve(item, parameters) for item in items)
    return ""  # GetAtt, If, ImportValue ... are not known before deployment


def parameter_values(template: dict[str, Any], overrides: dict[str, str] | None = None) -> dict[str, str]:
    values = {name: str(spec.get("Default", "")) for name, spec in template.get("Parameters", {}).items()}
    values.update(overrides or {})
    return values


def function_spec(logical_id: str, env_vars: dict[str, Any] | None = None, template_path: Path | None = None) -> FunctionSpec:
    """A function's code, handler and environment; `env_vars` is a `sam local --env-vars` document.

    As with sam local, the document's "Parameters" section overrides variables of
    every function and its section named after the function overrides that one's;
    only variables the template declares are set.
    """
    template_path = (template_path or project_template()).resolve()
    template = load_template(template_path)
    resource = template.get("Resources", {}).get(logical_id)
    if resource is None or resource.get("Type") != "AWS::Serverless::Function":
        functions = sorted(k for k, v in template["Resources"].items() if v.get("Type") == "AWS::Serverless::Function")
        raise TemplateError(f"no function {logical_id!r} in {template_path.name}; functions: {', '.join(functions)}")
    globals_ = template.get("Globals", {}).get("Function", {})
    properties = {**globals_, **resource.get("Properties", {})}
    declared = {
        **globals_.get("Environment", {}).get("Variables", {}),
        **resource.get("Properties", {}).get("Environment", {}).get("Variables", {}),
    }
    parameters = parameter_values(template)
    environment = {name: _resolve(value, parameters) for name, value in declared.items()}
    for section in ("Parameters", logical_id):
        for name, value in (env_vars or {}).get(section, {}).items():
            if name in environment:
                environment[name] = str(value)
    module, _, handler = properties["Handler"].rpartition(".")
    code_dir = template_path.parent / _resolve(properties["CodeUri"], parameters)
    return FunctionSpec(logical_id, code_dir, module, handler, environment)


def read_env_vars(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise TemplateError(f"{path}: cannot read the env-vars file: {error}") from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise TemplateError(f'{path}: expected {{"Parameters": {{...}}, "<FunctionId>": {{...}}}} as sam local reads it')
    return data
