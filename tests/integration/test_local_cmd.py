"""`mailfilter local up|down|status` and `mailfilter invoke` against them: the filter operated on this machine as in the cloud.

The commands run as separate processes, as an operator runs them (`mailfilter local`,
`mailfilter invoke` as the README writes it), from a project directory of their own.
What SES sent is read from moto's own record (`/moto-api/data.json`), not from
what the CLI says.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from mailfilter_cli.directory_export import directory_stats
from mailfilter_cli.local_events import GATEWAY, function_for, message_ids
from mailfilter_cli.local_files import Paths
from mailfilter_cli.local_lambda import LocalFunction, environment
from mailfilter_cli.local_processes import alive
from mailfilter_cli.local_services import services, ses_counts_envelope_once
from mailfilter_cli.local_stack import create_resources
from mailfilter_cli.sam_template import LOCAL_ACCOUNT, LOCAL_REGION, function_spec, load_template, parameter_values, resources_of_type
from mailfilter_testkit.paths import ROOT

EVENTS = ROOT / "events"
LOCAL = [str(Path(sys.executable).with_name("mailfilter")), "local"]  # the installed command, as an operator runs it
README_INVOKE = ".venv/bin/mailfilter invoke {function} -e events/{event} --env-vars .mailfilter/local.env.json"

# What SES sends for each sample event (envelopes), and the events invoke exits 1 for.
EXPECTED_SENDS = {
    "email-sent-bypass.json": [],
    "email-sent-through-gateway.json": [],
    "inbound-csp-customer-to-billing.json": [["csp-desk@fabrikam.example"]],
    "inbound-csp-customer-to-support.json": [],
    "inbound-direct-customer-to-sales.json": [],
    "inbound-dmarc-fail.json": [],
    "inbound-mixed-desks.json": [["csp-desk@fabrikam.example"]],
    "inbound-spam.json": [],
    "inbound-spoofed-csp-domain.json": [],
    "inbound-unknown-sender.json": [],
    "outbound-invalid-request.json": [],
    "outbound-mixed-allowed-rerouted-blocked.json": [["csp-desk@fabrikam.example"], ["cto@woodgrovebank.com"]],
    "outbound-operational.json": [["admin@tailspintoys.com"]],
    "outbound-product-to-csp-only.json": [],
    "outbound-subscription-to-csp-customer.json": [["csp-desk@fabrikam.example"]],
    "outbound-two-customers-one-partner.json": [["csp-desk@fabrikam.example"], ["csp-desk@fabrikam.example"]],
    "smtp-intercepted-mixed-recipients.json": [],  # queued for the gateway; the intake sends nothing itself
}
EXIT_1 = {"outbound-invalid-request.json"}


def shell_environment() -> dict[str, str]:
    """An operator's shell: none of the AWS or mailfilter settings this test session may have."""
    return {name: value for name, value in os.environ.items() if not name.startswith(("AWS_", "MAILFILTER_"))}


def run(command: list[str] | str, cwd: Path, **options: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command,
        check=False,
        cwd=cwd,
        env=shell_environment(),
        capture_output=True,
        text=True,
        timeout=120,
        shell=isinstance(command, str),
        **options,
    )


def new_project(path: Path) -> Path:
    """A project directory as the README assumes one: template.yaml, the virtual environment and events/ at hand."""
    path.mkdir(parents=True, exist_ok=True)
    for name in ("template.yaml", ".venv", "events"):
        (path / name).symlink_to(ROOT / name)
    return path


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """`mailfilter local up` in a fresh project directory, for the whole module; `local down` afterwards."""
    directory = new_project(tmp_path_factory.mktemp("project"))
    started = run([*LOCAL, "up"], directory)
    assert started.returncode == 0, started.stderr
    state = json.loads((directory / ".mailfilter" / "local.json").read_text(encoding="utf-8"))
    yield {"dir": directory, "up": started, "state": state}
    stopped = run([*LOCAL, "down"], directory)
    assert stopped.returncode == 0, stopped.stderr


def client(project: dict[str, Any], service: str) -> Any:
    state = project["state"]
    endpoint = state["dynamodb"] if service == "dynamodb" else state["moto"]
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=LOCAL_REGION,
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=Config(retries={"max_attempts": 2}),
    )


