"""Least privilege over the template as SAM expands it: each function reaches only its own data.

Every Allow statement of every function role is reduced to (action, what it reaches), and the
set must be exactly the function's allowance below: its tables, its bucket prefixes, its queue
and its SES identity. A new permission fails here until it is added to the allowance on purpose.
The mail bucket and the queues refuse plain HTTP and anyone outside the account.
"""

from __future__ import annotations

import copy
import json
from collections import Counter
from typing import Any

import pytest

from mailfilter_testkit.sam_expansion import as_list, expand, identity_statements, raw_template, resources

IDEMPOTENCY = {("dynamodb:getitem", "table IdempotencyTable"), ("dynamodb:putitem", "table IdempotencyTable"),
               ("dynamodb:updateitem", "table IdempotencyTable"), ("dynamodb:deleteitem", "table IdempotencyTable")}  # fmt: skip
LEDGER = {("dynamodb:updateitem", "table IdempotencyTable")}  # the gateway's claim, marks and finish
DIRECTORY_READ = {("dynamodb:batchgetitem", "table DirectoryTable"), ("dynamodb:getitem", "table DirectoryTable")}
DECISIONS_WRITE = {("dynamodb:batchwriteitem", "table DecisionsTable"), ("dynamodb:putitem", "table DecisionsTable")}
SEND_AS_FILTER = {("ses:sendemail", "ses from FilterFromAddress"), ("ses:sendrawemail", "ses from FilterFromAddress")}
SEND_AS_VENDOR = {("ses:sendemail", "ses from *@VendorDomains"), ("ses:sendrawemail", "ses from *@VendorDomains")}
QUARANTINE_WRITE = {("s3:putobject", "bucket MailBucket/quarantine/*")}

POLICY_PROFILE = (
    "appconfig application/${PolicyApplication.ApplicationId}/environment/${PolicyEnvironment.EnvironmentId}"
    "/configuration/${PolicyProfile.ConfigurationProfileId}"
)

ALLOWANCE = {
    "InboundFilterFunctionRole": DIRECTORY_READ | DECISIONS_WRITE | IDEMPOTENCY | QUARANTINE_WRITE | SEND_AS_FILTER
    | {("s3:getobject", "bucket MailBucket/inbound/*")},
    "OutboundGatewayFunctionRole": DIRECTORY_READ | DECISIONS_WRITE | LEDGER | QUARANTINE_WRITE | SEND_AS_FILTER | SEND_AS_VENDOR
    | {(f"sqs:{a}", "queue OutboundQueue") for a in ("receivemessage", "deletemessage", "changemessagevisibility", "getqueueattributes")}
    | {("s3:getobject", "bucket MailBucket/outgoing/*")},
    "OutboundAuditFunctionRole": DIRECTORY_READ | DECISIONS_WRITE | {("sqs:sendmessage", "queue AuditDeadLetterQueue")},
    # SMTP interception (docs/smtp.md): Mail Manager stores under outgoing/smtp/ and invokes the intake;
    # the intake reads only there and may only queue requests for the gateway.
    "SmtpStoreRole": {("s3:putobject", "bucket MailBucket/outgoing/smtp/*")},
    "SmtpInvokeRole": {("lambda:invokefunction", "function SmtpIntakeFunction")},
    "SmtpIntakeFunctionRole": {("s3:getobject", "bucket MailBucket/outgoing/smtp/*"), ("sqs:sendmessage", "queue OutboundQueue")},
    # Digests (docs/policy.md): read a day's decisions through the by-day index, claim each digest, send as the filter;
    # each schedule's role may only invoke the function.
    "DigestsFunctionRole": {("dynamodb:query", "index DecisionsTable/by-day"), ("dynamodb:updateitem", "table IdempotencyTable")}
    | SEND_AS_FILTER,
    "DigestsFunctionSenderDigestsRole": {("lambda:invokefunction", "function DigestsFunction")},
    "DigestsFunctionPartnerDigestsRole": {("lambda:invokefunction", "function DigestsFunction")},
    # The policy without a deploy (docs/policy.md): read this stack's policy profile, nothing else of AppConfig.
    "ReadPolicyFromAppConfig": {(a, POLICY_PROFILE) for a in ("appconfig:startconfigurationsession", "appconfig:getlatestconfiguration")},
}  # fmt: skip

