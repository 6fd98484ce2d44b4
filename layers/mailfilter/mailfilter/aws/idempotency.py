"""Once per key, on DynamoDB: powertools idempotency, shaped as the `Once` the outbound core expects.

The key is the send request's effective message id, not the SQS record, so
both a redelivered record and a second request with the same `message_id`
return the first result without doing anything. A failure removes the
powertools record (so SQS's retry runs again); what the failed attempt had
already sent is skipped by `mailfilter.aws.progress`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.client import BaseClient

from mailfilter.aws import clients


def _mark_replayed(response: Any, record: DataRecord) -> Any:
    """A replayed result says so, so the handler can log and count duplicates."""
    return {**response, "replayed": True} if isinstance(response, dict) else response


class DynamoOnce:
    """`once(key, work)`: runs `work` the first time `key` is seen within `expires_after_seconds`."""

    def __init__(self, table_name: str, *, expires_after_seconds: int, client: BaseClient | None = None) -> None:
        self.config = IdempotencyConfig(expires_after_seconds=expires_after_seconds, response_hook=_mark_replayed)
        self.persistence = DynamoDBPersistenceLayer(table_name=table_name, boto3_client=client or clients.client("dynamodb"))

        @idempotent_function(data_keyword_argument="key", persistence_store=self.persistence, config=self.config)
        def send_request(key: str, work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
            return work()

        self._run = send_request

    def register(self, context: LambdaContext | None) -> None:
        """Lets powertools expire an in-progress record when the function times out."""
        if context is not None:
            self.config.register_lambda_context(context)

    def __call__(self, key: str, work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        return self._run(key=key, work=work)
