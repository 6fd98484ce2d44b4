"""Local invocation without Docker: the template's environment as sam local sets it, the real handlers, the demo."""

from __future__ import annotations

import json
import re

import boto3
import pytest
from click.testing import CliRunner
from moto import mock_aws
from moto.ses.models import ses_backends

from mailfilter.aws import clients
from mailfilter_cli.directory_import import import_directory
from mailfilter_cli.main import cli
from mailfilter_cli.sam_template import LOCAL_ACCOUNT, LOCAL_REGION, TemplateError, function_spec
from mailfilter_testkit.aws_resources import create_tables_from_template, delete_tables
from mailfilter_testkit.paths import EVENTS


def test_function_environment_is_resolved_as_sam_local_resolves_it():
    spec = function_spec("OutboundGatewayFunction")
    assert spec.code_dir.name == "outbound_gateway"
    assert (spec.module, spec.handler) == ("app", "lambda_handler")
    assert spec.environment["DIRECTORY_TABLE"] == "DirectoryTable"  # another resource: its logical id
    assert spec.environment["MAILFILTER_MODE"] == "enforce"  # a parameter: its default


def test_env_vars_file_overrides_declared_variables_only():
    env_vars = {"Parameters": {"MAILFILTER_MODE": "audit", "NOT_DECLARED": "x"}, "OutboundGatewayFunction": {"DIRECTORY_TABLE": "t1"}}
    spec = function_spec("OutboundGatewayFunction", env_vars)
    assert (spec.environment["MAILFILTER_MODE"], spec.environment["DIRECTORY_TABLE"]) == ("audit", "t1")
    assert "NOT_DECLARED" not in spec.environment
    assert function_spec("InboundFilterFunction", env_vars).environment["DIRECTORY_TABLE"] == "DirectoryTable"


def test_unknown_function_names_the_functions_there_are():
    with pytest.raises(
        TemplateError, match="functions: DigestsFunction, InboundFilterFunction, OutboundAuditFunction, OutboundGatewayFunction"
    ):
        function_spec("NoSuchFunction")


@pytest.fixture
def sample_tables(dynamodb_local):
    """The three tables as the template defines them, with the sample directory imported."""
    names = create_tables_from_template(["DirectoryTable", "DecisionsTable", "IdempotencyTable"])
    import_directory(EVENTS / "directory.jsonl", names["DirectoryTable"])
    yield names
    delete_tables(names.values())


def test_invoke_runs_the_real_gateway_handler_with_the_template_environment(sample_tables, dynamodb_local, tmp_path):
    outbound_tables = sample_tables
    env_vars = tmp_path / "env.json"
    tables = {"DIRECTORY_TABLE": "DirectoryTable", "DECISIONS_TABLE": "DecisionsTable", "IDEMPOTENCY_TABLE": "IdempotencyTable"}
    overrides = {variable: outbound_tables[logical] for variable, logical in tables.items()}
    env_vars.write_text(json.dumps({"Parameters": {**overrides, "MAIL_BUCKET": "invoke-test"}}), encoding="utf-8")
    with mock_aws(config={"core": {"passthrough": {"urls": [re.escape(dynamodb_local) + ".*"], "services": []}}}):
        clients.reset()
        boto3.client("s3").create_bucket(Bucket="invoke-test")
        boto3.client("ses").verify_domain_identity(Domain="vendor.example")
        event = EVENTS / "outbound-subscription-to-csp-customer.json"
        result = CliRunner().invoke(cli, ["invoke", "OutboundGatewayFunction", "-e", str(event), "--env-vars", str(env_vars)])
        sent = ses_backends[LOCAL_ACCOUNT][LOCAL_REGION].sent_messages
        destinations = [sorted(set(message.destinations)) for message in sent]
    clients.reset()
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"batchItemFailures": []}
    assert destinations == [["csp-desk@fabrikam.example"]]  # rule 2: the subscription mail went to the partner only


def test_invoke_refuses_an_env_vars_file_of_the_wrong_shape(tmp_path):
    env_vars = tmp_path / "env.json"
    env_vars.write_text('{"Parameters": "x"}', encoding="utf-8")
    result = CliRunner().invoke(
        cli, ["invoke", "OutboundGatewayFunction", "-e", str(EVENTS / "outbound-operational.json"), "--env-vars", str(env_vars)]
    )
    assert result.exit_code == 1
    assert "as sam local reads it" in result.output


def test_demo_runs_every_sample_event_through_the_real_functions(dynamodb_local, tmp_path):
    result = CliRunner().invoke(cli, ["demo", "--log-file", str(tmp_path / "logs.jsonl")])
    assert result.exit_code == 0, result.output
    output = result.output
    assert "AWS DynamoDB Local" in output
    assert 'inbound-csp-customer-to-billing.json → InboundFilterFunction: {"disposition": "STOP_RULE"}' in output
    assert 'inbound-csp-customer-to-support.json → InboundFilterFunction: {"disposition": "CONTINUE"}' in output
    assert "SES sent to csp-desk@fabrikam.example: [CSP customer Tailspin Toys] Your Azure subscription renews" in output
    assert "SES sent to cto@woodgrovebank.com: Introducing new Azure features" in output
    # the SMTP sample goes from Mail Manager's invocation through the intake and the queue to the gateway
    assert "smtp-intercepted-mixed-recipients.json → SmtpIntakeFunction → OutboundGatewayFunction" in output
    assert output.count("quarantined: ") >= 4  # the blocked outbound recipient, spam, DMARC failure, spoofed sender
    assert "violation" in output
    assert re.search(
        r"17 events; recipient decisions: \d+ allow, \d+ block, 1 rejected, \d+ reroute, 1 violation; \d+ messages sent by SES; [4-9] kept",
        output,
    )
    assert (tmp_path / "logs.jsonl").read_text(encoding="utf-8").count('"service":"csp-mail-filter"') > 10
