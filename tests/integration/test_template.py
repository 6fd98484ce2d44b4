"""template.yaml: linters, least privilege, and the wiring the functions rely on.

The IAM checks run on the template as SAM expands it (aws-sam-translator),
so they see the roles, SAM's own policies and managed policy attachments
exactly as CloudFormation will deploy them. `sam validate --lint` and checkov
live in the tools environment (`make tools`); without it those two tests skip,
and `make check-template` (which CI runs) requires them.
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import pytest

from mailfilter_testkit.paths import ROOT
from mailfilter_testkit.sam_expansion import as_list, expand, identity_statements, raw_template, resources

TOOLS_BIN = ROOT / ".tools" / "bin"
REQUIRE_TOOLS = os.environ.get("MAILFILTER_REQUIRE_TOOLS") == "1"

# Actions that read or change customer data or send mail: never on Resource "*".
DATA_ACTIONS = ("dynamodb:*", "s3:*object*", "ses:send*", "sqs:*message*")
# Managed policies SAM attaches for logs and tracing; they grant no data action.
ALLOWED_MANAGED_POLICIES = {"AWSLambdaBasicExecutionRole", "AWSXrayWriteOnlyAccess"}


def tool(name: str) -> Path:
    path = TOOLS_BIN / name
    if not path.exists():
        if REQUIRE_TOOLS:
            pytest.fail(f"{path} is missing: run `make tools`")
        pytest.skip(f"{name} is in the tools environment: run `make check-template`")
    return path


def data_actions_on_any_resource(cfn: dict[str, Any]) -> list[str]:
    findings = []
    for owner, statement in identity_statements(cfn):
        if statement.get("Effect") != "Allow":
            continue
        resources_ = as_list(statement.get("Resource", []))
        actions = [a.lower() for a in as_list(statement.get("Action", []))]
        data = [a for a in actions if any(fnmatch(a, pattern) for pattern in DATA_ACTIONS) or a == "*"]
        if data and ("*" in resources_ or "NotResource" in statement):
            findings.append(f"{owner}: {', '.join(data)} on {resources_ or 'NotResource'}")
    return findings


def run(*command: str | Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SAM_CLI_TELEMETRY": "0"}
    return subprocess.run([str(c) for c in command], cwd=ROOT, capture_output=True, text=True, env=env, timeout=300, check=False)


# ---------------------------------------------------------------- linters


def test_cfn_lint_reports_no_findings():
    result = run(Path(sys.executable).parent / "cfn-lint", "--", "template.yaml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_sam_validate_lint_reports_no_findings():
    result = run(tool("sam"), "validate", "--lint", "--template", "template.yaml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is a valid SAM Template" in result.stdout + result.stderr


def test_checkov_fails_no_check():
    result = run(tool("checkov"), "-f", "template.yaml", "--framework", "cloudformation", "--skip-download", "-o", "json", "--quiet")
    report = json.loads(result.stdout)
    failed = [f"{c['check_id']} {c['resource']}" for c in report.get("results", {}).get("failed_checks", [])]
    assert failed == [], failed


def test_every_checkov_skip_gives_its_reason():
    for name, resource in raw_template()["Resources"].items():
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
            assert re.fullmatch(r"CKV2?_AWS_\d+", skip["id"]), (name, skip)
            assert len(skip.get("comment", "").split()) >= 5, f"{name} skips {skip['id']} without a reason"


# ---------------------------------------------------------------- least privilege


def test_no_iam_statement_grants_a_data_action_on_every_resource():
    assert data_actions_on_any_resource(expand(raw_template())) == []


def test_the_data_action_check_catches_a_wildcard_resource():
    template = copy.deepcopy(raw_template())
    statements = template["Resources"]["OutboundAuditFunction"]["Properties"]["Policies"][0]["Statement"]
    statements.append({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"})
    assert data_actions_on_any_resource(expand(template)) == ["OutboundAuditFunctionRole: s3:getobject on ['*']"]


def test_roles_carry_no_managed_policy_with_data_actions():
    # SAM's SQS event would attach AWSLambdaSQSQueueExecutionRole (sqs:*Message on "*").
    for name, resource in expand(raw_template())["Resources"].items():
        if resource["Type"] == "AWS::IAM::Role":
            attached = {str(arn).rsplit("/", 1)[-1] for arn in resource["Properties"].get("ManagedPolicyArns", [])}
            assert attached <= ALLOWED_MANAGED_POLICIES, (name, attached - ALLOWED_MANAGED_POLICIES)


def test_every_ses_send_is_limited_by_from_address():
    sends = [
        (owner, s)
        for owner, s in identity_statements(expand(raw_template()))
        if any(a.lower().startswith("ses:send") for a in as_list(s.get("Action", [])))
    ]
    assert {owner for owner, _ in sends} == {"InboundFilterFunctionRole", "OutboundGatewayFunctionRole", "DigestsFunctionRole"}
    for owner, statement in sends:
        conditions = {key for operator in statement.get("Condition", {}).values() for key in operator}
        assert "ses:FromAddress" in conditions, (owner, statement.get("Sid"))


def test_filter_sends_only_as_the_filter_from_address():
    for function in ("InboundFilterFunction", "OutboundGatewayFunction", "DigestsFunction"):
        statements = resources("AWS::Serverless::Function")[function]["Properties"]["Policies"][0]["Statement"]
        (filter_send,) = [s for s in statements if s["Sid"] == "SendAsFilterOnly"]
        assert filter_send["Condition"] == {"StringEquals": {"ses:FromAddress": {"Ref": "FilterFromAddress"}}}


# ---------------------------------------------------------------- wiring


def test_every_function_runs_python313_on_arm64_traced_unless_the_operator_turns_tracing_off():
    template = raw_template()
    function_globals = template["Globals"]["Function"]
    assert function_globals["Runtime"] == "python3.13"
    assert function_globals["Architectures"] == ["arm64"]
    assert template["Parameters"]["Tracing"]["Default"] == "Active"
    assert template["Conditions"]["TracingOn"] == {"Fn::Equals": [{"Ref": "Tracing"}, "Active"]}
    assert function_globals["Tracing"] == {"Fn::If": ["TracingOn", "Active", "PassThrough"]}
    # off, the handlers do not even import the X-Ray SDK (mailfilter.tracing)
    assert function_globals["Environment"]["Variables"]["POWERTOOLS_TRACE_DISABLED"] == {"Fn::If": ["TracingOn", "false", "true"]}


def test_functions_get_every_setting_they_read_from_the_environment():
    variables = raw_template()["Globals"]["Function"]["Environment"]["Variables"]
    expected = {
        "DIRECTORY_TABLE",
        "DECISIONS_TABLE",
        "IDEMPOTENCY_TABLE",
        "MAIL_BUCKET",
        "INBOUND_PREFIX",
        "QUARANTINE_PREFIX",
        "FILTER_FROM_ADDRESS",
        "MAILFILTER_MODE",
        "DEFAULT_CLOUD",
        "DECISION_RETENTION_DAYS",
        "VENDOR_CONFIGURATION_SET",
        "POLICY_FILE",
        "POLICY_APPCONFIG_APPLICATION",
        "POLICY_APPCONFIG_ENVIRONMENT",
        "POLICY_APPCONFIG_PROFILE",
        "POLICY_MAX_AGE_SECONDS",
        "POWERTOOLS_SERVICE_NAME",
        "POWERTOOLS_METRICS_NAMESPACE",
        "POWERTOOLS_LOG_LEVEL",
    }
    assert expected <= set(variables)
    assert variables["POWERTOOLS_METRICS_NAMESPACE"] == "CspMailFilter"


def test_functions_match_the_handler_contract():
    functions = resources("AWS::Serverless::Function")
    assert {name: (f["Properties"]["CodeUri"], f["Properties"]["Handler"]) for name, f in functions.items()} == {
        "InboundFilterFunction": ("functions/inbound_filter/", "app.lambda_handler"),
        "OutboundGatewayFunction": ("functions/outbound_gateway/", "app.lambda_handler"),
        "OutboundAuditFunction": ("functions/outbound_audit/", "app.lambda_handler"),
        "SmtpIntakeFunction": ("functions/smtp_intake/", "app.lambda_handler"),
        "PolicyValidatorFunction": ("functions/policy_validator/", "app.lambda_handler"),
        "DigestsFunction": ("functions/digests/", "app.lambda_handler"),
    }
    for name, function in functions.items():
        assert function["Metadata"]["BuildMethod"] == "makefile", name
        assert function["Metadata"]["ContextPath"] == "functions", name


def test_layer_is_built_by_makefile_for_python313_arm64_and_powertools_comes_from_aws():
    layer = resources("AWS::Serverless::LayerVersion")["MailFilterLayer"]
    assert layer["Metadata"]["BuildMethod"] == "makefile"
    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.13"]
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]
    layers = raw_template()["Globals"]["Function"]["Layers"]
    default_arn = layers[1]["Fn::If"][1]["Fn::Sub"]
    assert re.fullmatch(
        r"arn:\$\{AWS::Partition\}:lambda:\$\{AWS::Region\}:017000801446:layer:AWSLambdaPowertoolsPythonV3-python313-arm64:\d+", default_arn
    )


def test_inbound_filter_answers_well_within_ses_30_second_limit():
    assert resources("AWS::Serverless::Function")["InboundFilterFunction"]["Properties"]["Timeout"] <= 20


def test_outbound_queue_outlasts_six_gateway_timeouts_and_dead_letters_after_five_receives():
    queue = resources("AWS::SQS::Queue")["OutboundQueue"]["Properties"]
    timeout = resources("AWS::Serverless::Function")["OutboundGatewayFunction"]["Properties"]["Timeout"]
    assert queue["VisibilityTimeout"] >= 6 * timeout
    assert queue["RedrivePolicy"] == {"deadLetterTargetArn": {"Fn::GetAtt": ["OutboundDeadLetterQueue", "Arn"]}, "maxReceiveCount": 5}
    (mapping,) = resources("AWS::Lambda::EventSourceMapping").values()
    assert mapping["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["Properties"]["EventSourceArn"] == {"Fn::GetAtt": ["OutboundQueue", "Arn"]}


def test_audit_hears_email_sent_events_of_the_vendor_configuration_set():
    event = resources("AWS::Serverless::Function")["OutboundAuditFunction"]["Properties"]["Events"]["EmailSent"]
    assert event["Type"] == "EventBridgeRule"
    pattern = event["Properties"]["Pattern"]
    assert pattern["source"] == ["aws.ses"]
    assert pattern["detail-type"] == ["Email Sent"]
    assert pattern["detail"]["mail"]["tags"]["ses:configuration-set"] == [{"Ref": "VendorConfigurationSet"}]
    (destination,) = resources("AWS::SES::ConfigurationSetEventDestination").values()
    assert destination["Properties"]["EventDestination"]["EventBridgeDestination"]["EventBusArn"]["Fn::Sub"].endswith("event-bus/default")


def test_audit_counts_as_the_filters_own_sends_exactly_the_roles_that_may_send():
    # The audit believes only SES's ses:caller-identity, compared with these role names (Ref of a role
    # is its name); every role allowed to send through SES must be named, and no other.
    variables = resources("AWS::Serverless::Function")["OutboundAuditFunction"]["Properties"]["Environment"]["Variables"]
    separator, names = variables["FILTER_CALLER_IDENTITIES"]["Fn::Join"]
    assert separator == ","
    assert all(set(name) == {"Ref"} for name in names), names
    named = {name["Ref"] for name in names}
    assert "OutboundGatewayFunctionRole" in named
    cfn = expand(raw_template())
    senders = {
        owner for owner, s in identity_statements(cfn) if any(a.lower().startswith("ses:send") for a in as_list(s.get("Action", [])))
    }
    assert named == senders
    assert all(cfn["Resources"][name]["Type"] == "AWS::IAM::Role" for name in named)


def rule_arns() -> list[str]:
    """The ARNs of this stack's receipt rules, as the template spells them (rule set and rule names)."""
    rule_set = resources("AWS::SES::ReceiptRuleSet")["InboundRuleSet"]["Properties"]["RuleSetName"]["Fn::Sub"]
    return sorted(
        f"arn:${{AWS::Partition}}:ses:${{AWS::Region}}:${{AWS::AccountId}}:receipt-rule-set/{rule_set}:receipt-rule/"
        + rule["Properties"]["Rule"]["Name"]["Fn::Sub"]
        for rule in resources("AWS::SES::ReceiptRule").values()
    )


