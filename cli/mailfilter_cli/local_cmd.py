"""`mailfilter local up|down|status|env`: the filter's AWS services on this machine, to operate as in the cloud.

`up` starts AWS's DynamoDB Local (moto's DynamoDB when Java or the jar is missing)
and moto's server for S3, SES, SESv2 and SQS, on free loopback ports; creates
what template.yaml declares (every table, bucket, queue and configuration set,
and the SES identities its parameters name); imports a directory with
`mailfilter directory import`'s code; stores each sample inbound message where
the receipt rule's S3 action would have; and writes `.mailfilter/local.env.json`,
a `sam local invoke --env-vars` document that `mailfilter invoke` reads by default.

The services outlive `up`: they run in a supervisor process of their own
(`python -m mailfilter_cli.local_cmd supervise`), which writes its pid and
endpoints to `.mailfilter/local.json`. Nothing is left behind:

- moto's server is a thread of the supervisor; DynamoDB Local is its child, and
  on Linux dies with it whatever kills it (prctl PR_SET_PDEATHSIG, SIGKILL);
- SIGTERM, SIGINT and SIGHUP make the supervisor stop DynamoDB Local and exit;
- started attached (`up --foreground`, `up --attach PID`), a watchdog thread stops
  it when that process ends, and with `--foreground` the kernel also sends it
  SIGTERM when its parent dies;
- a supervisor whose state file is gone or names another process stops too, so
  none runs that `local status` cannot find.

`mailfilter demo` runs the same `services()` and `create_resources()` in its own process.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

import click

from mailfilter.aws import clients
from mailfilter.events.mail_manager import is_mail_manager_event
from mailfilter.events.send_request import parse_send_request
from mailfilter.outbound.smtp_intake import request_message_id
from mailfilter.vocabulary.ses import SMTP_PREFIX
from mailfilter_cli import settings
from mailfilter_cli.directory_ops import import_directory
from mailfilter_cli.dynamodb_local import DynamoDBLocalError, die_with_parent, dynamodb_local_process
from mailfilter_cli.local_lambda import environment
from mailfilter_cli.sam_template import (
    LOCAL_REGION,
    STACK_NAME,
    create_table,
    function_spec,
    load_template,
    parameter_values,
    project_template,
    resource_variables,
    resources_of_type,
)

STATE_DIR = settings.LOCAL_ENV.parent  # .mailfilter/ in the project directory, beside the env file other commands read
STATE_FILE, ENV_FILE, LOG_FILE = "local.json", settings.LOCAL_ENV.name, "local.log"
INBOUND, GATEWAY, AUDIT = "InboundFilterFunction", "OutboundGatewayFunction", "OutboundAuditFunction"
SMTP = "SmtpIntakeFunction"  # Mail Manager invocations (docs/smtp.md)
MOTO_SERVICES = ("S3", "SES", "SESV2", "SQS")  # what the functions and operators use of moto, by their endpoint variables
START_TIMEOUT = 90.0


class LocalError(click.ClickException):
    """The local services could not be started, found or stopped."""


# ---------------------------------------------------------------- events


def function_for(event: Any) -> str | None:
    """Which function of the template takes this event, as its event source would deliver it."""
    if not isinstance(event, dict):
        return None
    records = event.get("Records")
    if isinstance(records, list) and records and isinstance(records[0], dict):
        return {"aws:ses": INBOUND, "aws:sqs": GATEWAY}.get(records[0].get("eventSource"))
    if is_mail_manager_event(event):
        return SMTP
    return AUDIT if event.get("source") == "aws.ses" else None


def message_ids(event: dict[str, Any]) -> list[str]:
    """The ids under which the functions record this event's messages."""
    if function_for(event) == INBOUND:
        return [event["Records"][0]["ses"]["mail"]["messageId"]]
    if function_for(event) == AUDIT:
        return [event["detail"]["mail"]["messageId"]]
    if function_for(event) == SMTP:
        return [request_message_id(SMTP_PREFIX + event["messageId"])]
    ids = []
    for record in event["Records"]:
        ids.append(record.get("messageId", ""))
        with contextlib.suppress(ValueError, TypeError, KeyError):  # an unreadable body is recorded under the SQS id
            body = json.loads(record["body"])
            ids.append(body.get("message_id") or "")
            ids.append(parse_send_request(body).effective_message_id)
    return list(dict.fromkeys(i for i in ids if i))


# ---------------------------------------------------------------- services


