"""Reading a directory file (JSON Lines) for `mailfilter directory import`, which reads it twice.

First `validate_file` checks every line, keeping only what the cross-line
checks need and the partners; then `customers_of` streams the customers, so a
file of any size is imported in flat memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from pydantic import TypeAdapter

from mailfilter.directory.load import DirectoryFileError, DirectoryIssue, DirectoryValidator, KeyIndex, numbered_lines
from mailfilter.directory.records import CustomerRecord, DirectoryRecord, PartnerRecord
from mailfilter.vocabulary.model import Cloud

_RECORD: TypeAdapter[PartnerRecord | CustomerRecord] = TypeAdapter(DirectoryRecord)


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


def customers_of(path: str | Path) -> Iterator[CustomerRecord]:
    """Second pass: the file's customers, one at a time (the file passed `validate_file`)."""
    for _number, text in numbered_lines(path):
        record = _RECORD.validate_json(text)
        if isinstance(record, CustomerRecord):
            yield record
