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
from botocore.exceptions import BotoCoreError, ClientError

from mailfilter.aws import clients
from mailfilter.aws.batch import Backoff

# After botocore's three attempts, five more over at most about 3 s.
MARK_BACKOFF = Backoff(attempts=6, base=0.05, cap=1.0)

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
        """Record a finished step. Called right after SES accepted a send: a marker lost here means
        the retry sends that mail again, so the write is retried well past botocore's own attempts."""
        for attempt in range(MARK_BACKOFF.attempts):
            if attempt:
                MARK_BACKOFF.wait(attempt)
            try:
                self.client.update_item(
                    TableName=self.table_name,
                    Key={"id": {"S": KEY_PREFIX + message_id}},
                    UpdateExpression="ADD steps :step SET expiration = :expiration",
                    ExpressionAttributeValues={
                        ":step": {"SS": [step]},
                        ":expiration": {"N": str(int(time.time()) + self.ttl_seconds)},
                    },
                )
                return
            except (ClientError, BotoCoreError) as error:
                if attempt == MARK_BACKOFF.attempts - 1 or not _transient(error):
                    raise


def _transient(error: ClientError | BotoCoreError) -> bool:
    if isinstance(error, BotoCoreError):
        return True  # timeouts and connection errors
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    code = error.response.get("Error", {}).get("Code", "")
    return status >= 500 or "Throttl" in code or code in ("ProvisionedThroughputExceededException", "RequestLimitExceeded")