def test_one_receipt_rule_per_desk_group_stores_the_message_then_asks_the_filter():
    rules = resources("AWS::SES::ReceiptRule")
    recipients = {name: rule["Properties"]["Rule"]["Recipients"]["Ref"] for name, rule in rules.items()}
    assert recipients == {
        "BillingDesksRule": "BillingDeskAddresses",
        "SupportDesksRule": "SupportDeskAddresses",
        "SalesDesksRule": "SalesDeskAddresses",
    }
    for name, rule in rules.items():
        store, ask = rule["Properties"]["Rule"]["Actions"]
        assert store == {"S3Action": {"BucketName": {"Ref": "MailBucket"}, "ObjectKeyPrefix": "inbound/"}}, name
        assert ask == {
            "LambdaAction": {"FunctionArn": {"Fn::GetAtt": ["InboundFilterFunction", "Arn"]}, "InvocationType": "RequestResponse"}
        }
        assert rule["Properties"]["Rule"]["ScanEnabled"] is True, name


def test_ses_may_invoke_the_filter_only_from_each_of_this_accounts_rules():
    permissions = [
        p["Properties"] for p in resources("AWS::Lambda::Permission").values() if p["Properties"]["Principal"] == "ses.amazonaws.com"
    ]
    assert all(p["SourceAccount"] == {"Ref": "AWS::AccountId"} for p in permissions)
    assert sorted(p["SourceArn"]["Fn::Sub"] for p in permissions) == rule_arns()
    for name, rule in resources("AWS::SES::ReceiptRule").items():
        # SES checks the permission when the rule is created.
        assert any(d.startswith("InboundFilterPermission") for d in rule["DependsOn"]), name


