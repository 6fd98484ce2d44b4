"""Putting a send request on the gateway's queue (OutboundQueue), as the vendor's applications do."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from botocore.client import BaseClient
from botocore.exceptions import BotoCoreError, ClientError

from mailfilter.aws import clients
from mailfilter.vocabulary.errors import QueueUnavailable


@dataclass(frozen=True, slots=True)
class RequestQueue:
    queue_url: str
    sqs: BaseClient | None = None

    @property
    def client(self) -> BaseClient:
        return self.sqs or clients.client("sqs")

    def send(self, request: Mapping[str, Any]) -> str:
        """Queue one send request as its JSON body; returns SQS's message id."""
        try:
            response = self.client.send_message(QueueUrl=self.queue_url, MessageBody=json.dumps(request, ensure_ascii=False))
        except (ClientError, BotoCoreError) as error:
            raise QueueUnavailable(f"{self.queue_url}: {error}") from error
        return response["MessageId"]