class _Envelope(list):
    """A request's destinations, to which moto's `destinations += <header addresses>` adds nothing."""

    def __iadd__(self, other: Any) -> _Envelope:
        return self


@contextlib.contextmanager
def ses_counts_envelope_once() -> Iterator[None]:
    """While the block runs, moto's SES counts a raw message's envelope recipients once, as SES does.

    SES sends a raw message to the request's destinations and applies its limit of
    50 recipients to them; it reads To/Cc/Bcc only when the request names no
    destinations. moto's `SESBackend.send_raw_email` (which SESv2's SendEmail
    calls too) appends the header addresses to the destinations before its check,
    so a request to 50 recipients whose To/Cc name them counts 100 and fails with
    "Too many recipients". This patch is applied only by `services()` (the local
    services, `mailfilter demo` and their tests) and undone when they stop;
    `mock_aws` elsewhere sees moto unchanged. tests/test_local_cmd.py holds it to SES's rule.
    """
    from moto.ses.models import SESBackend  # noqa: PLC0415 - moto is loaded only where it runs

    original = SESBackend.send_raw_email

    def send_raw_email(self: Any, source: str, destinations: list[str], raw_data: str) -> Any:
        return original(self, source, _Envelope(destinations) if destinations else destinations, raw_data)

    SESBackend.send_raw_email = send_raw_email  # type: ignore[method-assign]
    try:
        yield
    finally:
        SESBackend.send_raw_email = original  # type: ignore[method-assign]


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@contextlib.contextmanager
def moto_server(port: int = 0) -> Iterator[str]:
    """moto's server in a thread of this process, on 127.0.0.1:`port` (0: a free one), emptied first; yields its endpoint."""
    from moto.server import ThreadedMotoServer  # noqa: PLC0415 - needs flask and flask-cors (the dev extras)

    if port and not _port_is_free(port):  # ThreadedMotoServer would wait forever for a server that failed to bind
        raise LocalError(f"port {port} is in use; leave --moto-port out to take a free one")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not one line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{server.get_host_and_port()[1]}"
    try:
        # Backends live in the process: a process that ran moto before (tests) starts from nothing too.
        urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"), timeout=10).close()
        _warm(endpoint)
        yield endpoint
    finally:
        server.stop()


def _warm(endpoint: str) -> None:
    """One read per service, so moto loads each one now (while DynamoDB Local boots) rather than on first use."""
    import boto3  # noqa: PLC0415

    session = boto3.session.Session(aws_access_key_id="local", aws_secret_access_key="local", region_name=LOCAL_REGION)
    for service, read in (("s3", "list_buckets"), ("sqs", "list_queues"), ("sesv2", "list_email_identities"), ("dynamodb", "list_tables")):
        getattr(session.client(service, endpoint_url=endpoint), read)()


@dataclass(frozen=True)
class Services:
    """Where the local services listen."""

    moto: str  # moto's server: S3, SES, SESv2, SQS, and anything else the SDK is asked for
    dynamodb: str
    dynamodb_local_pid: int | None = None  # None: moto's DynamoDB

    @property
    def database(self) -> str:
        return f"AWS DynamoDB Local at {self.dynamodb}" if self.dynamodb_local_pid else f"moto's DynamoDB at {self.dynamodb}"

    def environment(self) -> dict[str, str]:
        """The AWS SDK's settings for them: per-service endpoints, one for the rest, region, dummy credentials."""
        return {
            "AWS_ENDPOINT_URL": self.moto,
            "AWS_ENDPOINT_URL_DYNAMODB": self.dynamodb,
            **{f"AWS_ENDPOINT_URL_{service}": self.moto for service in MOTO_SERVICES},
            "AWS_REGION": LOCAL_REGION,
            "AWS_DEFAULT_REGION": LOCAL_REGION,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
        }