def ses_sends(project: dict[str, Any]) -> list[list[str]]:
    """Every message moto's SES has accepted so far, as sorted envelopes, in order."""
    with urllib.request.urlopen(f"{project['state']['moto']}/moto-api/data.json", timeout=10) as response:
        data = json.load(response)
    return [sorted(message["destinations"]) for message in data.get("ses", {}).get("RawMessage", [])]


def name_of(project: dict[str, Any], logical_id: str) -> str:
    return project["state"]["resources"]["names"][logical_id][1]


def invoke(project: dict[str, Any], event: Path, *, env_vars: str = ".mailfilter/local.env.json") -> subprocess.CompletedProcess[str]:
    function = function_for(json.loads(event.read_text(encoding="utf-8")))
    return run(f".venv/bin/mailfilter invoke {function} -e {event} --env-vars {env_vars}", project["dir"])


def fresh_event(project: dict[str, Any], sample: str, tag: str) -> Path:
    """A sample event under a message id of its own (so nothing has handled it yet), in the project directory."""
    event = json.loads((EVENTS / sample).read_text(encoding="utf-8"))
    if function_for(event) == GATEWAY:
        body = json.loads(event["Records"][0]["body"])
        body["message_id"] = f"{body['message_id']}-{tag}"
        event["Records"][0]["body"] = json.dumps(body)
        event["Records"][0]["messageId"] = f"{event['Records'][0]['messageId']}-{tag}"
    else:
        event["Records"][0]["ses"]["mail"]["messageId"] = f"{message_ids(event)[0]}{tag}"
    path = project["dir"] / f"{sample.removesuffix('.json')}-{tag}.json"
    path.write_text(json.dumps(event), encoding="utf-8")
    return path


# ---------------------------------------------------------------- local up


def test_local_up_creates_every_table_bucket_queue_and_identity_the_template_declares(project):
    template = load_template()
    dynamodb, s3, sqs, sesv2 = (client(project, s) for s in ("dynamodb", "s3", "sqs", "sesv2"))
    tables = set(dynamodb.list_tables()["TableNames"])
    for logical_id, resource in resources_of_type("AWS::DynamoDB::Table", template).items():
        assert name_of(project, logical_id) in tables
        described = dynamodb.describe_table(TableName=name_of(project, logical_id))["Table"]
        assert described["KeySchema"] == resource["Properties"]["KeySchema"]
        indexes = {index["IndexName"] for index in described.get("GlobalSecondaryIndexes", [])}
        assert indexes == {index["IndexName"] for index in resource["Properties"].get("GlobalSecondaryIndexes", [])}
    buckets = {bucket["Name"] for bucket in s3.list_buckets()["Buckets"]}
    assert {name_of(project, logical_id) for logical_id in resources_of_type("AWS::S3::Bucket", template)} <= buckets
    queues = resources_of_type("AWS::SQS::Queue", template)
    urls = {logical_id: sqs.get_queue_url(QueueName=name_of(project, logical_id))["QueueUrl"] for logical_id in queues}
    redrive = json.loads(
        sqs.get_queue_attributes(QueueUrl=urls["OutboundQueue"], AttributeNames=["RedrivePolicy"])["Attributes"]["RedrivePolicy"]
    )
    assert redrive["deadLetterTargetArn"].endswith(":" + name_of(project, "OutboundDeadLetterQueue"))
    for logical_id in resources_of_type("AWS::SES::ConfigurationSet", template):
        sesv2.get_configuration_set(ConfigurationSetName=name_of(project, logical_id))
    parameters = parameter_values(template)
    identities = {identity["IdentityName"] for identity in sesv2.list_email_identities()["EmailIdentities"]}
    assert {*parameters["VendorDomains"].split(","), parameters["FilterFromAddress"]} <= identities
    # every resource the functions name in their environment exists under the name the env file gives it
    env_file = json.loads((project["dir"] / ".mailfilter" / "local.env.json").read_text(encoding="utf-8"))
    for variable in ("DIRECTORY_TABLE", "DECISIONS_TABLE", "IDEMPOTENCY_TABLE"):
        assert env_file["Parameters"][variable] in tables
    assert env_file["Parameters"]["MAIL_BUCKET"] in buckets


