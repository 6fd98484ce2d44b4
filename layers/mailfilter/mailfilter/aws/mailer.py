"""Sending through SES v2: the one way the filter's functions put mail on the wire.

The API is deliberately small. A `Mailer` sends a complete MIME message
(`bytes`, built by `mailfilter.delivery`) to an explicit envelope, so Bcc
recipients are reached without appearing in any header. Every message carries
the gateway's SES message tag (`GATEWAY_TAG`) for dashboards, and is sent
through the configuration set when one is given (the set that publishes
"Email Sent" events). The outbound audit does not believe the tag, which any
SES caller can set: it knows the filter's sends by SES's `ses:caller-identity`.

A message is streamed to SES, never held base64-encoded: SES v2 takes the raw
message as base64 inside a JSON body, which botocore would build in memory
(1.33 times the message, then copied again as text and as bytes). The mailer
hands botocore a small placeholder instead and, just before the request is
signed, swaps in a body that encodes the message's parts as it is read
(`_StreamedBody`), so a 35 MB message costs no memory beyond its own bytes.

Throttling and transient errors are retried by botocore (the client from
`mailfilter.aws.clients`, retry mode "standard"); whatever still fails is
raised as `SendError` for the caller to fail its record.

    mailer = Mailer(configuration_set="vendor-mail")
    ses_id = mailer.send(raw_bytes, sender="billing@vendor.example", recipients=["a@contoso.com"],
                         tags={"category": "subscription"})
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

from botocore.client import BaseClient
from botocore.exceptions import BotoCoreError, ClientError

from mailfilter.aws import clients
from mailfilter.delivery.raw import Buffer, Mail
from mailfilter.vocabulary.errors import SendError
from mailfilter.vocabulary.ses import GATEWAY_TAG, GATEWAY_TAG_VALUE

_TAG_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")  # SES tag names and values allow only these


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

    def send(self, message: Mail | bytes, *, sender: str, recipients: Sequence[str], tags: Mapping[str, str] | None = None) -> str:
        """Send `message` to exactly `recipients` (the envelope); returns SES's message id."""
        if not recipients:
            raise ValueError("send needs at least one recipient")
        all_tags = {GATEWAY_TAG: GATEWAY_TAG_VALUE, **(tags or {})}
        client = self.client
        _stream_raw_content(client)
        token = secrets.token_hex(12)
        _PENDING[token] = message.parts if isinstance(message, Mail) else (message,)
        request = {
            "FromEmailAddress": sender,
            "Destination": {"ToAddresses": list(recipients)},
            "Content": {"Raw": {"Data": _PLACEHOLDER + token.encode("ascii")}},
            "EmailTags": [{"Name": tag_value(k), "Value": tag_value(v)} for k, v in all_tags.items()],
        }
        if self.configuration_set:
            request["ConfigurationSetName"] = self.configuration_set
        try:
            return client.send_email(**request)["MessageId"]
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "Unknown")
            raise SendError(f"SES refused the message from {sender}: {code}: {error}", code) from error
        except BotoCoreError as error:
            raise SendError(f"SES could not be reached: {error}", "Unreachable") from error
        finally:
            _PENDING.pop(token, None)


def message_on_the_wire(request: Any) -> bytes:
    """The raw message a SendEmail request (botocore's `request-created` AWSRequest) carries, as SES receives it.

    The mailer streams the message, so the call's parameters hold only a placeholder; tools that
    watch what is sent (tests, `mailfilter invoke`) read it here, and leave the stream rewound.
    """
    body = request.body
    if not isinstance(body, bytes):
        data = body.read()
        body.seek(0)
        body = data
    return base64.b64decode(json.loads(body)["Content"]["Raw"]["Data"])


