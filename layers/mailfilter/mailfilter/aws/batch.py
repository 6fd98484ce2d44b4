"""DynamoDB's batch calls, finished: unprocessed keys and items retried with backoff and jitter.

botocore's retry mode already retries throttled and failed *requests*. A batch
call can also succeed while leaving part of its work undone (UnprocessedKeys,
UnprocessedItems), which botocore does not retry; AWS asks callers to resend
that part with exponential backoff, which is what these helpers do.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import Any

from botocore.client import BaseClient

from mailfilter.vocabulary.errors import BatchIncompleteError

MAX_GET_KEYS = 100  # BatchGetItem's limit per request
MAX_WRITE_ITEMS = 25  # BatchWriteItem's limit per request

Item = dict[str, Any]  # an item in DynamoDB's attribute-value form


class Backoff:
    """Capped exponential backoff with full jitter (sleep a random time up to the cap)."""

    def __init__(self, *, attempts: int = 6, base: float = 0.02, cap: float = 1.0, sleep: Callable[[float], None] = time.sleep) -> None:
        self.attempts = attempts
        self.base = base
        self.cap = cap
        self.sleep = sleep

    def wait(self, retry: int) -> None:
        self.sleep(random.uniform(0, min(self.cap, self.base * 2**retry)))


# Short enough for the mail path: six attempts wait at most about 0.6 s in all.
LOOKUP_BACKOFF = Backoff(attempts=6, base=0.01, cap=0.3)
WRITE_BACKOFF = Backoff(attempts=8, base=0.05, cap=2.0)


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def batch_get(
    client: BaseClient,
    table: str,
    keys: Sequence[Item],
    *,
    projection: str | None = None,
    names: dict[str, str] | None = None,
    backoff: Backoff = LOOKUP_BACKOFF,
) -> list[Item]:
    """Every item found for `keys`: one request per 100 keys, sent in parallel, plus retries of unprocessed keys."""
    # Equal chunks (150 keys: 75 + 75, not 100 + 50), so parallel requests finish together.
    size = -(-len(keys) // -(-len(keys) // MAX_GET_KEYS)) if keys else MAX_GET_KEYS
    requests = []
    for chunk in chunks(keys, size):
        request: dict[str, Any] = {"Keys": list(chunk)}
        if projection:
            request["ProjectionExpression"] = projection
        if names:
            request["ExpressionAttributeNames"] = names
        requests.append(request)
    if len(requests) == 1:
        return _get_all(client, table, requests[0], backoff)
    # More than 100 keys: the chunks go out together, so 150 keys cost about what 100 do.
    found: list[Item] = []
    for items in _pool().map(lambda request: _get_all(client, table, request, backoff), requests):
        found.extend(items)
    return found


def _get_all(client: BaseClient, table: str, request: dict[str, Any], backoff: Backoff) -> list[Item]:
    found: list[Item] = []
    pending: dict[str, Any] | None = {table: request}
    for attempt in range(backoff.attempts):
        if attempt:
            backoff.wait(attempt)
        response = client.batch_get_item(RequestItems=pending)
        found.extend(response.get("Responses", {}).get(table, []))
        pending = response.get("UnprocessedKeys") or None
        if not pending:
            return found
    raise BatchIncompleteError("BatchGetItem", len(pending[table]["Keys"]), backoff.attempts)


@cache
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=4, thread_name_prefix="batch-get")


def batch_write(client: BaseClient, table: str, requests: Sequence[Item], *, backoff: Backoff = WRITE_BACKOFF) -> int:
    """Apply PutRequest/DeleteRequest entries, 25 per request; return how many requests were sent."""
    sent = 0
    for chunk in chunks(requests, MAX_WRITE_ITEMS):
        pending: dict[str, Any] | None = {table: list(chunk)}
        for attempt in range(backoff.attempts):
            if attempt:
                backoff.wait(attempt)
            response = client.batch_write_item(RequestItems=pending)
            sent += 1
            pending = response.get("UnprocessedItems") or None
            if not pending:
                break
        if pending:
            raise BatchIncompleteError("BatchWriteItem", len(pending[table]), backoff.attempts)
    return sent
