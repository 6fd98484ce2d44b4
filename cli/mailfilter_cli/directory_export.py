"""Reading the whole directory table, for `mailfilter directory export` and `stats` (and import's prune).

Both read it with a parallel Scan (`scan`): operator commands only, never the
mail path. The items' keys and attributes are read with mailfilter.aws.directory_items.
"""

from __future__ import annotations

import queue
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any, TextIO

from botocore.client import BaseClient

from mailfilter.aws import clients
from mailfilter.aws.batch import Item
from mailfilter.aws.directory_items import CUSTOMER, PARTNER, STATS_PROJECTION, has_partners, kind_filter, parse_key, record_of
from mailfilter.directory.load import dump_record
from mailfilter.vocabulary.model import Cloud


def scan(client: BaseClient, table: str, *, segments: int = 4, **arguments: Any) -> Iterator[Item]:
    """Every item of a parallel Scan, streamed through a bounded queue (operator commands only, never the mail path)."""
    pages: queue.Queue[list[Item] | BaseException | None] = queue.Queue(maxsize=segments * 2)

    def read(segment: int) -> None:
        try:
            paginator = client.get_paginator("scan")
            for page in paginator.paginate(TableName=table, Segment=segment, TotalSegments=segments, **arguments):
                pages.put(page["Items"])
            pages.put(None)
        except BaseException as error:  # handed to the reading thread, which re-raises it
            pages.put(error)

    threads = [threading.Thread(target=read, args=(segment,), daemon=True) for segment in range(segments)]
    for thread in threads:
        thread.start()
    finished = 0
    while finished < segments:
        page = pages.get()
        if page is None:
            finished += 1
        elif isinstance(page, BaseException):
            raise page
        else:
            yield from page


def export_directory(table: str, out: TextIO, *, client: BaseClient | None = None, segments: int = 4) -> Counter[str]:
    """Write the directory back as JSON Lines, partners first; return how many records of each kind."""
    client = client or clients.client("dynamodb")
    counts: Counter[str] = Counter()
    for kind in (PARTNER, CUSTOMER):  # two filtered scans, so every partner precedes the customers naming it
        for item in scan(client, table, segments=segments, **kind_filter(kind)):
            out.write(dump_record(record_of(item)) + "\n")
            counts[kind] += 1
    return counts


def directory_stats(table: str, *, client: BaseClient | None = None, segments: int = 4) -> dict[str, Counter[str]]:
    """Per cloud: partners, customers, CSP customers, address and domain entries (one Scan of keys only)."""
    client = client or clients.client("dynamodb")
    stats: dict[str, Counter[str]] = {cloud.value: Counter() for cloud in Cloud}
    for item in scan(client, table, segments=segments, ProjectionExpression=STATS_PROJECTION):
        key = parse_key(item)
        if key is None:
            continue  # not a directory item
        counts = stats[key.cloud.value]
        if key.entry is not None:
            counts[f"{key.entry.kind} entries"] += 1
        elif key.kind == CUSTOMER:
            counts["customers"] += 1
            counts["CSP customers"] += has_partners(item)
        elif key.kind == PARTNER:
            counts["partners"] += 1
    return stats
