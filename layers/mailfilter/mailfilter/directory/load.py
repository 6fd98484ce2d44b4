"""Reading and validating a directory file, reporting every problem at once.

Validation streams: each line is checked as it is read, and only the keys
needed for the cross-record checks (who claimed which partner id, tenant,
domain and address, in which cloud) are kept, never the records themselves.

A customer domain that is a public suffix (`co.uk`, `github.io`) is refused here,
not in `records.py`: the records are also built on the mail path, and the Lambda
layer does not ship the Public Suffix List. No Lambda function imports this module
(it serves `mailfilter directory import` and `InMemoryDirectory.from_file`).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Iterator, MutableMapping, MutableSequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import idna
from pydantic import TypeAdapter, ValidationError

from mailfilter.directory.records import CustomerRecord, DirectoryRecord, PartnerRecord
from mailfilter.vocabulary.addresses import normalise_domain
from mailfilter.vocabulary.errors import InvalidAddressError
from mailfilter.vocabulary.model import Cloud

if TYPE_CHECKING:
    from publicsuffixlist import PublicSuffixList

_RECORD = TypeAdapter(DirectoryRecord)
_KINDS = ("partner", "customer")


@dataclass(frozen=True, slots=True)
class DirectoryIssue:
    file: str
    line: int
    field: str
    problem: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.field}: {self.problem}"


class DirectoryFileError(ValueError):
    """A directory file with one or more invalid lines; `issues` lists them all."""

    def __init__(self, issues: list[DirectoryIssue]) -> None:
        self.issues = issues
        noun = "problem" if len(issues) == 1 else "problems"
        super().__init__(f"{len(issues)} {noun} in the directory:\n" + "\n".join(f"  {issue}" for issue in issues))


def _field_name(location: tuple[int | str, ...]) -> str:
    parts = [str(part) for part in location]
    if parts and parts[0] in _KINDS:  # the discriminator pydantic puts first
        parts = parts[1:]
    return ".".join(parts) or "(record)"


@functools.cache
def _public_suffix_list() -> PublicSuffixList:
    """The Public Suffix List copy bundled in the `publicsuffixlist` package, parsed once.

    Imported here rather than at the top so that importing this module stays cheap and needs
    nothing beyond the layer. `PublicSuffixList()` with no source reads the package's own
    `public_suffix_list.dat` from disk; nothing is downloaded (a newer list comes with a newer
    release of the package). Punycode domains work: it adds the punycode form of every IDN rule.
    """
    from publicsuffixlist import PublicSuffixList  # noqa: PLC0415 - lazy on purpose, see above

    # Both sections of the list, ICANN (co.uk, com.au) and private (github.io, s3.amazonaws.com,
    # blogspot.com): a private-section suffix is one whose operator hands out subdomains to
    # unrelated parties, so for matching mail it is as shared as co.uk, and claiming github.io
    # would make every *.github.io sender that customer. An organisation that runs such a suffix
    # lists its mail domains below it, or its mailboxes in `addresses`, instead.
    return PublicSuffixList(only_icann=False)


def is_public_suffix(domain: str) -> bool:
    """Whether a normalised domain (punycode, lower case, no trailing dot) is itself a public suffix."""
    return _public_suffix_list().is_public(domain)


def _shown(domain: str) -> str:
    """A punycode domain with its Unicode form alongside, for error messages."""
    if "xn--" not in domain:
        return domain
    try:
        return f"{domain} ({idna.decode(domain)})"
    except idna.IDNAError:
        return domain


def _raw_domains(text: str) -> list[Any]:
    """The `domains` list exactly as the line wrote it (before normalisation removed duplicates)."""
    try:
        domains = json.loads(text).get("domains", [])
    except (ValueError, AttributeError):
        return []
    return domains if isinstance(domains, list) else []


class KeyIndex:
    """Where a validator keeps the keys it checks across lines: plain dicts and a list.

    A large import can pass an index that keeps them on disk instead
    (`mailfilter_cli.directory_keys`), so its memory does not grow with the file.
    """

    def mapping(self, name: str) -> MutableMapping[Any, Any]:
        return {}

    def sequence(self, name: str) -> MutableSequence[Any]:
        return []


class DirectoryValidator:
    """Checks one line at a time, then the references that span lines in `finish`."""

    def __init__(self, source: str, *, index: KeyIndex | None = None) -> None:
        """`index` holds the cross-line keys; the default keeps them in memory (see `KeyIndex`)."""
        self.source = source
        self.issues: list[DirectoryIssue] = []
        index = index or KeyIndex()
        self._partners: MutableMapping[tuple[Cloud, str], int] = index.mapping("partners")
        self._tenants: MutableMapping[tuple[Cloud, str], int] = index.mapping("tenants")
        self._claims: MutableMapping[tuple[Cloud, str, str], tuple[str, int]] = index.mapping("claims")
        self._references: MutableSequence[tuple[int, Cloud, str, int]] = index.sequence("references")

    def _issue(self, line: int, field: str, problem: str) -> None:
        self.issues.append(DirectoryIssue(self.source, line, field, problem))

    def check(self, line: int, text: str) -> PartnerRecord | CustomerRecord | None:
        """Validate one line; return its record, or None (and note why) if it is invalid."""
        try:
            record = _RECORD.validate_json(text)
        except ValidationError as error:
            for detail in error.errors(include_url=False):
                if detail["type"] == "json_invalid":
                    self._issue(line, "(line)", f"not valid JSON: {detail['ctx'].get('error', detail['msg'])}")
                else:
                    self._issue(line, _field_name(detail["loc"]), detail["msg"].removeprefix("Value error, "))
            return None
        if isinstance(record, PartnerRecord):
            self._check_unique(self._partners, (record.cloud, record.partner_id), line, "partner_id", "partner")
        else:
            self._check_customer(line, record, text)
        return record

    def _check_unique(self, seen: dict, key: tuple, line: int, field: str, what: str) -> None:
        if key in seen:
            self._issue(line, field, f"{what} {key[1]!r} is already defined in cloud {key[0]} on line {seen[key]}")
        else:
            seen[key] = line

    def _check_customer(self, line: int, record: CustomerRecord, text: str) -> None:
        self._check_unique(self._tenants, (record.cloud, record.tenant_id), line, "tenant_id", "tenant")
        suffixes = {domain for domain in record.domains if is_public_suffix(domain)}
        if suffixes:
            self._refuse_public_suffixes(line, text, suffixes)
        # Addresses are whole mailboxes (a public suffix cannot take mail by itself), so only domains are checked.
        for field, values in (("domains", record.domains), ("addresses", record.addresses)):
            for value in values:
                if value in suffixes:
                    continue  # refused above; claiming it too would only add "already claimed" noise
                key = (record.cloud, field, value)
                if key in self._claims:
                    tenant, other = self._claims[key]
                    self._issue(line, field, f"{value} is already claimed by tenant {tenant!r} on line {other} in cloud {record.cloud}")
                else:
                    self._claims[key] = (record.tenant_id, line)
        for index, link in enumerate(record.csp):
            self._references.append((line, record.cloud, link.partner_id, index))

    def _refuse_public_suffixes(self, line: int, text: str, suffixes: set[str]) -> None:
        """Report each public suffix at its position in the line as written.

        The record's `domains` has lost its duplicates, so its indexes can differ from the file's;
        this rare path reads the line's list again to name the position the operator wrote.
        """
        reported: set[str] = set()
        for index, raw in enumerate(_raw_domains(text)):
            try:
                domain = normalise_domain(raw) if isinstance(raw, str) else None
            except InvalidAddressError:
                continue
            if domain in suffixes:
                self._issue(line, f"domains.{index}", self._public_suffix_problem(domain))
                reported.add(domain)
        for domain in sorted(suffixes - reported):  # not found in the raw list: never expected, never silent
            self._issue(line, "domains", self._public_suffix_problem(domain))

    @staticmethod
    def _public_suffix_problem(domain: str) -> str:
        return f"{_shown(domain)} is a public suffix: it would match every domain registered under it; list the customer's own domains"

    # What the file defines, for an import that must know which stored items it no longer holds.
    def defines_partner(self, cloud: Cloud, partner_id: str) -> bool:
        return (cloud, partner_id) in self._partners

    def defines_tenant(self, cloud: Cloud, tenant_id: str) -> bool:
        return (cloud, tenant_id) in self._tenants

    def claimant(self, cloud: Cloud, kind: str, value: str) -> str | None:
        """The tenant whose record lists this address or domain (`kind` "address" or "domain"), if any."""
        claim = self._claims.get((cloud, f"{kind}es" if kind == "address" else f"{kind}s", value))
        return claim[0] if claim else None

    def finish(self) -> list[DirectoryIssue]:
        """Report references to partners the file never defines; return every issue, in line order."""
        for line, cloud, partner_id, index in self._references:
            if (cloud, partner_id) not in self._partners:
                self._issue(line, f"csp.{index}.partner_id", f"unknown partner {partner_id!r} in cloud {cloud}")
        self.issues.sort(key=lambda issue: issue.line)
        return self.issues


def numbered_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """The non-blank lines of a file with their 1-based numbers, streamed."""
    with open(path, encoding="utf-8") as handle:
        for number, text in enumerate(handle, start=1):
            if text.strip():
                yield number, text


def validate_lines(source: str, lines: Iterable[tuple[int, str]]) -> Iterator[PartnerRecord | CustomerRecord]:
    """Yield the valid records; raise `DirectoryFileError` at the end if any line was invalid."""
    validator = DirectoryValidator(source)
    for number, text in lines:
        record = validator.check(number, text)
        if record is not None:
            yield record
    issues = validator.finish()
    if issues:
        raise DirectoryFileError(issues)


def read_directory(path: str | Path) -> list[PartnerRecord | CustomerRecord]:
    """Read and validate a whole directory file into memory."""
    try:
        return list(validate_lines(str(path), numbered_lines(path)))
    except UnicodeDecodeError as error:
        raise DirectoryFileError([DirectoryIssue(str(path), 0, "(file)", f"not UTF-8: {error}")]) from None


def dump_record(record: PartnerRecord | CustomerRecord) -> str:
    """One record as a directory line (the inverse of reading it)."""
    return json.dumps(record.model_dump(mode="json", exclude_defaults=False), ensure_ascii=False)
