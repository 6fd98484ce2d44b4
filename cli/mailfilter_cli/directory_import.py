"""`mailfilter directory import`: bring the directory table in line with a directory file.

Import reads the file twice and never holds its records: the first pass
validates every line (keeping only the keys the cross-line checks need, and
the partners, whose names and contacts are copied onto each customer's
items); the second streams customers in chunks to worker threads. Each chunk
costs one BatchGetItem for the customers' stored digests and root items, so
an unchanged customer is skipped (a re-import writes nothing) and a changed
one loses the address and domain items it no longer lists. With prune, a
Scan then deletes what the file no longer defines.

The table's keys and items are defined in mailfilter.aws.directory_items;
this module only decides which to write and which to delete.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.client import BaseClient

from mailfilter.aws import clients
from mailfilter.aws.batch import Item, batch_get, batch_write
from mailfilter.aws.directory_items import (
    CUSTOMER,
    KEY_PROJECTION,
    ROOT_STATE_NAMES,
    ROOT_STATE_PROJECTION,
    customer_items,
    customer_key,
    entry_key,
    key_of,
    parse_key,
    partition_of,
    partner_item,
    partner_key,
    same_digest,
    stored_entries,
)
from mailfilter.directory.load import DirectoryValidator, KeyIndex
from mailfilter.directory.matching import LookupKey
from mailfilter.directory.records import CustomerRecord, PartnerRecord
from mailfilter.vocabulary.model import Cloud
from mailfilter_cli.directory_export import scan
from mailfilter_cli.directory_file import customers_of, validate_file
from mailfilter_cli.directory_keys import DiskKeyIndex

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

    def _stored(self, keys: list[Item]) -> dict[str, Item]:
        """The stored digest (and, for customers, entries) of each root item, by partition key."""
        items = batch_get(self.client, self.table, keys, projection=ROOT_STATE_PROJECTION, names=ROOT_STATE_NAMES)
        return {partition_of(item): item for item in items}

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
            if same_digest(item, stored.get(partition_of(item))):
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
            old = stored.get(partition_of(root))
            if same_digest(root, old):
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
        return [key for key in stored_entries(old) if self.validator.claimant(record.cloud, key.kind, key.value) is None]

    def prune(self, segments: int) -> ImportReport:
        """Delete every item the file no longer defines (run after the writes, so nothing new is caught)."""
        report = ImportReport()
        doomed: list[Item] = []
        for item in scan(self.client, self.table, segments=segments, ProjectionExpression=KEY_PROJECTION, ConsistentRead=True):
            key = parse_key(item)
            if key is None:
                continue  # not a directory item: never ours to delete
            if key.entry is not None:
                keep, what = self.validator.claimant(key.cloud, key.entry.kind, key.entry.value) is not None, "entries"
            elif key.kind == CUSTOMER:
                keep, what = self.validator.defines_tenant(key.cloud, key.id), "customers"
            else:
                keep, what = self.validator.defines_partner(key.cloud, key.id), "partners"
            if not keep:
                report.deleted[what] += 1
                doomed.append({"DeleteRequest": {"Key": key_of(item)}})
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

        for batch in _batches(customers_of(path), CHUNK):
            if len(pending) >= workers * 2:  # bounded: memory stays flat however long the file
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                settle(done)
            pending.add(pool.submit(importer.customers, batch))
        settle(set(pending))
    if prune:
        _merge(report, importer.prune(segments=workers))
    return report
