"""Sending through SES v2: the one way the filter's functions put mail on the wire.

The API is deliberately small. A `Mailer` sends a complete MIME message
(`bytes`, built by `mailfilter.delivery`) to an explicit envelope, so Bcc
recipients are reached without appearing in any header. Every message carries
the gateway's SES message tag (`GATEWAY_TAG`) for dashboards, and is sent
through the configuration set when one is given (the set that publishes
"Email Sent" events). The outbound audit does not believe the tag, which any
SES caller can set: it knows the filter's sends by SES's `ses:caller-identity`.

Throttling and transient errors are retried by botocore (the client from
`mailfilter.aws.clients`, retry mode "standard"); whatever still fails is
raised as `SendError` for the caller to fail its record.

    mailer = Mailer(configuration_set="vendor-mail")
    ses_id = mailer.send(raw_bytes, sender="billing@vendor.example", recipients=["a@contoso.com"],
                         tags={"category": "subscription"})
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from botocore.client import BaseClient
from botocore.exceptions import BotoCoreError, ClientError

from mailfilter.aws import clients
from mailfilter.events.ses_sent import GATEWAY_TAG, GATEWAY_TAG_VALUE

_TAG_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")  # SES tag names and values allow only these


class SendError(RuntimeError):
    """SES did not accept a message after botocore's retries; `code` is SES's error code."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


def tag_value(value: str) -> str:
    """A value SES accepts as a message tag (letters, digits, '_' and '-'; at most 256)."""
    return _TAG_UNSAFE.sub("_", value)[:256] or "_"


class Mailer:
    def __init__(self, client: BaseClient | None = None, *, configuration_set: str | None = None) -> None:
        self._client = client
        self.configuration_set = configuration_set

    @property
    def client(self) -> BaseClient:
        return self._client or clients.client("sesv2")

    def send(self, message: bytes, *, sender: str, recipients: Sequence[str], tags: Mapping[str, str] | None = None) -> str:
        """Send `message` to exactly `recipients` (the envelope); returns SES's message id."""
        if not recipients:
            raise ValueError("send needs at least one recipient")
        all_tags = {GATEWAY_TAG: GATEWAY_TAG_VALUE, **(tags or {})}
        request = {
            "FromEmailAddress": sender,
            "Destination": {"ToAddresses": list(recipients)},
            "Content": {"Raw": {"Data": message}},
            "EmailTags": [{"Name": tag_value(k), "Value": tag_value(v)} for k, v in all_tags.items()],
        }
        if self.configuration_set:
            request["ConfigurationSetName"] = self.configuration_set
        try:
            return self.client.send_email(**request)["MessageId"]
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "Unknown")
            raise SendError(f"SES refused the message from {sender}: {code}: {error}", code) from error
        except BotoCoreError as error:
            raise SendError(f"SES could not be reached: {error}", "Unreachable") from error
