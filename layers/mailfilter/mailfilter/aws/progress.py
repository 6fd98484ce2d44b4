"""Which sends of a message are done, so a retried message never sends the same mail twice.

powertools idempotency makes a message's processing happen once, but when
processing fails half-way (the partner notice went out, then SES throttled
the allowed copy past its retries) the idempotency record is removed and
SQS redelivers the whole message. This module keeps one small item per
message in the idempotency table (`id = "progress#<message id>"`, expired by
the same TTL attribute) with the steps already completed; the gateway skips
those on the retry. A crash between SES accepting a send and the marker
being written can still repeat that one send: at-least-once for that
instant, which is the honest best without a transactional mail server.
"""

from __future__ import annotations

import time

from botocore.client import BaseClient

from mailfilter.aws import clients

KEY_PREFIX = "progress#"


class SendProgress:
    def __init__(self, table_name: str, client: BaseClient | None = None, *, ttl_seconds: int = 14 * 24 * 3600) -> None:
        self.table_name = table_name
        self._client = client
        self.ttl_seconds = ttl_seconds

    @property
    def client(self) -> BaseClient:
        return self._client or clients.client("dynamodb")

    def completed(self, message_id: str) -> frozenset[str]:
        item = self.client.get_item(TableName=self.table_name, Key={"id": {"S": KEY_PREFIX + message_id}}, ConsistentRead=True).get(
            "Item", {}
        )
        return frozenset(item.get("steps", {}).get("SS", []))

    def mark(self, message_id: str, step: str) -> None:
        self.client.update_item(
            TableName=self.table_name,
            Key={"id": {"S": KEY_PREFIX + message_id}},
            UpdateExpression="ADD steps :step SET expiration = :expiration",
            ExpressionAttributeValues={
                ":step": {"SS": [step]},
                ":expiration": {"N": str(int(time.time()) + self.ttl_seconds)},
            },
        )