# The message a send_email call carries, by the token its placeholder names; one entry per call in flight.
_PENDING: dict[str, Sequence[Buffer]] = {}
_PLACEHOLDER = b"mailfilter-stream:"  # 18 bytes: its base64 ends on a group boundary, so the token's base64 follows it whole
_PLACEHOLDER_B64 = b'"' + base64.b64encode(_PLACEHOLDER)
_TOKEN_B64_LENGTH = 32  # base64 of the 24 hex characters of a token
_STREAMING_CLIENTS: weakref.WeakSet[BaseClient] = weakref.WeakSet()


def _stream_raw_content(client: BaseClient) -> None:
    """Have `client` stream the raw content of its send_email calls (registered once per client)."""
    if client not in _STREAMING_CLIENTS:
        client.meta.events.register("before-call.sesv2.SendEmail", _swap_in_stream)
        _STREAMING_CLIENTS.add(client)


def _swap_in_stream(params: dict[str, Any], **_: Any) -> None:
    """botocore's serialised body, with the placeholder's base64 replaced by the message's, encoded as it is read."""
    body = params.get("body")
    if not isinstance(body, bytes):
        return
    start = body.find(_PLACEHOLDER_B64)
    if start < 0:
        return  # a send_email call that is not the mailer's
    token_at = start + len(_PLACEHOLDER_B64)
    token = base64.b64decode(body[token_at : token_at + _TOKEN_B64_LENGTH]).decode("ascii")
    parts = _PENDING.get(token)
    if parts is not None:
        params["body"] = _StreamedBody(body[: start + 1], parts, body[token_at + _TOKEN_B64_LENGTH :])


class _StreamedBody:
    """`prefix`, the base64 of `parts` joined, then `suffix`: a seekable file that encodes as it is read.

    botocore reads it twice (SigV4 hashes the payload, then the connection sends it) and seeks
    back to the start before a retry; each read encodes only the window asked for.
    """

    def __init__(self, prefix: bytes, parts: Sequence[Buffer], suffix: bytes) -> None:
        self._prefix, self._suffix = prefix, suffix
        self._parts = [memoryview(part).cast("B") for part in parts]
        self._source_size = sum(part.nbytes for part in self._parts)
        self._encoded_size = 4 * -(-self._source_size // 3)
        self._length = len(prefix) + self._encoded_size + len(suffix)
        self._position = 0

    def __len__(self) -> int:
        return self._length

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._position, 2: self._length}[whence]
        self._position = min(max(base + offset, 0), self._length)
        return self._position

    # A read returns at most this much (fewer bytes than asked is a file's right): botocore hashes
    # the payload in 1 MB reads, and each would otherwise cost three 1 MB buffers at once.
    WINDOW = 64 * 1024

    def read(self, size: int = -1) -> bytes:
        end = self._length if size is None or size < 0 else min(self._position + min(size, self.WINDOW), self._length)
        pieces, position = [], self._position
        encoded_start, encoded_end = len(self._prefix), len(self._prefix) + self._encoded_size
        if position < encoded_start:
            pieces.append(self._prefix[position : min(end, encoded_start)])
            position = min(end, encoded_start)
        if encoded_start <= position < encoded_end and position < end:
            stop = min(end, encoded_end)
            pieces.append(self._encoded(position - encoded_start, stop - encoded_start))
            position = stop
        if position >= encoded_end and position < end:
            pieces.append(self._suffix[position - encoded_end : end - encoded_end])
            position = end
        self._position = end
        return b"".join(pieces)

    def _encoded(self, start: int, stop: int) -> bytes:
        """Characters [start, stop) of the base64 text, from the whole groups that hold them."""
        first_group, last_group = start // 4, -(-stop // 4)
        encoded = base64.b64encode(self._source(first_group * 3, min(last_group * 3, self._source_size)))
        return encoded[start - first_group * 4 : stop - first_group * 4]

    def _source(self, start: int, stop: int) -> bytes:
        pieces, offset = [], 0
        for part in self._parts:
            if offset >= stop:
                break
            if offset + part.nbytes > start:
                pieces.append(part[max(start - offset, 0) : stop - offset])
            offset += part.nbytes
        return b"".join(pieces)