def test_ses_may_write_the_bucket_only_under_inbound_from_this_stacks_rules():
    statements = resources("AWS::S3::BucketPolicy")["MailBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    (ses,) = [s for s in statements if s.get("Principal") == {"Service": "ses.amazonaws.com"}]
    assert ses["Action"] == "s3:PutObject"
    assert ses["Resource"] == {"Fn::Sub": "${MailBucket.Arn}/inbound/*"}
    assert ses["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    assert sorted(arn["Fn::Sub"] for arn in ses["Condition"]["ArnEquals"]["aws:SourceArn"]) == rule_arns()


def test_mail_bucket_is_encrypted_private_tls_only_and_expires_mail():
    bucket = resources("AWS::S3::Bucket")["MailBucket"]["Properties"]
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]["SSEAlgorithm"]
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert len(bucket["PublicAccessBlockConfiguration"]) == 4
    expiring = {r["Prefix"] for r in bucket["LifecycleConfiguration"]["Rules"] if "ExpirationInDays" in r}
    assert expiring == {"inbound/", "quarantine/", "outgoing/"}
    statements = resources("AWS::S3::BucketPolicy")["MailBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert any(s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in statements)


def test_tables_are_on_demand_recoverable_encrypted_and_protected():
    tables = resources("AWS::DynamoDB::Table")
    assert set(tables) == {"DirectoryTable", "DecisionsTable", "IdempotencyTable"}
    for name, table in tables.items():
        properties = table["Properties"]
        assert properties["BillingMode"] == "PAY_PER_REQUEST", name
        assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}, name
        assert properties["SSESpecification"]["SSEEnabled"] is True, name
        assert properties["DeletionProtectionEnabled"] == {"Fn::If": ["ProtectTables", True, False]}, name
    for name in ("DecisionsTable", "IdempotencyTable"):
        assert tables[name]["Properties"]["TimeToLiveSpecification"]["Enabled"] is True, name


def test_alarms_watch_dead_letters_errors_deferred_decisions_and_violations():
    alarms = resources("AWS::CloudWatch::Alarm")
    watched = set()
    for alarm in alarms.values():
        properties = alarm["Properties"]
        assert properties["AlarmActions"] == [{"Ref": "AlarmTopic"}]
        if "MetricName" in properties:
            dimension = properties["Dimensions"][0]["Value"]
            target = dimension.get("Ref") or dimension["Fn::GetAtt"][0]
            watched.add(f"{properties['MetricName']}:{target}")
        else:
            watched.add(properties["Metrics"][0]["Expression"])
    assert watched == {
        "ApproximateNumberOfMessagesVisible:OutboundDeadLetterQueue",
        "ApproximateNumberOfMessagesVisible:AuditDeadLetterQueue",
        "Errors:InboundFilterFunction",
        "Errors:OutboundGatewayFunction",
        "Errors:OutboundAuditFunction",
        "Errors:SmtpIntakeFunction",
        "Errors:DigestsFunction",
        "SELECT SUM(Deferred) FROM CspMailFilter",
        "SELECT SUM(PolicyViolations) FROM CspMailFilter",
        "SELECT SUM(PolicyRefused) FROM CspMailFilter",
        "SELECT SUM(PolicyUnavailable) FROM CspMailFilter",
    }


def test_dashboard_shows_allowed_rerouted_and_blocked_by_category_cloud_and_mode():
    body = resources("AWS::CloudWatch::Dashboard")["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    for metric in ("Allowed", "Rerouted", "Blocked"):
        assert f"SELECT SUM({metric}) FROM CspMailFilter GROUP BY category, cloud, mode" in body


def test_outputs_name_what_an_operator_needs():
    assert {
        "OutboundQueueUrl",
        "MailBucketName",
        "DirectoryTableName",
        "DecisionsTableName",
        "ReceiptRuleSetName",
        "VendorConfigurationSetName",
        "InboundFilterFunctionName",
        "OutboundGatewayFunctionName",
        "OutboundAuditFunctionName",
        "SmtpIntakeFunctionName",
    } <= set(raw_template()["Outputs"])


# ---------------------------------------------------------------- SMTP interception (docs/smtp.md)


def test_smtp_endpoint_authenticates_applications_with_the_secret_and_requires_tls():
    (ingress,) = resources("AWS::SES::MailManagerIngressPoint").values()
    properties = ingress["Properties"]
    assert properties["Type"] == "AUTH"
    assert properties["TlsPolicy"] == "REQUIRED"
    assert properties["IngressPointConfiguration"] == {"SecretArn": {"Ref": "SmtpCredentialsSecretArn"}}
    assert properties["RuleSetId"] == {"Fn::GetAtt": ["SmtpRuleSet", "RuleSetId"]}
    assert properties["TrafficPolicyId"] == {"Fn::GetAtt": ["SmtpTrafficPolicy", "TrafficPolicyId"]}
    (policy,) = resources("AWS::SES::MailManagerTrafficPolicy").values()
    assert policy["Properties"]["DefaultAction"] == "DENY"
    assert policy["Properties"]["MaxMessageSizeBytes"] == 40 * 1024 * 1024


def test_nothing_leaves_the_smtp_endpoint_except_through_the_gateway():
    # The rule set stores the message, hands it to the intake, and drops it: no Send, Relay,
    # mailbox or archive action, so the gateway's own SES sends are the only way out.
    (rule_set,) = resources("AWS::SES::MailManagerRuleSet").values()
    (rule,) = rule_set["Properties"]["Rules"]
    assert "Conditions" not in rule  # every message, whatever it says
    assert "Unless" not in rule
    assert [next(iter(action)) for action in rule["Actions"]] == ["WriteToS3", "InvokeLambda", "Drop"]
    store, invoke, _ = rule["Actions"]
    assert store["WriteToS3"]["S3Bucket"] == {"Ref": "MailBucket"}
    assert store["WriteToS3"]["S3Prefix"] == "outgoing/smtp/"
    assert invoke["InvokeLambda"]["FunctionArn"] == {"Fn::GetAtt": ["SmtpIntakeFunction", "Arn"]}
    assert invoke["InvokeLambda"]["InvocationType"] == "REQUEST_RESPONSE"  # a failed intake is a failed action, retried
    assert invoke["InvokeLambda"]["RetryTimeMinutes"] == 2160


def test_the_intake_queues_on_the_gateways_queue_and_reads_where_the_rule_set_stores():
    intake = resources("AWS::Serverless::Function")["SmtpIntakeFunction"]["Properties"]
    assert intake["Environment"]["Variables"]["OUTBOUND_QUEUE_URL"] == {"Ref": "OutboundQueue"}
    assert intake["Environment"]["Variables"]["SMTP_PREFIX"] == "outgoing/smtp/"


def test_mail_manager_roles_are_for_mail_manager_of_this_account_only():
    for name in ("SmtpStoreRole", "SmtpInvokeRole"):
        (trust,) = resources("AWS::IAM::Role")[name]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        assert trust["Principal"] == {"Service": "ses.amazonaws.com"}, name
        assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}, name