def test_local_up_imports_the_directory_and_stores_each_inbound_sample_where_the_receipt_rule_would(project):
    records = [json.loads(line) for line in (EVENTS / "directory.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    with environment(
        {"AWS_ENDPOINT_URL_DYNAMODB": project["state"]["dynamodb"], "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}
    ):
        stats = directory_stats(name_of(project, "DirectoryTable"))
    assert sum(counts["customers"] for counts in stats.values()) == sum(r["kind"] == "customer" for r in records)
    assert sum(counts["partners"] for counts in stats.values()) == sum(r["kind"] == "partner" for r in records)
    s3 = client(project, "s3")
    inbound = sorted(EVENTS.glob("inbound-*.json"))
    assert inbound
    for path in inbound:
        key = f"inbound/{message_ids(json.loads(path.read_text(encoding='utf-8')))[0]}"
        stored = s3.get_object(Bucket=name_of(project, "MailBucket"), Key=key)["Body"].read()
        assert stored == path.with_suffix(".eml").read_bytes()


def test_local_up_writes_a_sam_local_env_vars_file_and_prints_its_exports(project):
    document = json.loads((project["dir"] / ".mailfilter" / "local.env.json").read_text(encoding="utf-8"))
    assert set(document) == {"Parameters"}  # sam local's shape: sections of name -> value
    parameters = document["Parameters"]
    state = project["state"]
    assert parameters["AWS_ENDPOINT_URL_DYNAMODB"] == state["dynamodb"]
    for variable in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_SES", "AWS_ENDPOINT_URL_SESV2", "AWS_ENDPOINT_URL_SQS"):
        assert parameters[variable] == state["moto"]
    assert parameters["AWS_REGION"] == "us-east-1"
    assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= set(parameters)
    # what the other commands read from it: the names, and the settings as the template deploys them
    assert parameters["QUARANTINE_PREFIX"] == "quarantine/"
    assert parameters["FILTER_FROM_ADDRESS"] == parameter_values(load_template())["FilterFromAddress"]
    exports = project["up"].stdout.splitlines()
    assert exports == [f"export {name}={value}" for name, value in parameters.items()]  # stdout is only these: eval "$(...)"
    assert state["dynamodb_local_pid"], "DynamoDB Local (Java) was expected here, as make test provides it"


# ---------------------------------------------------------------- invoke


def test_readme_invoke_line_handles_every_sample_event_with_its_exit_code_and_ses_sends(project):
    assert sorted(EXPECTED_SENDS) == sorted(path.name for path in EVENTS.glob("*.json") if path.name != "env.local.json")
    for name, expected in EXPECTED_SENDS.items():
        function = function_for(json.loads((EVENTS / name).read_text(encoding="utf-8")))
        before = len(ses_sends(project))
        result = run(README_INVOKE.format(function=function, event=name), project["dir"])
        assert result.returncode == (1 if name in EXIT_1 else 0), f"{name}: {result.stderr[-2000:]}"
        assert "Traceback" not in result.stderr, name
        json.loads(result.stdout)  # the response alone on standard output, as sam local prints it
        assert sorted(ses_sends(project)[before:]) == sorted(expected), name
    rejected = run(README_INVOKE.format(function=GATEWAY, event="outbound-invalid-request.json"), project["dir"])
    assert "rejected bad-2025-01-no-body" in rejected.stderr
    assert "'not-an-address' is not of the form local@domain" in rejected.stderr


@pytest.mark.parametrize("sample", ["outbound-operational.json", "inbound-csp-customer-to-billing.json"])
def test_a_repeated_invoke_says_the_idempotency_record_answered_and_nothing_is_sent_again(project, sample):
    event = fresh_event(project, sample, "again")
    if function_for(json.loads(event.read_text(encoding="utf-8"))) != GATEWAY:  # the receipt rule stored the raw message
        key = f"inbound/{message_ids(json.loads(event.read_text(encoding='utf-8')))[0]}"
        client(project, "s3").put_object(
            Bucket=name_of(project, "MailBucket"), Key=key, Body=(EVENTS / sample).with_suffix(".eml").read_bytes()
        )
    before = len(ses_sends(project))
    first = invoke(project, event)
    assert first.returncode == 0, first.stderr[-2000:]
    assert len(ses_sends(project)) == before + 1
    assert "idempotency" not in first.stderr
    second = invoke(project, event)
    assert second.returncode == 0, second.stderr[-2000:]
    assert json.loads(second.stdout) == json.loads(first.stdout)
    assert "the record in IdempotencyTable answered 1 request" in second.stderr
    assert "nothing was sent or recorded again" in second.stderr
    assert len(ses_sends(project)) == before + 1


def test_a_message_handed_over_with_send_goes_through_the_gateway_with_invoke_from_queue(project):
    """An application team's first try, locally: `mailfilter send`, then the gateway takes what waits on its queue."""
    run(".venv/bin/mailfilter invoke OutboundGatewayFunction --from-queue", project["dir"])  # whatever earlier tests queued
    before = len(ses_sends(project))
    message = EVENTS / "smtp-intercepted-mixed-recipients.eml"
    sent = run(f".venv/bin/mailfilter send {message} --to cto@woodgrovebank.com --bcc finance@tailspintoys.com", project["dir"])
    assert sent.returncode == 0, sent.stderr[-2000:]
    assert "queued sha256:" in sent.stdout
    result = run(".venv/bin/mailfilter invoke OutboundGatewayFunction --from-queue", project["dir"])
    assert result.returncode == 0, result.stderr[-2000:]
    assert ses_sends(project)[before:] == [["cto@woodgrovebank.com"]]  # rule 4: allowed; rule 1: the Bcc to Tailspin is kept
    assert "quarantined" in result.stderr
    again = run(".venv/bin/mailfilter invoke OutboundGatewayFunction --from-queue", project["dir"])
    assert again.returncode == 0
    assert "nothing waiting on" in again.stderr


def test_inbound_mail_whose_raw_message_was_never_stored_is_deferred_and_invoke_exits_1(project):
    event = fresh_event(project, "inbound-csp-customer-to-billing.json", "lost")  # to be forwarded: needs the raw message
    result = invoke(project, event)
    assert result.returncode == 1
    assert json.loads(result.stdout) == {"disposition": "STOP_RULE"}  # nothing delivered: the message waits in quarantine
    assert f"deferred {message_ids(json.loads(event.read_text(encoding='utf-8')))[0]}" in result.stderr


def test_invoke_without_reachable_services_fails_with_one_line_naming_local_up(project, tmp_path):
    # events/env.local.json points at DynamoDB Local on a Docker host, which is not here
    result = run(
        README_INVOKE.format(function=GATEWAY, event="outbound-operational.json").replace(
            ".mailfilter/local.env.json", "events/env.local.json"
        ),
        project["dir"],
    )
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert "`mailfilter local up`" in result.stderr
    # no env-vars file and no endpoints at all: refused before anything could reach a real account
    elsewhere = new_project(tmp_path / "empty")
    result = run(f".venv/bin/mailfilter invoke {GATEWAY} -e events/outbound-operational.json", elsewhere)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert "`mailfilter local up`" in result.stderr


# ---------------------------------------------------------------- status, down, orphans


def test_local_status_says_what_runs_where_and_up_refuses_to_start_twice(project):
    state = project["state"]
    result = run([*LOCAL, "status"], project["dir"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"pid {state['pid']}" in result.stdout
    assert f"{state['dynamodb']} (AWS DynamoDB Local, pid {state['dynamodb_local_pid']}): answers" in result.stdout
    assert f"{state['moto']} (moto, in the supervisor): answers" in result.stdout
    assert "DirectoryTable, DecisionsTable, IdempotencyTable" in result.stdout
    again = run([*LOCAL, "up"], project["dir"])
    assert again.returncode == 1
    assert "already run" in again.stderr


def wait_gone(*pids: int, timeout: float = 10.0) -> list[int]:
    """The pids still running after `timeout` (a zombie counts as gone: it runs nothing)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(alive(pid) for pid in pids):
        time.sleep(0.05)
    return [pid for pid in pids if alive(pid)]


def test_local_down_leaves_no_dynamodb_local_or_moto_process(tmp_path):
    directory = new_project(tmp_path / "project")
    assert run([*LOCAL, "up", "--directory", str(EVENTS / "directory.jsonl")], directory).returncode == 0
    state = json.loads((directory / ".mailfilter" / "local.json").read_text(encoding="utf-8"))
    supervisor, java = state["pid"], state["dynamodb_local_pid"]
    assert alive(supervisor)
    assert alive(java)
    stopped = run([*LOCAL, "down"], directory)
    assert stopped.returncode == 0
    assert f"supervisor (pid {supervisor}) and DynamoDB Local (pid {java})" in stopped.stdout
    assert wait_gone(supervisor, java, timeout=0.5) == []  # moto runs in the supervisor: its pid is moto's
    assert not Paths(directory).state.exists()
    assert not Paths(directory).env_file.exists()
    status = run([*LOCAL, "status"], directory)
    assert status.returncode == 1
    assert "no local services run here" in status.stdout


@pytest.mark.parametrize("how", ["foreground", "attach"])
def test_killing_the_process_an_attached_supervisor_belongs_to_leaves_no_process_behind(tmp_path, how):
    directory = new_project(tmp_path / "project")
    paths = Paths(directory)
    if how == "foreground":  # `local up --foreground`, killed with no chance to clean up
        owner = subprocess.Popen(
            [*LOCAL, "up", "--foreground"], cwd=directory, env=shell_environment(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
    else:  # `local up --attach PID` from a script: the services live as long as the script
        owner = subprocess.Popen(["sleep", "120"])
        assert run([*LOCAL, "up", "--attach", str(owner.pid)], directory).returncode == 0
    try:
        deadline = time.monotonic() + 60
        while not paths.env_file.exists():
            assert time.monotonic() < deadline, "the services did not come up"
            assert owner.poll() is None
            time.sleep(0.05)
        state = json.loads(paths.state.read_text(encoding="utf-8"))
        assert state["attached_to"] == owner.pid
        supervisor, java = state["pid"], state["dynamodb_local_pid"]
        assert alive(supervisor)
        assert alive(java)
    finally:
        owner.send_signal(signal.SIGKILL)
        owner.wait()
    assert wait_gone(supervisor, java) == []
    assert run([*LOCAL, "status"], directory).returncode == 1


# ---------------------------------------------------------------- SES's 50-recipient rule


def test_fifty_recipients_named_in_to_and_cc_are_one_send_through_the_demo_embedding():
    """SES counts the envelope once: 50 recipients (the documented maximum) named in To and Cc too are one send, not 100."""
    from moto.ses.models import SESBackend, ses_backends  # noqa: PLC0415

    recipients = [f"reader{n:02d}@woodgrovebank.com" for n in range(50)]
    body = {
        "message_id": "ops-2025-01-fifty",
        "from": "security@vendor.example",
        "to": recipients[:25],
        "cc": recipients[25:],
        "subject": "Planned maintenance for fifty readers",
        "text": "Planned maintenance of the sign-in service on 20 January.\n",
        "category": "operational",
    }
    event = {
        "Records": [
            {"messageId": "sqs-fifty", "body": json.dumps(body), "eventSource": "aws:sqs", "attributes": {}, "messageAttributes": {}}
        ]
    }
    unpatched = SESBackend.send_raw_email
    with services("moto") as running, environment(running.environment()):
        made = create_resources(EVENTS / "directory.jsonl", None)
        invocation = LocalFunction(function_spec(GATEWAY, {"Parameters": made.variables})).run(event)
        sent = list(ses_backends[LOCAL_ACCOUNT][LOCAL_REGION].sent_messages)
    assert invocation.error is None
    assert invocation.response == {"batchItemFailures": []}
    assert len(sent) == 1
    assert sorted(sent[0].destinations) == sorted(recipients)
    assert len(invocation.sent) == 1
    assert len(invocation.sent[0].recipients) == 50
    assert SESBackend.send_raw_email is unpatched  # only the embedding counts SES's way; mock_aws elsewhere sees moto as it is


def test_ses_envelope_patch_still_reads_headers_when_the_request_names_no_destinations():
    """Without destinations SES takes the recipients from To/Cc/Bcc: the patch leaves that to moto."""
    from moto import mock_aws  # noqa: PLC0415
    from moto.ses.models import ses_backends  # noqa: PLC0415

    raw = "From: security@vendor.example\r\nTo: a@woodgrovebank.com\r\nCc: b@woodgrovebank.com\r\nSubject: s\r\n\r\nbody\r\n"
    with mock_aws(), ses_counts_envelope_once():
        ses = boto3.client("ses", region_name=LOCAL_REGION)
        ses.verify_domain_identity(Domain="vendor.example")
        ses.send_raw_email(RawMessage={"Data": raw})
        ses.send_raw_email(RawMessage={"Data": raw}, Destinations=["a@woodgrovebank.com"])
        first, second = ses_backends[LOCAL_ACCOUNT][LOCAL_REGION].sent_messages
    assert sorted(first.destinations) == ["a@woodgrovebank.com", "b@woodgrovebank.com"]
    assert second.destinations == ["a@woodgrovebank.com"]
