"""The local AWS services: DynamoDB Local (moto's DynamoDB when it cannot start) and moto's server for the rest.

`services()` runs them for a block in this process: the supervisor of
`mailfilter local up` (mailfilter_cli.local_supervisor) and `mailfilter demo`.
While they run, moto's SES counts a raw message's envelope as SES does.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import subprocess
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any
from urllib.parse import urlsplit

import click

from mailfilter_cli.dynamodb_local import DynamoDBLocalError, dynamodb_local_process
from mailfilter_cli.sam_template import LOCAL_REGION

MOTO_SERVICES = ("S3", "SES", "SESV2", "SQS")  # what the functions and operators use of moto, by their endpoint variables


class LocalError(click.ClickException):
    """The local services could not be started, found or stopped."""


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
    `mock_aws` elsewhere sees moto unchanged. tests/integration/test_local_cmd.py holds it to SES's rule.
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


def answers(endpoint: str, timeout: float = 1.0) -> bool:
    """Whether something accepts connections at the endpoint URL's host and port."""
    parts = urlsplit(endpoint)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        with socket.create_connection((parts.hostname or "", port), timeout=timeout):
            return True
    except (OSError, ValueError):
        return False