@contextlib.contextmanager
def services(
    dynamodb: str = "local",
    *,
    dynamodb_port: int = 0,
    moto_port: int = 0,
    log: IO[Any] | None = None,
    warn: Callable[[str], None] = lambda text: click.echo(text, err=True),
) -> Iterator[Services]:
    """DynamoDB Local (`dynamodb="local"`, moto's when it cannot start) and moto's server, for the block.

    Start it from the main thread: DynamoDB Local dies with the thread that started it.
    `log` takes DynamoDB Local's output (the supervisor's log); without it the output
    is shown only if it fails to start.
    """
    with contextlib.ExitStack() as stack:
        local, database = None, contextlib.ExitStack()
        stack.enter_context(database)
        if dynamodb == "local":
            try:  # before moto's threads exist: the child runs a little Python between fork and exec
                local = database.enter_context(dynamodb_local_process(port=dynamodb_port, output=log or subprocess.PIPE, wait=False))
            except DynamoDBLocalError as error:
                warn(f"DynamoDB Local is not available ({error}); using moto's DynamoDB instead.")
        stack.enter_context(ses_counts_envelope_once())
        moto = stack.enter_context(moto_server(moto_port))  # while the JVM boots
        if local is not None:
            try:
                local.wait_until_ready()
            except DynamoDBLocalError as error:
                database.close()
                local = None
                warn(f"DynamoDB Local did not start ({error}); using moto's DynamoDB instead.")
        try:
            yield Services(moto, local.endpoint if local else moto, local.pid if local else None)
        finally:
            if local is not None:
                local.process.terminate()  # the JVM exits while moto's server shuts down


# ---------------------------------------------------------------- resources


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


def env_vars_document(running: Services, made: Resources) -> dict[str, Any]:
    """The `sam local invoke --env-vars` document for these services: names, endpoints, region, credentials."""
    return {"Parameters": {**made.variables, **running.environment()}}


def export_lines(document: dict[str, Any]) -> str:
    return "".join(f"export {name}={shlex.quote(str(value))}\n" for name, value in document.get("Parameters", {}).items())


# ---------------------------------------------------------------- state and processes


@dataclass(frozen=True)
class Paths:
    project: Path

    @property
    def directory(self) -> Path:
        return self.project / STATE_DIR

    @property
    def state(self) -> Path:
        return self.directory / STATE_FILE

    @property
    def env_file(self) -> Path:
        return self.directory / ENV_FILE

    @property
    def log(self) -> Path:
        return self.directory / LOG_FILE


def _write_json(path: Path, data: dict[str, Any]) -> None:
    """Written whole or not at all: readers never see half a file."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(temporary, path)


def read_state(paths: Paths) -> dict[str, Any] | None:
    try:
        state = json.loads(paths.state.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) and isinstance(state.get("pid"), int) else None


def _command_line(pid: int) -> str | None:
    """The process's command line, or None when /proc cannot say (not Linux)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except FileNotFoundError:
        return "" if Path("/proc/self").exists() else None
    except OSError:
        return None


def alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie does not; a child of ours is reaped here)."""
    with contextlib.suppress(ChildProcessError, OSError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError, IndexError):
        status = Path(f"/proc/{pid}/stat").read_text()
        return status[status.rindex(")") + 2] not in "ZX"
    return True


def _is_ours(pid: int, marker: str) -> bool:
    """`pid` runs and its command line has `marker` (a reused pid is never signalled)."""
    if not alive(pid):
        return False
    command = _command_line(pid)
    return command is None or marker in command


SUPERVISOR_MARKER = "mailfilter_cli.local_cmd supervise"
JAVA_MARKER = "DynamoDBLocal.jar"


def supervisor_running(state: dict[str, Any] | None) -> bool:
    return state is not None and _is_ours(state["pid"], SUPERVISOR_MARKER)


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def stop_processes(state: dict[str, Any], timeout: float = 15.0) -> list[str]:
    """SIGTERM the supervisor (it stops DynamoDB Local), SIGKILL what is still there after `timeout`; what was stopped."""
    stopped = []
    pid, java = state["pid"], state.get("dynamodb_local_pid")
    if _is_ours(pid, SUPERVISOR_MARKER):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        if not _wait_gone(pid, timeout):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            _wait_gone(pid, 5)
        stopped.append(f"supervisor (pid {pid})")
    if java and _is_ours(java, JAVA_MARKER) and not _wait_gone(java, 5):  # it dies with the supervisor; this is the belt
        with contextlib.suppress(ProcessLookupError):
            os.kill(java, signal.SIGKILL)
        _wait_gone(java, 5)
    if java:
        stopped.append(f"DynamoDB Local (pid {java})")
    return stopped


# ---------------------------------------------------------------- commands


@click.group()
def local() -> None:
    """The filter's AWS services on this machine: DynamoDB Local and moto, shaped by template.yaml."""


