"""A directory held in memory, read from a JSON Lines file: for `explain --directory` and tests."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from mailfilter.directory.load import read_directory
from mailfilter.directory.matching import ADDRESS, DOMAIN, LookupKey, resolve
from mailfilter.directory.records import CustomerRecord, PartnerRecord
from mailfilter.directory.view import CustomerMatch, CustomerView, customer_view
from mailfilter.vocabulary.model import Cloud


class InMemoryDirectory:
    """Implements the `Directory` protocol over validated records."""

    def __init__(self, records: Iterable[PartnerRecord | CustomerRecord]) -> None:
        records = list(records)
        partners: dict[Cloud, dict[str, PartnerRecord]] = {cloud: {} for cloud in Cloud}
        for record in records:
            if isinstance(record, PartnerRecord):
                partners[record.cloud][record.partner_id] = record
        self._entries: dict[Cloud, dict[LookupKey, CustomerView]] = {cloud: {} for cloud in Cloud}
        for record in records:
            if not isinstance(record, CustomerRecord):
                continue
            view = customer_view(record, partners[record.cloud])
            entries = self._entries[record.cloud]
            entries.update((LookupKey(ADDRESS, a), view) for a in record.addresses)
            entries.update((LookupKey(DOMAIN, d), view) for d in record.domains)

    @classmethod
    def from_file(cls, path: str | Path) -> InMemoryDirectory:
        return cls(read_directory(path))

    def lookup(self, cloud: Cloud, addresses: Sequence[str]) -> dict[str, CustomerMatch | None]:
        entries = self._entries[cloud]
        return {address: resolve(address, entries) for address in addresses}
