"""What template.yaml declares, created on the local services: tables, bucket, queues, configuration set, SES identities.

`create_resources` also imports a directory with `mailfilter directory import`'s
code and stores each sample inbound message where the receipt rule's S3 action
would have (`mailfilter local up`, `mailfilter demo`).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mailfilter.aws import clients
from mailfilter.vocabulary.ses import SMTP_PREFIX
from mailfilter_cli import settings
from mailfilter_cli.directory_import import import_directory
from mailfilter_cli.local_events import INBOUND, SMTP, function_for, message_ids
from mailfilter_cli.sam_template import (
    STACK_NAME,
    create_table,
    function_spec,
    load_template,
    parameter_values,
    project_template,
    resource_variables,
    resources_of_type,
)


@dataclass
class Resources:
    """What `create_resources` made: local names by logical id, and the variables that name them."""

    names: dict[str, tuple[str, str]] = field(default_factory=dict)  # logical id -> (type, local name)
    variables: dict[str, str] = field(default_factory=dict)  # DIRECTORY_TABLE -> its local name, ...
    queues: dict[str, str] = field(default_factory=dict)  # logical id -> queue URL
    identities: list[str] = field(default_factory=list)
    inbound: list[str] = field(default_factory=list)  # keys of the stored sample messages
    directory: str = ""  # what the import said


def local_name(logical_id: str, resource_type: str) -> str:
    """The logical id, as sam local resolves a `!Ref`; a bucket's is prefixed and lower-cased, as S3 requires."""
    return f"{STACK_NAME}-{logical_id}".lower() if resource_type == "AWS::S3::Bucket" else logical_id


def _queue_attributes(properties: dict[str, Any]) -> dict[str, str]:
    simple = ("VisibilityTimeout", "MessageRetentionPeriod", "DelaySeconds", "MaximumMessageSize", "ReceiveMessageWaitTimeSeconds")
    flags = ("SqsManagedSseEnabled", "FifoQueue", "ContentBasedDeduplication")
    attributes = {name: str(properties[name]) for name in simple if isinstance(properties.get(name), int | str)}
    attributes |= {name: str(properties[name]).lower() for name in flags if isinstance(properties.get(name), bool)}
    return attributes


def create_resources(
    directory_file: Path | None,
    events_dir: Path | None,
    template_path: Path | None = None,
    say: Callable[[str], None] = lambda text: None,
) -> Resources:
    """Create what the template declares on the current endpoints, import the directory, store the inbound samples."""
    template_path = template_path or project_template()
    template = load_template(template_path)
    made = Resources()
    for resource_type in ("AWS::DynamoDB::Table", "AWS::S3::Bucket", "AWS::SQS::Queue", "AWS::SES::ConfigurationSet"):
        for logical_id in resources_of_type(resource_type, template):
            made.names[logical_id] = (resource_type, local_name(logical_id, resource_type))
    name = {logical_id: local for logical_id, (_, local) in made.names.items()}
    made.variables = {variable: name[logical_id] for variable, logical_id in resource_variables(template).items() if logical_id in name}
    # and the other settings `mailfilter` commands read from the env file (prefixes, the filter's sender), as deployed
    declared = function_spec(INBOUND, template_path=template_path).environment
    made.variables |= {
        variable: declared[variable] for variable in sorted(settings.RESOURCE_NAMES - set(made.variables)) if declared.get(variable)
    }

    for logical_id in resources_of_type("AWS::DynamoDB::Table", template):
        create_table(clients.client("dynamodb"), logical_id, name[logical_id], template)
    for logical_id in resources_of_type("AWS::S3::Bucket", template):
        clients.client("s3").create_bucket(Bucket=name[logical_id])
    sqs = clients.client("sqs")
    queues = resources_of_type("AWS::SQS::Queue", template)
    for logical_id, resource in queues.items():
        attributes = _queue_attributes(resource.get("Properties", {}))
        made.queues[logical_id] = sqs.create_queue(QueueName=name[logical_id], Attributes=attributes)["QueueUrl"]
    for logical_id, resource in queues.items():  # once every queue exists: a redrive policy names its dead-letter queue's ARN
        redrive = resource.get("Properties", {}).get("RedrivePolicy")
        if redrive:
            target = redrive["deadLetterTargetArn"]["!GetAtt"].split(".")[0]
            arn = sqs.get_queue_attributes(QueueUrl=made.queues[target], AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            policy = {"deadLetterTargetArn": arn, "maxReceiveCount": int(redrive.get("maxReceiveCount", 10))}
            sqs.set_queue_attributes(QueueUrl=made.queues[logical_id], Attributes={"RedrivePolicy": json.dumps(policy)})
    # A queue's Ref is its URL, as CloudFormation resolves it.
    made.variables |= {
        variable: made.queues[logical_id] for variable, logical_id in resource_variables(template).items() if logical_id in made.queues
    }
    sesv2 = clients.client("sesv2")
    for logical_id in resources_of_type("AWS::SES::ConfigurationSet", template):
        sesv2.create_configuration_set(ConfigurationSetName=name[logical_id])
    # The identities the deployed filter sends as, verified after the first deploy (docs/deploy.md).
    parameters = parameter_values(template)
    made.identities = [d.strip() for d in parameters.get("VendorDomains", "").split(",") if d.strip()]
    made.identities += [parameters["FilterFromAddress"]] if parameters.get("FilterFromAddress") else []
    for identity in dict.fromkeys(made.identities):
        sesv2.create_email_identity(EmailIdentity=identity)
    say(f"created {len(made.names)} resources of {template_path.name} and {len(made.identities)} SES identities")

    if directory_file is not None:
        report = import_directory(directory_file, made.variables["DIRECTORY_TABLE"])
        made.directory = f"{directory_file}: {report.partners} partners, {report.customers} customers"
        say(f"imported {made.directory}")
    if events_dir is not None:
        made.inbound = store_inbound_samples(events_dir, made.variables["MAIL_BUCKET"], template_path)
        say(f"stored {len(made.inbound)} inbound sample messages under s3://{made.variables['MAIL_BUCKET']}/")
    return made


def store_inbound_samples(events_dir: Path, bucket: str, template_path: Path | None = None) -> list[str]:
    """Each inbound event's raw message (the .eml beside it), where the receipt rule's S3 action stores it."""
    prefix = function_spec(INBOUND, template_path=template_path).environment.get("INBOUND_PREFIX", "inbound/")
    keys = []
    for path in sorted(events_dir.glob("*.json")):
        raw = path.with_suffix(".eml")
        with contextlib.suppress(ValueError, OSError):
            event = json.loads(path.read_text(encoding="utf-8"))
            if function_for(event) == SMTP and raw.is_file():  # where Mail Manager's WriteToS3 action stores it
                key = f"{SMTP_PREFIX}{event['messageId']}"
                clients.client("s3").put_object(Bucket=bucket, Key=key, Body=raw.read_bytes())
                keys.append(key)
            if function_for(event) == INBOUND and raw.is_file():
                key = f"{prefix}{message_ids(event)[0]}"
                clients.client("s3").put_object(Bucket=bucket, Key=key, Body=raw.read_bytes())
                keys.append(key)
    return keys
