"""The raw messages SES's receipt rule stored in the mail bucket, as the inbound filter reads them.

SES stores each message at INBOUND_PREFIX + the SES message id before it
invokes the filter. Nothing is deleted here: a blocked message is copied to
QUARANTINE_PREFIX + "raw/<message id>.eml" (the quarantine record itself is
`mailfilter.aws.quarantine`'s), so it outlives the inbound copy's expiry.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from botocore.client import BaseClient
from botocore.exceptions import BotoCoreError, ClientError

from mailfilter.aws import clients


class MailUnavailable(RuntimeError):  # noqa: N818 - the name says what callers handle
    """The raw message cannot be read from, or kept in, the mail bucket."""


class StoredMessageTooLarge(RuntimeError):  # noqa: N818
    """The raw message is larger than the caller can send; it was not read."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"the message is {size:,} bytes, over SES's sending limit of {limit:,} bytes")
        self.size = size


@dataclass(frozen=True, slots=True)
class MailBucket:
    """Reads inbound messages and writes quarantine entries in one bucket."""

    bucket: str
    inbound_prefix: str = "inbound/"
    quarantine_prefix: str = "quarantine/"
    s3: BaseClient | None = None

    @property
    def client(self) -> BaseClient:
        return self.s3 or clients.client("s3")

    def inbound_key(self, message_id: str) -> str:
        return self.inbound_prefix + message_id

    def read(self, message_id: str, *, max_bytes: int) -> bytes:
        """The raw message SES stored; `StoredMessageTooLarge` before reading one over `max_bytes`."""
        return self.read_location(self.location(message_id), max_bytes=max_bytes)

    def read_location(self, location: Mapping[str, str], *, max_bytes: int) -> bytes:
        """The message at a location `location` or `preserve` returned (a quarantine item's `raw`)."""
        bucket, key = location["bucket"], location["key"]
        try:
            response = self.client.get_object(Bucket=bucket, Key=key)
            size = int(response.get("ContentLength", 0))
            if size > max_bytes:
                response["Body"].close()
                raise StoredMessageTooLarge(size, max_bytes)
            return response["Body"].read()
        except (ClientError, BotoCoreError) as error:
            raise MailUnavailable(f"s3://{bucket}/{key}: {error}") from error

    def preserve(self, message_id: str) -> dict[str, str]:
        """Copy the raw message beside the quarantine (server side, any size); returns where it is.

        inbound/ expires after days, the quarantine after months: a blocked message must
        outlive the inbound copy to be released.
        """
        source = self.inbound_key(message_id)
        target = f"{self.quarantine_prefix}raw/{message_id}.eml"
        try:
            self.client.copy_object(Bucket=self.bucket, Key=target, CopySource={"Bucket": self.bucket, "Key": source})
        except (ClientError, BotoCoreError) as error:
            raise MailUnavailable(f"s3://{self.bucket}/{source}: {error}") from error
        return {"bucket": self.bucket, "key": target}

    def location(self, message_id: str) -> dict[str, str]:
        return {"bucket": self.bucket, "key": self.inbound_key(message_id)}
