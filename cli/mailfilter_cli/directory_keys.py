"""A validator key index on disk, so validating and importing a large directory keeps memory flat.

`DirectoryValidator` remembers a few keys per record (tenant ids, claimed
domains and addresses, partner references) to report duplicates and unknown
partners across lines. In dicts that is about 0.6 KB per customer; here it is
a temporary SQLite file whose page cache is bounded, so a file of a million
customers validates in the same memory as one of ten thousand.
"""

from __future__ import annotations

import json
import sqlite3
import tempfile
import threading
from collections.abc import Iterator, MutableMapping, MutableSequence
from typing import Any

from mailfilter.directory.load import KeyIndex

_SEPARATOR = "\x1f"  # never part of a cloud, id, domain or address


def _encode(key: tuple[Any, ...]) -> str:
    return _SEPARATOR.join(str(part) for part in key)


def _decode(value: str) -> Any:
    loaded = json.loads(value)
    return tuple(loaded) if isinstance(loaded, list) else loaded


class _DiskMapping(MutableMapping[tuple[Any, ...], Any]):
    def __init__(self, db: sqlite3.Connection, table: str, lock: threading.Lock) -> None:
        self._db = db
        self._table = table
        self._lock = lock
        db.execute(f"CREATE TABLE {table} (k TEXT PRIMARY KEY, v TEXT NOT NULL) WITHOUT ROWID")

    def __getitem__(self, key: tuple[Any, ...]) -> Any:
        with self._lock:  # the importer's threads read claims concurrently
            row = self._db.execute(f"SELECT v FROM {self._table} WHERE k = ?", (_encode(key),)).fetchone()
        if row is None:
            raise KeyError(key)
        return _decode(row[0])

    def __contains__(self, key: object) -> bool:
        encoded = _encode(key) if isinstance(key, tuple) else str(key)
        with self._lock:
            return self._db.execute(f"SELECT 1 FROM {self._table} WHERE k = ?", (encoded,)).fetchone() is not None

    def __setitem__(self, key: tuple[Any, ...], value: Any) -> None:
        self._db.execute(f"INSERT OR REPLACE INTO {self._table} (k, v) VALUES (?, ?)", (_encode(key), json.dumps(value)))

    def __delitem__(self, key: tuple[Any, ...]) -> None:
        if self._db.execute(f"DELETE FROM {self._table} WHERE k = ?", (_encode(key),)).rowcount == 0:
            raise KeyError(key)

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        for (key,) in self._db.execute(f"SELECT k FROM {self._table}"):
            yield tuple(key.split(_SEPARATOR))

    def __len__(self) -> int:
        return self._db.execute(f"SELECT COUNT(*) FROM {self._table}").fetchone()[0]


class _DiskSequence(MutableSequence[Any]):
    """Append and iterate in order: all the validator does with its references."""

    def __init__(self, db: sqlite3.Connection, table: str) -> None:
        self._db = db
        self._table = table
        db.execute(f"CREATE TABLE {table} (i INTEGER PRIMARY KEY, v TEXT NOT NULL)")

    def insert(self, index: int, value: Any) -> None:
        if index < len(self):
            raise NotImplementedError("a disk-backed sequence only appends")
        self._db.execute(f"INSERT INTO {self._table} (v) VALUES (?)", (json.dumps(value),))

    def __iter__(self) -> Iterator[Any]:
        for (value,) in self._db.execute(f"SELECT v FROM {self._table} ORDER BY i"):
            yield _decode(value)

    def __getitem__(self, index: Any) -> Any:
        raise NotImplementedError("a disk-backed sequence is read by iterating")

    def __setitem__(self, index: Any, value: Any) -> None:
        raise NotImplementedError("a disk-backed sequence only appends")

    def __delitem__(self, index: Any) -> None:
        raise NotImplementedError("a disk-backed sequence only appends")

    def __len__(self) -> int:
        return self._db.execute(f"SELECT COUNT(*) FROM {self._table}").fetchone()[0]


class DiskKeyIndex(KeyIndex):
    """Keys in a temporary SQLite database, deleted when the index is closed or collected.

    One connection: the validator writes it from one thread; afterwards the
    importer's worker threads only read it (through `claimant`), one at a time.
    """

    def __init__(self, cache_mib: int = 4) -> None:
        self._file = tempfile.NamedTemporaryFile(prefix="mailfilter-keys-", suffix=".sqlite")  # noqa: SIM115 - lives as long as the index
        self._db = sqlite3.connect(self._file.name, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        self._db.execute("PRAGMA journal_mode = OFF")  # a scratch file: no crash recovery needed
        self._db.execute("PRAGMA synchronous = OFF")
        self._db.execute(f"PRAGMA cache_size = -{cache_mib * 1024}")  # bounded page cache, in KiB
        self._db.execute("BEGIN")  # one transaction for the whole validation: no commit per row

    def mapping(self, name: str) -> MutableMapping[Any, Any]:
        return _DiskMapping(self._db, f"keys_{name}", self._lock)  # prefixed: "references" is an SQL keyword

    def sequence(self, name: str) -> MutableSequence[Any]:
        return _DiskSequence(self._db, f"keys_{name}")

    def close(self) -> None:
        self._db.close()
        self._file.close()

    def __enter__(self) -> DiskKeyIndex:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