def project_paths() -> Paths:
    """Where .mailfilter/ goes: the project directory, found as every `mailfilter` command finds it.

    That is --project-dir, $MAILFILTER_PROJECT_DIR, or the current directory or a
    parent holding template.yaml: where the other commands look for the env file.
    """
    return Paths(settings.project_dir(required=True, from_checkout=False))


@local.command()
@click.option(
    "--directory",
    "directory_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Directory to import (JSON Lines; default: the project's events/directory.jsonl).",
)
@click.option(
    "--events",
    "events_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Where the inbound-*.json events and their .eml raw messages are (default: the project's events/).",
)
@click.option(
    "--dynamodb", type=click.Choice(["local", "moto"]), default="local", show_default=True, help="DynamoDB Local (needs Java) or moto."
)
@click.option("--dynamodb-port", default=0, type=click.IntRange(0, 65535), help="DynamoDB Local's port (default: a free one).")
@click.option("--moto-port", default=0, type=click.IntRange(0, 65535), help="moto's port (default: a free one).")
@click.option("--foreground", is_flag=True, help="Run until Ctrl-C, and stop with this command whatever ends it.")
@click.option("--attach", type=int, metavar="PID", help="Stop the services when process PID ends (a script passes $$).")
@click.option(
    "-t", "--template", "template_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Default: the project's."
)
def up(
    directory_file: Path | None,
    events_dir: Path | None,
    dynamodb: str,
    dynamodb_port: int,
    moto_port: int,
    foreground: bool,
    attach: int | None,
    template_file: Path | None,
) -> None:
    """Start the services, create the template's resources, and print `export` lines for a shell.

    The services keep running after this command (`mailfilter local down` stops
    them). Standard output is only the export lines: `eval "$(mailfilter local up)"`.
    """
    started = time.monotonic()
    paths = project_paths()
    template_file = (template_file or paths.project / "template.yaml").resolve()
    events_dir = events_dir or paths.project / "events"
    directory_file = directory_file or events_dir / "directory.jsonl"
    for given, what in ((events_dir, "events directory"), (directory_file, "directory file")):
        if not given.exists():
            raise click.UsageError(f"no {what} {given}: pass --events/--directory")
    state = read_state(paths)
    if supervisor_running(state):
        raise LocalError(f"the local services already run (supervisor pid {state['pid']}); `mailfilter local down` stops them")
    for stale in (paths.state, paths.env_file):
        stale.unlink(missing_ok=True)
    paths.directory.mkdir(parents=True, exist_ok=True)

    command = [sys.executable, "-m", "mailfilter_cli.local_cmd", "supervise", "--project-dir", str(paths.project), "--dynamodb", dynamodb]
    command += ["--dynamodb-port", str(dynamodb_port), "--moto-port", str(moto_port)]
    watched = os.getpid() if foreground else attach
    if watched is not None:
        command += ["--attach", str(watched)]
    with paths.log.open("w", encoding="utf-8") as log:
        supervisor = subprocess.Popen(
            command,
            cwd=paths.project,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # the terminal's Ctrl-C and hang-up are not for it
            close_fds=True,
            # attached to this process: the kernel sends it SIGTERM when this process dies
            preexec_fn=die_with_parent(signal.SIGTERM) if foreground else None,  # noqa: PLW1509 - no threads here yet
        )
    try:
        state = _wait_for_supervisor(paths, supervisor)
        running = Services(state["moto"], state["dynamodb"], state.get("dynamodb_local_pid"))
        with environment(running.environment()):
            made = create_resources(directory_file, events_dir, template_file, say=lambda text: click.echo(f"  {text}", err=True))
        document = env_vars_document(running, made)
        _write_json(paths.env_file, document)
        _write_json(paths.state, {**state, "resources": asdict(made), "env_file": str(paths.env_file)})
    except BaseException:
        stop_processes({"pid": supervisor.pid, **(read_state(paths) or {})})
        paths.state.unlink(missing_ok=True)
        raise
    seconds = time.monotonic() - started
    for text in state.get("notes", []):
        click.echo(text, err=True)
    click.echo(
        f"local services up in {seconds:.1f} s (supervisor pid {supervisor.pid}): {running.database}; moto at {running.moto}", err=True
    )
    click.echo(f"env-vars file for `mailfilter invoke`: {_shown(paths.env_file)}; stop with `mailfilter local down`", err=True)
    click.echo(export_lines(document), nl=False)
    if foreground:
        _run_in_foreground(paths, supervisor)