SES_ANY_IDENTITY = "arn:aws:ses:${AWS::Region}:${AWS::AccountId}:identity/*"
KINDS = {"AWS::DynamoDB::Table": "table", "AWS::SQS::Queue": "queue", "AWS::S3::Bucket": "bucket", "AWS::Serverless::Function": "function"}


def reach(resource: Any, statement: dict[str, Any]) -> str:
    """What one Resource entry of a statement reaches, in the allowance's words."""
    if isinstance(resource, dict) and "Fn::GetAtt" in resource:
        name = resource["Fn::GetAtt"][0]
        return f"{KINDS.get(raw_template()['Resources'][name]['Type'], '?')} {name}"
    text = json.dumps(resource)
    if text.startswith('{"Fn::Sub": "arn:${AWS::Partition}:appconfig:${AWS::Region}:${AWS::AccountId}:'):
        return "appconfig " + resource["Fn::Sub"].split("${AWS::AccountId}:", 1)[1]
    if text.startswith('{"Fn::Sub": "${') and ".Arn}/index/" in text:
        table, index = resource["Fn::Sub"][2:].split(".Arn}/index/")
        return f"index {table}/{index}"
    if text.startswith('{"Fn::Sub": "${MailBucket.Arn}/'):
        return "bucket MailBucket/" + resource["Fn::Sub"].split("/", 1)[1]
    if ":ses:${AWS::Region}:${AWS::AccountId}:" in text:
        # An identity or configuration set of this account; who may be the sender is in the condition.
        conditions = statement.get("Condition", {})
        if conditions == {"StringEquals": {"ses:FromAddress": {"Ref": "FilterFromAddress"}}}:
            return "ses from FilterFromAddress"
        like = json.dumps(conditions.get("StringLike", {}).get("ses:FromAddress"))
        if len(conditions) == 1 and "*@${Domains}" in like and '"Ref": "VendorDomains"' in like:
            return "ses from *@VendorDomains"
        return f"ses with condition {json.dumps(conditions)}"
    return f"unrecognised {text}"


def grants(cfn: dict[str, Any]) -> dict[str, set[tuple[str, str]]]:
    found: dict[str, set[tuple[str, str]]] = {}
    for owner, statement in identity_statements(cfn):
        assert statement["Effect"] == "Allow", (owner, statement)
        assert "NotAction" not in statement, owner
        assert "NotResource" not in statement, owner
        for action in as_list(statement["Action"]):
            for resource in as_list(statement["Resource"]):
                found.setdefault(owner, set()).add((action.lower(), reach(resource, statement)))
    return found


def test_each_function_reaches_exactly_its_own_tables_prefixes_queue_and_ses_identity():
    assert grants(expand(raw_template())) == ALLOWANCE


def test_no_function_writes_the_directory_and_only_the_inbound_filter_reads_received_mail():
    for role, allowed in ALLOWANCE.items():
        assert not [g for g in allowed if g[1] == "table DirectoryTable" and "get" not in g[0]], role
        assert ("s3:getobject", "bucket MailBucket/inbound/*") not in allowed or role == "InboundFilterFunctionRole"
        assert not [g for g in allowed if g[0].startswith("s3:") and g[0] not in ("s3:getobject", "s3:putobject")], role


@pytest.mark.parametrize(
    ("function", "statement"),
    [
        ("OutboundAuditFunction", {"Effect": "Allow", "Action": "s3:GetObject", "Resource": {"Fn::Sub": "${MailBucket.Arn}/quarantine/*"}}),
        ("OutboundGatewayFunction", {"Effect": "Allow", "Action": "s3:GetObject", "Resource": {"Fn::Sub": "${MailBucket.Arn}/inbound/*"}}),
        ("InboundFilterFunction", {"Effect": "Allow", "Action": "dynamodb:PutItem", "Resource": {"Fn::GetAtt": ["DirectoryTable", "Arn"]}}),
        ("InboundFilterFunction", {"Effect": "Allow", "Action": "ses:SendRawEmail", "Resource": {"Fn::Sub": SES_ANY_IDENTITY}}),
    ],
    ids=["audit-reads-quarantine", "gateway-reads-inbound-mail", "filter-writes-directory", "filter-sends-as-anyone"],
)  # fmt: skip
def test_the_allowance_check_catches_a_function_reaching_beyond_its_own(function, statement):
    template = copy.deepcopy(raw_template())
    template["Resources"][function]["Properties"]["Policies"][0]["Statement"].append(statement)
    assert grants(expand(template)) != ALLOWANCE


