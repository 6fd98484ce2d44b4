"""template.yaml as written and as SAM expands it (aws-sam-translator, offline), and the IAM statements in it.

The template and least-privilege tests read the template through these, so they see the
roles, SAM's own policies and managed policy attachments as CloudFormation will deploy them.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from functools import cache
from typing import Any

from samtranslator.parser import parser
from samtranslator.translator.translator import Translator
from samtranslator.yaml_helper import yaml_parse

from mailfilter_testkit.paths import ROOT

TEMPLATE = ROOT / "template.yaml"


@cache
def raw_template() -> dict[str, Any]:
    return yaml_parse(TEMPLATE.read_text(encoding="utf-8"))


def resources(kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in raw_template()["Resources"].items() if r["Type"] == kind}


def expand(template: dict[str, Any]) -> dict[str, Any]:
    """The CloudFormation that SAM makes of a template, offline (no managed policy lookups)."""
    template = copy.deepcopy(template)
    for resource in template["Resources"].values():
        properties = resource.get("Properties", {})
        if resource["Type"] == "AWS::Serverless::Function":
            properties["CodeUri"] = "s3://artifacts/function.zip"
        elif resource["Type"] == "AWS::Serverless::LayerVersion":
            properties["ContentUri"] = "s3://artifacts/layer.zip"
    translator = Translator(managed_policy_map=None, sam_parser=parser.Parser(), plugins=[])
    return translator.translate(sam_template=template, parameter_values={"AWS::Region": "us-east-1"}, get_managed_policy_map=dict)


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def identity_statements(cfn: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every statement of every role's inline policies and of every IAM policy resource."""
    for name, resource in cfn["Resources"].items():
        properties = resource.get("Properties", {})
        documents = []
        if resource["Type"] == "AWS::IAM::Role":
            documents = [p["PolicyDocument"] for p in properties.get("Policies", [])]
        elif resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            documents = [properties["PolicyDocument"]]
        for document in documents:
            for statement in as_list(document["Statement"]):
                yield name, statement