def _shown(path: Path) -> str:
    with contextlib.suppress(ValueError):
        return str(path.relative_to(Path.cwd()))
    return str(path)


def _wait_for_supervisor(paths: Paths, supervisor: subprocess.Popen) -> dict[str, Any]:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        state = read_state(paths)
        if state is not None and state["pid"] == supervisor.pid:
            return state
        if supervisor.poll() is not None:
            tail = "".join(paths.log.read_text(encoding="utf-8", errors="replace").splitlines(keepends=True)[-20:])
            raise LocalError(f"the local services did not start (exit code {supervisor.returncode}); {paths.log}:\n{tail}")
        time.sleep(0.05)
    raise LocalError(f"the local services did not start within {START_TIMEOUT:.0f} s; see {paths.log}")


def _run_in_foreground(paths: Paths, supervisor: subprocess.Popen) -> None:
    def interrupt(signal_number: int, frame: Any) -> None:
        raise KeyboardInterrupt

    for signal_number in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signal_number, interrupt)
    click.echo("running in the foreground: Ctrl-C stops the services", err=True)
    try:
        supervisor.wait()
        click.echo(f"the supervisor exited (code {supervisor.returncode}); see {paths.log}", err=True)
    except KeyboardInterrupt:
        pass
    finally:
        state = read_state(paths) or {"pid": supervisor.pid}
        stop_processes(state)
        if state["pid"] == supervisor.pid:
            paths.state.unlink(missing_ok=True)
            paths.env_file.unlink(missing_ok=True)
        click.echo("local services stopped", err=True)


@local.command()
def down() -> None:
    """Stop the local services and the processes they run."""
    started = time.monotonic()
    paths = project_paths()
    state = read_state(paths)
    if not supervisor_running(state):
        paths.env_file.unlink(missing_ok=True)
        paths.state.unlink(missing_ok=True)
        click.echo("no local services run here; nothing to stop")
        return
    stopped = stop_processes(state)
    paths.env_file.unlink(missing_ok=True)
    paths.state.unlink(missing_ok=True)
    click.echo(f"stopped {' and '.join(stopped)} in {time.monotonic() - started:.1f} s")


def answers(endpoint: str, timeout: float = 1.0) -> bool:
    """Whether something accepts connections at the endpoint URL's host and port."""
    parts = urlsplit(endpoint)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        with socket.create_connection((parts.hostname or "", port), timeout=timeout):
            return True
    except (OSError, ValueError):
        return False


_LABELS = {
    "AWS::DynamoDB::Table": "tables",
    "AWS::S3::Bucket": "bucket",
    "AWS::SQS::Queue": "queues",
    "AWS::SES::ConfigurationSet": "configuration set",
}


@local.command()
def status() -> None:
    """What runs where; exits 1 when nothing runs or a service does not answer."""
    paths = project_paths()
    state = read_state(paths)
    if not supervisor_running(state):
        click.echo(f"no local services run here (no live supervisor in {_shown(paths.state)}); `mailfilter local up` starts them")
        sys.exit(1)
    since = datetime.fromisoformat(state["started"])
    uptime = int((datetime.now(UTC) - since).total_seconds())
    attached = f"stops with pid {state['attached_to']}" if state.get("attached_to") else "detached"
    ok = True
    rows = [("supervisor", f"pid {state['pid']}, up {uptime // 60} min {uptime % 60} s, {attached}; log {_shown(paths.log)}")]
    for label, endpoint, detail in (
        (
            "DynamoDB",
            state["dynamodb"],
            f"AWS DynamoDB Local, pid {state['dynamodb_local_pid']}" if state.get("dynamodb_local_pid") else "moto",
        ),
        (", ".join(MOTO_SERVICES).replace("SESV2", "SESv2"), state["moto"], "moto, in the supervisor"),
    ):
        answering = answers(endpoint)
        ok &= answering
        rows.append((label, f"{endpoint} ({detail}): {'answers' if answering else 'DOES NOT ANSWER'}"))
    made = state.get("resources") or {}
    by_type: dict[str, list[str]] = {}
    for resource_type, name in (made.get("names") or {}).values():
        by_type.setdefault(resource_type, []).append(name)
    rows += [(_LABELS.get(kind, kind), ", ".join(names)) for kind, names in by_type.items()]
    if made:
        rows.append(("SES identities", ", ".join(made.get("identities", []))))
        rows.append(("directory", made.get("directory") or "-"))
        rows.append(("inbound samples", f"{len(made.get('inbound', []))} raw messages under inbound/"))
    rows.append(("env-vars file", _shown(paths.env_file) if paths.env_file.exists() else "not written (resources not created)"))
    width = max(len(label) for label, _ in rows)
    for label, text in rows:
        click.echo(f"{label:<{width}}  {text}")
    if not ok:
        sys.exit(1)


