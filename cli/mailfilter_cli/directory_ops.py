"""Loading, exporting and counting the directory table, for `mailfilter directory`.

Import reads the file twice and never holds its records: the first pass
validates every line (keeping only the keys the cross-line checks need, and
the partners, whose names and contacts are copied onto each customer's
items); the second streams customers in chunks to worker threads. Each chunk
costs one BatchGetItem for the customers' stored digests and root items, so
an unchanged customer is skipped (a re-import writes nothing) and a changed
one loses the address and domain items it no longer lists.
"""

from __future__ import annotations

import queue
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from botocore.client import BaseClient
from pydantic import TypeAdapter

from mailfilter.aws import clients
from mailfilter.aws.batch import Item, batch_get, batch_write
from mailfilter.aws.directory_table import (
    CUSTOMER,
    ENTRY,
    PARTNER,
    customer_items,
    customer_key,
    entry_key,
    entry_of,
    partner_item,
    partner_key,
    record_of,
)
from mailfilter.directory.load import DirectoryFileError, DirectoryIssue, DirectoryValidator, KeyIndex, dump_record, numbered_lines
from mailfilter.directory.matching import ADDRESS, DOMAIN, LookupKey
from mailfilter.directory.records import CustomerRecord, DirectoryRecord, PartnerRecord
from mailfilter.vocabulary.model import Cloud
from mailfilter_cli.directory_keys import DiskKeyIndex

_RECORD: TypeAdapter[PartnerRecord | CustomerRecord] = TypeAdapter(DirectoryRecord)
CHUNK = 100  # customers per BatchGetItem of their stored roots


@dataclass
class ImportReport:
    partners: int = 0
    customers: int = 0
    changed: Counter[str] = field(default_factory=Counter)  # "partners", "customers" written
    unchanged: Counter[str] = field(default_factory=Counter)
    deleted: Counter[str] = field(default_factory=Counter)  # "entries" (stale), "customers", "partners" (pruned)
    requests: Counter[str] = field(default_factory=Counter)  # "BatchGetItem", "BatchWriteItem", "Scan" pages
    dry_run: bool = False


def validate_file(
    path: str | Path, index: KeyIndex | None = None, *, source: str | None = None
) -> tuple[DirectoryValidator, dict[tuple[Cloud, str], PartnerRecord], int]:
    """First pass: every line checked; returns the validator (its keys), the partners and the customer count.

    Problems name `source` (default: the path), e.g. "<stdin>" for a copy of standard input.
    """
    source = source or str(path)
    validator = DirectoryValidator(source, index=index)
    partners: dict[tuple[Cloud, str], PartnerRecord] = {}
    customers = 0
    try:
        for number, text in numbered_lines(path):
            record = validator.check(number, text)
            if isinstance(record, PartnerRecord):
                partners.setdefault((record.cloud, record.partner_id), record)
            elif record is not None:
                customers += 1
    except UnicodeDecodeError as error:
        raise DirectoryFileError([DirectoryIssue(source, 0, "(file)", f"not UTF-8: {error}")]) from None
    issues = validator.finish()
    if issues:
        raise DirectoryFileError(issues)
    return validator, partners, customers


def _customers(path: str | Path) -> Iterator[CustomerRecord]:
    for _number, text in numbered_lines(path):
        record = _RECORD.validate_json(text)
        if isinstance(record, CustomerRecord):
            yield record


