"""The raw messages stored in the mail bucket: inbound mail SES's receipt rule stored, outgoing mail applications stored.

SES stores each inbound message at INBOUND_PREFIX + the SES message id before it
invokes the filter; applications (and the SMTP intake) store outgoing messages
under OUTGOING_PREFIX and name them in a send request's `raw_key`. Nothing is
deleted here: a blocked message is copied to QUARANTINE_PREFIX + "raw/…"
(the quarantine record itself is `mailfilter.aws.quarantine`'s), so it outlives
the stored copy's expiry.

A message is read into one buffer of its announced size, chunk by chunk, so a
40 MB message costs 40 MB of memory, not the several copies a plain `read()`
and its joins would make.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass

from botocore.client import BaseClient
from botocore.exceptions import BotoCoreError, ClientError

from mailfilter.aws import clients
from mailfilter.ports import HeaderBlock
from mailfilter.vocabulary.errors import MailUnavailable, StoredMessageMissing, StoredMessageTooLarge


def quarantine_digest(message_id: str) -> str:
    """A key-safe name for a message id (ids may hold '/', which S3 would read as folders)."""
    return hashlib.sha256(message_id.encode()).hexdigest()[:32]


HEADER_CHUNK_BYTES = 64 * 1024
MAX_HEADER_BYTES = 1024 * 1024
_HEADER_END = re.compile(rb"\r?\n\r?\n")


@dataclass(frozen=True, slots=True)
class MailBucket:
    """Reads inbound messages and writes quarantine entries in one bucket."""

    bucket: str
    inbound_prefix: str = "inbound/"
    quarantine_prefix: str = "quarantine/"
    s3: BaseClient | None = None

    CHUNK = 64 * 1024  # read into the message's buffer a piece at a time: one piece is all a read adds

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
            return bytes(self._read(bucket, key, max_bytes))
        except (ClientError, BotoCoreError) as error:
            raise MailUnavailable(f"s3://{bucket}/{key}: {error}") from error

    def read_outgoing(self, key: str, *, max_bytes: int) -> bytearray:
        """An outgoing message a send request names; `StoredMessageMissing` when there is none."""
        try:
            return self._read(self.bucket, key, max_bytes)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise StoredMessageMissing(f"no message is stored at s3://{self.bucket}/{key}") from None
            raise MailUnavailable(f"s3://{self.bucket}/{key}: {error}") from error
        except BotoCoreError as error:
            raise MailUnavailable(f"s3://{self.bucket}/{key}: {error}") from error

    def _read(self, bucket: str, key: str, max_bytes: int) -> bytearray:
        response = self.client.get_object(Bucket=bucket, Key=key)
        body = response["Body"]
        size = int(response.get("ContentLength", 0))
        if size > max_bytes:
            body.close()
            raise StoredMessageTooLarge(size, max_bytes)
        buffer, filled = bytearray(size), 0
        for chunk in body.iter_chunks(self.CHUNK):
            if filled + len(chunk) > size:
                raise MailUnavailable(f"s3://{bucket}/{key}: more bytes than the {size:,} announced")
            buffer[filled : filled + len(chunk)] = chunk
            filled += len(chunk)
        if filled != size:
            raise MailUnavailable(f"s3://{bucket}/{key}: {filled:,} bytes read of the {size:,} announced")
        return buffer

    def header_block(self, key: str) -> HeaderBlock:
        """The start of an outgoing message up to the end of its header block, never its body; `MailUnavailable` otherwise.

        The SMTP intake needs only To and Cc of a message that may be 40 MB. Ranged GETs read the
        object from its start, 64 KiB at a time, until the empty line that ends the header block
        (or the object ends), and never more than `MAX_HEADER_BYTES`: a header block larger than
        that is read as far as that and split as mail software would split it.
        """
        head = b""
        size = -1
        while len(head) < MAX_HEADER_BYTES:
            start = len(head)
            end = min(start + HEADER_CHUNK_BYTES, MAX_HEADER_BYTES) - 1
            try:
                response = self.client.get_object(Bucket=self.bucket, Key=key, Range=f"bytes={start}-{end}")
                chunk = response["Body"].read()
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") == "InvalidRange":  # an empty object, or read to its end
                    break
                raise MailUnavailable(f"s3://{self.bucket}/{key}: {error}") from error
            except BotoCoreError as error:
                raise MailUnavailable(f"s3://{self.bucket}/{key}: {error}") from error
            size = _total_size(response, start + len(chunk))
            # Look for the end a little before the new chunk, in case it straddles two reads.
            if _HEADER_END.search(head[-3:] + chunk) or start + len(chunk) >= size or not chunk:
                head += chunk
                break
            head += chunk
        return HeaderBlock(head=head, size=max(size, len(head)))

    def preserve_outgoing(self, key: str, message_id: str) -> dict[str, str]:
        """Copy an outgoing message beside the quarantine (server side); returns where it is."""
        target = f"{self.quarantine_prefix}raw/outgoing/{quarantine_digest(message_id)}.eml"
        try:
            self.client.copy_object(Bucket=self.bucket, Key=target, CopySource={"Bucket": self.bucket, "Key": key})
        except (ClientError, BotoCoreError) as error:
            raise MailUnavailable(f"s3://{self.bucket}/{key}: {error}") from error
        return {"bucket": self.bucket, "key": target}

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


def _total_size(response: dict, read_so_far: int) -> int:
    """The object's whole size from Content-Range (`bytes 0-65535/1234567`), else what was read."""
    content_range = response.get("ContentRange") or ""
    total = content_range.rpartition("/")[2]
    return int(total) if total.isdigit() else read_so_far
