"""`mailfilter send FILE.eml --to …`: hand a message to the gateway as an application would.

The file is stored under outgoing/ in the mail bucket (the bucket's own encryption and
lifecycle apply) and one send request naming it (`raw_key`) goes on the gateway's queue:
the claim check that lets a message of any size SES accepts (40 MB) through a queue
whose messages hold 1 MiB (docs/send-request.md). Nothing is decided here: the gateway
reads, decides and sends, as for every request.

    mailfilter send invoice.eml --to it@contoso.com --bcc audit@vendor.example
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import click

from mailfilter_cli import output, settings


@click.command()
@click.argument("message_file", metavar="FILE.eml", type=click.Path(exists=True, dir_okay=False, allow_dash=True, path_type=Path))
@click.option("--to", "to", multiple=True, metavar="ADDRESS", help="A To recipient; repeat for more.")
@click.option("--cc", multiple=True, metavar="ADDRESS", help="A Cc recipient; repeat for more.")
@click.option("--bcc", multiple=True, metavar="ADDRESS", help="A Bcc recipient (envelope only); repeat for more.")
@click.option("--from", "sender", metavar="ADDRESS", help="The envelope sender, a vendor identity [default: the message's From].")
@click.option("--message-id", help="Idempotency key: a second send with it sends nothing [default: derived from the request].")
@click.option("--bucket", envvar="MAIL_BUCKET", show_envvar=True, help="The mail bucket; else from .mailfilter/local.env.json.")
@click.option("--queue-url", envvar="OUTBOUND_QUEUE_URL", show_envvar=True, help="The gateway's queue; else from the env file.")
@output.format_option(output.TABLE, output.JSON)
def send(
    message_file: Path,
    to: tuple[str, ...],
    cc: tuple[str, ...],
    bcc: tuple[str, ...],
    sender: str | None,
    message_id: str | None,
    bucket: str | None,
    queue_url: str | None,
    output_format: str,
) -> None:
    """Store FILE.eml in the mail bucket and queue a send request for it (- reads standard input).

    Exit status 1 when the request is refused before it is queued (no recipient, no
    readable From, not a message); the gateway's own refusals are recorded where
    `mailfilter explain` and the decisions table show them.
    """
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

    from mailfilter.aws import clients  # noqa: PLC0415
    from mailfilter.aws.request_queue import RequestQueue  # noqa: PLC0415
    from mailfilter.events.send_request import parse_send_request  # noqa: PLC0415
    from mailfilter.vocabulary.errors import EventError, QueueUnavailable  # noqa: PLC0415
    from mailfilter.vocabulary.ses import OUTGOING_PREFIX, SES_MAX_MESSAGE_BYTES  # noqa: PLC0415

    data = click.get_binary_stream("stdin").read() if str(message_file) == "-" else message_file.read_bytes()
    if len(data) > SES_MAX_MESSAGE_BYTES:
        raise click.ClickException(f"{message_file} is {len(data):,} bytes; SES sends at most {SES_MAX_MESSAGE_BYTES:,}")
    sender = sender or _from_header(data, message_file)
    key = f"{OUTGOING_PREFIX}send/{datetime.now(UTC):%Y/%m/%d}/{uuid.uuid4().hex}.eml"
    request = {"from": sender, "to": list(to), "cc": list(cc), "bcc": list(bcc), "raw_key": key}
    if message_id:
        request["message_id"] = message_id
    try:
        parsed = parse_send_request(request)  # the gateway's own validation, before anything is stored
    except EventError as error:
        raise click.ClickException(str(error)) from None
    bucket = settings.require("MAIL_BUCKET", bucket, flag="--bucket", what="mail bucket")
    queue_url = settings.require("OUTBOUND_QUEUE_URL", queue_url, flag="--queue-url", what="gateway queue")
    settings.use_aws_location()
    try:
        clients.client("s3").put_object(Bucket=bucket, Key=key, Body=data, ContentType="message/rfc822")
        queued_as = RequestQueue(queue_url).send(request)
    except (ClientError, BotoCoreError, QueueUnavailable) as error:
        raise click.ClickException(f"not sent: {error}") from None
    result = {
        "message_id": parsed.effective_message_id,
        "raw_key": f"s3://{bucket}/{key}",
        "bytes": len(data),
        "recipients": len(parsed.recipients),
        "queued_as": queued_as,
    }
    if output_format == output.JSON:
        output.json_line(result)
    else:
        click.echo(
            f"queued {result['message_id']}: {len(data):,} bytes stored at {result['raw_key']}, "
            f"{result['recipients']} recipient(s), SQS message {queued_as}"
        )


def _from_header(data: bytes, source: Path) -> str:
    """The one address of the message's From header, read as the gateway reads it."""
    from mailfilter.delivery.raw import split_message  # noqa: PLC0415
    from mailfilter.vocabulary.errors import UnreadableHeader  # noqa: PLC0415
    from mailfilter.vocabulary.reading import mailbox  # noqa: PLC0415

    fields = split_message(data).all("From")
    if len(fields) != 1:
        raise click.ClickException(f"{source} has {len(fields)} From headers; give the sender with --from")
    try:
        return mailbox(fields[0].text())
    except UnreadableHeader as error:
        raise click.ClickException(f"{source}: its From header cannot be read ({error}); give the sender with --from") from None