def _policies_of(kind: str, target: str) -> list[tuple[str, dict[str, Any]]]:
    """(policy name, statement) of every resource policy that applies to `target` (a logical name)."""
    found = []
    for name, resource in resources(kind).items():
        properties = resource["Properties"]
        targets = [t.get("Ref") for t in as_list(properties.get("Queues", properties.get("Bucket", properties.get("Topics", []))))]
        if target in targets:
            found += [(name, s) for s in as_list(properties["PolicyDocument"]["Statement"])]
    return found


def test_the_mail_bucket_refuses_plain_http_and_public_access():
    bucket = resources("AWS::S3::Bucket")["MailBucket"]["Properties"]
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True, "RestrictPublicBuckets": True,
    }  # fmt: skip
    statements = [s for _, s in _policies_of("AWS::S3::BucketPolicy", "MailBucket")]
    (deny,) = [s for s in statements if s["Effect"] == "Deny"]
    assert deny["Principal"] == "*"
    assert deny["Action"] == "s3:*"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert deny["Resource"] == [{"Fn::GetAtt": ["MailBucket", "Arn"]}, {"Fn::Sub": "${MailBucket.Arn}/*"}]


@pytest.mark.parametrize(("kind", "target"), [("AWS::S3::BucketPolicy", "MailBucket"),
    ("AWS::SQS::QueuePolicy", "OutboundQueue"), ("AWS::SQS::QueuePolicy", "OutboundDeadLetterQueue"),
    ("AWS::SQS::QueuePolicy", "AuditDeadLetterQueue"), ("AWS::SNS::TopicPolicy", "AlarmTopic")])  # fmt: skip
def test_resource_policies_let_in_only_aws_services_for_this_account_and_never_plain_http(kind, target):
    statements = _policies_of(kind, target)
    assert any(s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for _, s in statements)
    for name, statement in statements:
        if statement["Effect"] == "Allow":
            assert set(statement["Principal"]) == {"Service"}, (name, statement)
            assert statement["Condition"]["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}, name


def test_each_queue_has_one_policy_because_sqs_keeps_only_the_last_one_applied():
    # A queue has a single Policy attribute: a second AWS::SQS::QueuePolicy replaces the first.
    applied = Counter(t["Ref"] for r in resources("AWS::SQS::QueuePolicy").values() for t in r["Properties"]["Queues"])
    assert {queue for queue, count in applied.items() if count > 1} == set()
    assert set(applied) == set(resources("AWS::SQS::Queue"))


def test_policy_from_appconfig_is_read_by_exactly_the_three_deciding_functions_and_digests_and_only_when_in_force():
    """Rule: the functions may read this stack's policy profile, and only while PolicyFromAppConfig is in-force."""
    read = resources("AWS::IAM::Policy")["ReadPolicyFromAppConfig"]
    assert read["Condition"] == "PolicyFromAppConfigInForce"
    assert raw_template()["Conditions"]["PolicyFromAppConfigInForce"] == {"Fn::Equals": [{"Ref": "PolicyFromAppConfig"}, "in-force"]}
    assert raw_template()["Parameters"]["PolicyFromAppConfig"]["Default"] == "off"
    roles = {role["Ref"] for role in read["Properties"]["Roles"]}
    assert roles == {"InboundFilterFunctionRole", "OutboundGatewayFunctionRole", "OutboundAuditFunctionRole", "DigestsFunctionRole"}


def test_the_policy_validator_reaches_nothing_and_only_appconfig_of_this_account_may_invoke_it():
    """Rule: AppConfig's validator only parses what AppConfig sends; no other caller, no AWS data."""
    assert "PolicyValidatorFunctionRole" not in grants(expand(raw_template()))
    assert "Policies" not in resources("AWS::Serverless::Function")["PolicyValidatorFunction"]["Properties"]
    permission = resources("AWS::Lambda::Permission")["PolicyValidatorPermission"]["Properties"]
    assert permission["Principal"] == "appconfig.amazonaws.com"
    assert permission["SourceAccount"] == {"Ref": "AWS::AccountId"}


def test_the_allowance_check_catches_a_read_of_every_appconfig_profile():
    template = copy.deepcopy(raw_template())
    statement = template["Resources"]["ReadPolicyFromAppConfig"]["Properties"]["PolicyDocument"]["Statement"][0]
    statement["Resource"] = {"Fn::Sub": "arn:${AWS::Partition}:appconfig:${AWS::Region}:${AWS::AccountId}:application/*"}
    assert grants(expand(template)) != ALLOWANCE
