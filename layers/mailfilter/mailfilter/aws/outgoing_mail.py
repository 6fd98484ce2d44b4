"""The header block of a message stored under the mail bucket's outgoing prefix, read without its body.

The SMTP intake needs only To and Cc to tell envelope recipients apart; a
message may be 40 MB. Ranged GETs read the object from its start, 64 KiB at a
time, until the empty line that ends the header block (or the object ends),
and never more than `MAX_HEADER_BYTES`: a header block larger than that is
read as far as that and split as mail software would split it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from botocore.client import BaseClient
from botocore.exceptions import BotoCoreError, ClientError

from mailfilter.aws import clients

CHUNK_BYTES = 64 * 1024
MAX_HEADER_BYTES = 1024 * 1024
_HEADER_END = re.compile(rb"\r?\n\r?\n")


class StoredMailUnavailable(RuntimeError):  # noqa: N818 - the name says what callers handle
    """The stored message cannot be read (missing, not permitted, or the service failed)."""


@dataclass(frozen=True, slots=True)
class HeaderBlock:
    """The bytes read from the start of the object (the header block and perhaps a little body), and its size."""

    head: bytes
    size: int


@dataclass(frozen=True, slots=True)
class OutgoingMail:
    """Reads stored outgoing messages in one bucket."""

    bucket: str
    s3: BaseClient | None = None

    @property
    def client(self) -> BaseClient:
        return self.s3 or clients.client("s3")

    def header_block(self, key: str) -> HeaderBlock:
        """The start of s3://bucket/key up to the end of its header block; `StoredMailUnavailable` otherwise."""
        head = b""
        size = -1
        while len(head) < MAX_HEADER_BYTES:
            start = len(head)
            end = min(start + CHUNK_BYTES, MAX_HEADER_BYTES) - 1
            try:
                response = self.client.get_object(Bucket=self.bucket, Key=key, Range=f"bytes={start}-{end}")
                chunk = response["Body"].read()
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") == "InvalidRange":  # an empty object, or read to its end
                    break
                raise StoredMailUnavailable(f"s3://{self.bucket}/{key}: {error}") from error
            except BotoCoreError as error:
                raise StoredMailUnavailable(f"s3://{self.bucket}/{key}: {error}") from error
            size = _total_size(response, start + len(chunk))
            # Look for the end a little before the new chunk, in case it straddles two reads.
            if _HEADER_END.search(head[-3:] + chunk) or start + len(chunk) >= size or not chunk:
                head += chunk
                break
            head += chunk
        return HeaderBlock(head=head, size=max(size, len(head)))


def _total_size(response: dict, read_so_far: int) -> int:
    """The object's whole size from Content-Range (`bytes 0-65535/1234567`), else what was read."""
    content_range = response.get("ContentRange") or ""
    total = content_range.rpartition("/")[2]
    return int(total) if total.isdigit() else read_so_far
