"""The quarantine a `mailfilter quarantine` subcommand acts on, and how its failures are reported."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import click

from mailfilter_cli import settings

if TYPE_CHECKING:
    from mailfilter.aws.quarantine import Quarantine


def quarantine_of(ctx: click.Context) -> Quarantine:
    """The quarantine in the mail bucket, made the first time a subcommand needs it."""
    from mailfilter.aws.quarantine import Quarantine  # noqa: PLC0415

    state = ctx.find_object(dict)
    assert state is not None
    if "quarantine" not in state:
        bucket = settings.require("MAIL_BUCKET", state["bucket"], flag="--bucket", what="mail bucket")
        prefix = settings.setting("QUARANTINE_PREFIX", state["prefix"]) or "quarantine/"
        settings.use_aws_location()
        state["quarantine"] = Quarantine(bucket, prefix)
    return state["quarantine"]


@contextmanager
def reported() -> Iterator[None]:
    """What S3 or the quarantine refuses, as one line and exit status 1 (not found is a finding too)."""
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

    from mailfilter.vocabulary.errors import QuarantineError, ReleaseError, SendError  # noqa: PLC0415

    try:
        yield
    except (QuarantineError, ReleaseError, SendError) as error:
        raise click.ClickException(str(error)) from None
    except (ClientError, BotoCoreError) as error:
        raise click.ClickException(f"S3: {error}") from None