def _batches(records: Iterable[Any], size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for record in records:
        batch.append(record)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


class _Importer:
    def __init__(
        self,
        client: BaseClient,
        table: str,
        validator: DirectoryValidator,
        partners: dict[tuple[Cloud, str], PartnerRecord],
        dry_run: bool,
    ) -> None:
        self.client = client
        self.table = table
        self.validator = validator
        self.dry_run = dry_run
        self.partners_by_cloud: dict[Cloud, dict[str, PartnerRecord]] = {cloud: {} for cloud in Cloud}
        for (cloud, partner_id), record in partners.items():
            self.partners_by_cloud[cloud][partner_id] = record

    def _stored(self, keys: list[Item]) -> dict[str, dict[str, Any]]:
        """The stored digest (and, for customers, entries) of each root item, by partition key."""
        names = {"#pk": "pk", "#digest": "digest", "#domains": "domains", "#addresses": "addresses"}
        items = batch_get(self.client, self.table, keys, projection="#pk, #digest, #domains, #addresses", names=names)
        return {item["pk"]["S"]: item for item in items}

    def _write(self, requests: list[Item], report: ImportReport) -> None:
        if requests and not self.dry_run:
            report.requests["BatchWriteItem"] += batch_write(self.client, self.table, requests)

    def partners(self, records: list[PartnerRecord]) -> ImportReport:
        report = ImportReport()
        stored = self._stored([partner_key(r.cloud, r.partner_id) for r in records])
        report.requests["BatchGetItem"] += 1
        requests = []
        for record in records:
            item = partner_item(record)
            old = stored.get(item["pk"]["S"])
            if old is not None and old.get("digest") == item["digest"]:
                report.unchanged["partners"] += 1
            else:
                report.changed["partners"] += 1
                requests.append({"PutRequest": {"Item": item}})
        self._write(requests, report)
        return report

    def customers(self, records: list[CustomerRecord]) -> ImportReport:
        report = ImportReport()
        stored = self._stored([customer_key(r.cloud, r.tenant_id) for r in records])
        report.requests["BatchGetItem"] += 1
        requests = []
        for record in records:
            items = customer_items(record, self.partners_by_cloud[record.cloud])
            root = items[0]
            old = stored.get(root["pk"]["S"])
            if old is not None and old.get("digest") == root["digest"]:
                report.unchanged["customers"] += 1
                continue
            report.changed["customers"] += 1
            requests.extend({"PutRequest": {"Item": item}} for item in items)
            for key in self._stale_entries(record, old):
                report.deleted["entries"] += 1
                requests.append({"DeleteRequest": {"Key": entry_key(record.cloud, key)}})
        self._write(requests, report)
        return report

    def _stale_entries(self, record: CustomerRecord, old: Item | None) -> list[LookupKey]:
        """Entries the stored customer had and no customer of the file lists any more.

        An entry another customer of the file now lists is left alone: that
        customer's own (possibly concurrent) write replaces it.
        """
        if old is None:
            return []
        had = [LookupKey(ADDRESS, v["S"]) for v in old.get("addresses", {}).get("L", [])]
        had += [LookupKey(DOMAIN, v["S"]) for v in old.get("domains", {}).get("L", [])]
        return [key for key in had if self.validator.claimant(record.cloud, key.kind, key.value) is None]

    def prune(self, segments: int) -> ImportReport:
        """Delete every item the file no longer defines (run after the writes, so nothing new is caught)."""
        report = ImportReport()
        doomed: list[Item] = []
        for item in scan(self.client, self.table, segments=segments, ProjectionExpression="pk, sk", ConsistentRead=True):
            pk, sk = item["pk"]["S"], item["sk"]["S"]
            if sk not in (ENTRY, CUSTOMER, PARTNER):
                continue  # not a directory item: never ours to delete
            cloud_name, _, rest = pk.partition("#")
            cloud = Cloud(cloud_name)
            if sk == ENTRY:
                _, key = entry_of(pk)
                keep, what = self.validator.claimant(cloud, key.kind, key.value) is not None, "entries"
            elif sk == CUSTOMER:
                keep, what = self.validator.defines_tenant(cloud, rest.removeprefix(f"{CUSTOMER}#")), "customers"
            else:
                keep, what = self.validator.defines_partner(cloud, rest.removeprefix(f"{PARTNER}#")), "partners"
            if not keep:
                report.deleted[what] += 1
                doomed.append({"DeleteRequest": {"Key": {"pk": item["pk"], "sk": item["sk"]}}})
            if len(doomed) >= 1000:
                self._write(doomed, report)
                doomed = []
        self._write(doomed, report)
        return report


def _merge(total: ImportReport, part: ImportReport) -> None:
    for name in ("changed", "unchanged", "deleted", "requests"):
        getattr(total, name).update(getattr(part, name))


def import_directory(
    path: str | Path,
    table: str,
    *,
    client: BaseClient | None = None,
    prune: bool = False,
    dry_run: bool = False,
    workers: int = 8,
    on_start: Callable[[int], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
    source: str | None = None,
) -> ImportReport:
    """Validate the whole file (raising `DirectoryFileError` with every problem), then bring the table in line with it.

    `on_start(customers)` is called once validation passed; `on_progress(n)`
    each time `n` more customers are done. With `dry_run`, the table is read
    (to count what would change) but never written. Problems name `source`
    (default: the path). The file is read twice, so it must be a real file.
    """
    with DiskKeyIndex() as index:  # the file's keys on disk: memory stays flat however many customers
        return _import(path, table, index, client, prune, dry_run, workers, on_start, on_progress, source)


def _import(
    path: str | Path,
    table: str,
    index: KeyIndex,
    client: BaseClient | None,
    prune: bool,
    dry_run: bool,
    workers: int,
    on_start: Callable[[int], None] | None,
    on_progress: Callable[[int], None] | None,
    source: str | None = None,
) -> ImportReport:
    validator, partners, customers = validate_file(path, index, source=source)
    client = client or clients.client("dynamodb")
    report = ImportReport(partners=len(partners), customers=customers, dry_run=dry_run)
    if on_start:
        on_start(customers)
    importer = _Importer(client, table, validator, partners, dry_run)
    for batch in _batches(partners.values(), CHUNK):
        _merge(report, importer.partners(batch))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="import") as pool:
        pending: set[Future[ImportReport]] = set()

        def settle(done: set[Future[ImportReport]]) -> None:
            for future in done:
                part = future.result()  # re-raises a worker's error here
                _merge(report, part)
                if on_progress:
                    on_progress(part.changed["customers"] + part.unchanged["customers"])

        for batch in _batches(_customers(path), CHUNK):
            if len(pending) >= workers * 2:  # bounded: memory stays flat however long the file
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                settle(done)
            pending.add(pool.submit(importer.customers, batch))
        settle(set(pending))
    if prune:
        _merge(report, importer.prune(segments=workers))
    return report


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
    for sk in (PARTNER, CUSTOMER):  # two filtered scans, so every partner precedes the customers naming it
        for item in scan(
            client,
            table,
            segments=segments,
            FilterExpression="sk = :sk",
            ExpressionAttributeValues={":sk": {"S": sk}},
        ):
            out.write(dump_record(record_of(item)) + "\n")
            counts[sk] += 1
    return counts


def directory_stats(table: str, *, client: BaseClient | None = None, segments: int = 4) -> dict[str, Counter[str]]:
    """Per cloud: partners, customers, CSP customers, address and domain entries (one Scan of keys only)."""
    client = client or clients.client("dynamodb")
    stats: dict[str, Counter[str]] = {cloud.value: Counter() for cloud in Cloud}
    for item in scan(client, table, segments=segments, ProjectionExpression="pk, sk, csp"):
        pk, sk = item["pk"]["S"], item["sk"]["S"]
        cloud = pk.partition("#")[0]
        if sk == ENTRY:
            stats[cloud][f"{entry_of(pk)[1].kind} entries"] += 1
        elif sk == CUSTOMER:
            stats[cloud]["customers"] += 1
            stats[cloud]["CSP customers"] += bool(item.get("csp", {}).get("L"))
        elif sk == PARTNER:
            stats[cloud]["partners"] += 1
    return stats
