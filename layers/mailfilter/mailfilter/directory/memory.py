"""A directory held in memory, read from a JSON Lines file: for `explain --directory` and tests."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from mailfilter.directory.load import read_directory
from mailfilter.directory.matching import ADDRESS, DOMAIN, LookupKey, keys_for, resolve
from mailfilter.directory.records import CustomerRecord, PartnerRecord
from mailfilter.directory.view import CustomerMatch, CustomerView, customer_view
from mailfilter.model import Cloud


class InMemoryDirectory:
    """Implements the `Directory` protocol over validated records."""

    def __init__(self, records: Iterable[PartnerRecord | CustomerRecord]) -> None:
        records = list(records)
        partners = {(r.cloud, r.partner_id): r for r in records if isinstance(r, PartnerRecord)}
        self._entries: dict[Cloud, dict[LookupKey, CustomerView]] = {cloud: {} for cloud in Cloud}
        for record in records:
            if not isinstance(record, CustomerRecord):
                continue
            in_cloud = {pid: p for (cloud, pid), p in partners.items() if cloud == record.cloud}
            view = customer_view(record, in_cloud)
            entries = self._entries[record.cloud]
            entries.update((LookupKey(ADDRESS, a), view) for a in record.addresses)
            entries.update((LookupKey(DOMAIN, d), view) for d in record.domains)

    @classmethod
    def from_file(cls, path: str | Path) -> InMemoryDirectory:
        return cls(read_directory(path))

    def lookup(self, cloud: Cloud, addresses: Sequence[str]) -> dict[str, CustomerMatch | None]:
        entries = self._entries[cloud]
        found = {key: entries[key] for key in keys_for(addresses) if key in entries}
        return {address: resolve(address, found) for address in addresses}
