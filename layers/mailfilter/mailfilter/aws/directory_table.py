"""The customer directory in one DynamoDB table, read on the mail path (design: docs/directory-table.md).

`DynamoDirectory.lookup` turns every recipient of a message into lookup keys
(exact address, untagged address, domain, parent domains), reads them with one
BatchGetItem per 100 keys, and resolves them with the same `resolve` the
in-memory directory uses. Each lookup item carries the whole denormalised
`CustomerView`, partners included, so nothing else is read.

The table's keys and items, and how directory records are written as items
(`mailfilter directory import`), are defined in mailfilter.aws.directory_items.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from botocore.client import BaseClient
from botocore.exceptions import BotoCoreError, ClientError

from mailfilter.aws import clients
from mailfilter.aws.batch import LOOKUP_BACKOFF, Backoff, batch_get
from mailfilter.aws.directory_items import ENTRY_NAMES, ENTRY_PROJECTION, entry_key, lookup_key_of, view_of
from mailfilter.directory.matching import LookupKey, keys_for, resolve
from mailfilter.directory.view import CustomerMatch, CustomerView
from mailfilter.vocabulary.errors import BatchIncompleteError, DirectoryUnavailable
from mailfilter.vocabulary.model import Cloud

_ABSENT = object()


class _TtlCache:
    """A bounded least-recently-used cache whose entries also expire; None (not found) is cached too."""

    def __init__(self, ttl: float, size: int, clock: Callable[[], float]) -> None:
        self.ttl = ttl
        self.size = size
        self.clock = clock
        self._entries: OrderedDict[Any, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Any) -> Any:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return _ABSENT
            if entry[0] <= self.clock():
                del self._entries[key]
                return _ABSENT
            self._entries.move_to_end(key)
            return entry[1]

    def put_many(self, values: Iterable[tuple[Any, Any]]) -> None:
        if self.ttl <= 0 or self.size <= 0:
            return
        expires = self.clock() + self.ttl
        with self._lock:
            for key, value in values:
                self._entries[key] = (expires, value)
                self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


class DynamoDirectory:
    """The `Directory` protocol over the directory table: one BatchGetItem per message (up to 100 keys).

    Found and not-found keys are cached for `cache_ttl_seconds` (0 disables
    the cache), so a warm function resolving a known recipient again makes no
    request. The cache is bounded to `cache_size` keys, least recently used first out.
    """

    def __init__(
        self,
        table_name: str,
        *,
        client: BaseClient | None = None,
        cache_ttl_seconds: float = 60.0,
        cache_size: int = 10_000,
        backoff: Backoff = LOOKUP_BACKOFF,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not table_name:
            raise ValueError("DynamoDirectory needs a table name (DIRECTORY_TABLE)")
        self.table_name = table_name
        self._client = client
        self._backoff = backoff
        self._cache = _TtlCache(cache_ttl_seconds, cache_size, clock)

    @property
    def client(self) -> BaseClient:
        return self._client or clients.client("dynamodb")

    def lookup(self, cloud: Cloud, addresses: Sequence[str]) -> dict[str, CustomerMatch | None]:
        found: dict[LookupKey, CustomerView] = {}
        missing: list[LookupKey] = []
        for key in keys_for(addresses):
            cached = self._cache.get((cloud, key))
            if cached is _ABSENT:
                missing.append(key)
            elif cached is not None:
                found[key] = cached
        if missing:
            fetched = self._fetch(cloud, missing)
            found.update(fetched)
            self._cache.put_many(((cloud, key), fetched.get(key)) for key in missing)
        return {address: resolve(address, found) for address in addresses}

    def _fetch(self, cloud: Cloud, keys: Sequence[LookupKey]) -> dict[LookupKey, CustomerView]:
        try:
            keys_ = [entry_key(cloud, key) for key in keys]
            items = batch_get(self.client, self.table_name, keys_, projection=ENTRY_PROJECTION, names=ENTRY_NAMES, backoff=self._backoff)
        except BatchIncompleteError as error:
            raise DirectoryUnavailable(f"directory table {self.table_name}: {error}") from error
        except (ClientError, BotoCoreError) as error:
            raise DirectoryUnavailable(f"directory table {self.table_name}: {error}") from error
        return {lookup_key_of(item): view_of(item, cloud) for item in items}