@local.command("env")
def env_cmd() -> None:
    """Print the `export` lines again: eval "$(mailfilter local env)"."""
    paths = project_paths()
    if not supervisor_running(read_state(paths)) or not paths.env_file.exists():
        raise LocalError("no local services run here; `mailfilter local up` starts them")
    click.echo(export_lines(json.loads(paths.env_file.read_text(encoding="utf-8"))), nl=False)


@local.command(hidden=True)
@click.option("--project-dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--dynamodb", type=click.Choice(["local", "moto"]), default="local")
@click.option("--dynamodb-port", default=0, type=int)
@click.option("--moto-port", default=0, type=int)
@click.option("--attach", type=int, default=None)
def supervise(project_dir: Path, dynamodb: str, dynamodb_port: int, moto_port: int, attach: int | None) -> None:
    """Run the services until signalled (TERM, INT, HUP), or until the attached process ends."""
    paths = Paths(project_dir.resolve())
    stop = threading.Event()  # set by the watchdog thread
    signalled: list[int] = []  # set by the handlers, which must not take the Event's lock the main thread may hold

    def on_signal(signal_number: int, frame: Any) -> None:
        signalled.append(signal_number)

    for signal_number in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signal_number, on_signal)
    pidfd = None
    if attach is not None:  # opened now, so a pid reused while the services start is never mistaken for it
        with contextlib.suppress(AttributeError, OSError):
            pidfd = os.pidfd_open(attach)  # readable once it has exited, whoever reaps it
    me = os.getpid()
    print(f"{datetime.now(UTC).isoformat()} supervisor {me} starting", flush=True)
    notes: list[str] = []

    def note(text: str) -> None:
        print(text, flush=True)
        notes.append(text)

    try:
        with services(dynamodb, dynamodb_port=dynamodb_port, moto_port=moto_port, log=sys.stdout, warn=note) as running:
            state = {
                "pid": me,
                "started": datetime.now(UTC).isoformat(),
                "attached_to": attach,
                "moto": running.moto,
                "dynamodb": running.dynamodb,
                "dynamodb_local_pid": running.dynamodb_local_pid,
                "log": str(paths.log),
                "notes": notes,  # e.g. why moto's DynamoDB stands in for DynamoDB Local
            }
            _write_json(paths.state, state)
            print(f"supervisor {me}: {running.database}; moto at {running.moto}", flush=True)
            watchdog = threading.Thread(target=_watchdog, args=(stop, attach, pidfd, paths, me), name="watchdog", daemon=True)
            watchdog.start()  # after DynamoDB Local is forked: no thread of ours runs while its child prepares to exec
            while not signalled and not stop.is_set():
                time.sleep(0.1)
            why = f"signal {signal.Signals(signalled[0]).name}" if signalled else "the watchdog"
            print(f"{datetime.now(UTC).isoformat()} supervisor {me} stopping ({why})", flush=True)
    finally:
        state = read_state(paths)
        if state is not None and state["pid"] == me:
            paths.state.unlink(missing_ok=True)
    print(f"{datetime.now(UTC).isoformat()} supervisor {me} stopped", flush=True)


def _watchdog(stop: threading.Event, attach: int | None, pidfd: int | None, paths: Paths, me: int) -> None:
    """Stop when the attached process ends, or when the state file no longer names this supervisor."""
    next_check = time.monotonic() + 2.0
    while not stop.is_set():
        if pidfd is not None:
            ended = bool(select.select([pidfd], [], [], 0.25)[0])
        else:  # no pidfd (not Linux, or the process was already gone): poll
            time.sleep(0.25)
            ended = attach is not None and not alive(attach)
        if ended:
            print(f"supervisor {me}: process {attach} ended", flush=True)
            break
        if time.monotonic() > next_check:
            next_check = time.monotonic() + 2.0
            state = read_state(paths)
            if state is None or state["pid"] != me:
                print(f"supervisor {me}: {paths.state} no longer names it", flush=True)
                break
    if pidfd is not None:
        os.close(pidfd)
    stop.set()


if __name__ == "__main__":
    local()
