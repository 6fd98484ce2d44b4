"""The policy file: classification maps and the decision table, as validated data.

Operators change behaviour by editing TOML, not code. The shipped default
(`default.toml` beside this module) states the seed's four rules line by line.
"""

from __future__ import annotations

import re
import tomllib
from functools import cached_property
from pathlib import Path

from pydantic import Field, ValidationError, model_validator

from mailfilter.policy.sections import (
    DeskEntry,
    Digests,
    ProductCondition,
    ProductEntry,
    Rule,
    Section,
    Segment,
    SenderEntry,
    SubjectEntry,
    Vendor,
)
from mailfilter.vocabulary.addresses import domain_of
from mailfilter.vocabulary.errors import PolicyFileError
from mailfilter.vocabulary.model import Category, Cloud, Mode
from mailfilter.vocabulary.validation import describe

DEFAULT_POLICY_PATH = Path(__file__).with_name("default.toml")


# When sources disagree about what a message is about, the first of these that any source
# gave wins: a declaration, an address or a pattern can make mail more restricted, never less.
MOST_RESTRICTIVE_FIRST = (Category.SUBSCRIPTION, Category.PRODUCT, Category.GENERAL, Category.OPERATIONAL, Category.SERVICE_INCIDENT)


class Policy(Section):
    mode: Mode = Mode.ENFORCE
    default_cloud: Cloud = Cloud.COMMERCIAL
    category_order: list[Category] = Field(default_factory=lambda: list(MOST_RESTRICTIVE_FIRST))
    vendor: Vendor = Field(default_factory=Vendor)
    senders: list[SenderEntry] = Field(default_factory=list)
    desks: list[DeskEntry] = Field(default_factory=list)
    subjects: list[SubjectEntry] = Field(default_factory=list)
    products: list[ProductEntry] = Field(default_factory=list)
    rules: list[Rule] = Field(min_length=1)
    digests: Digests = Field(default_factory=Digests)

    @model_validator(mode="after")
    def _complete_table(self) -> Policy:
        ids = [rule.id for rule in self.rules]
        duplicates = sorted({rule_id for rule_id in ids if ids.count(rule_id) > 1})
        if duplicates:
            raise ValueError(f"rule ids must be unique: {duplicates}")
        for segment in Segment:
            for category in Category:
                covering = [r for r in self.rules if segment in r.segments and category in r.categories]
                if not any(rule.product is ProductCondition.ANY for rule in covering):
                    raise ValueError(
                        f'no rule with product = "any" decides {category.value} mail for {segment.value} customers; '
                        "every cell of the table needs one so that no recipient is left undecided"
                    )
        if sorted(self.category_order) != sorted(Category):
            raise ValueError(f"category_order must name every category once: {[c.value for c in Category]}")
        for entries, what in ((self.senders, "senders"), (self.desks, "desks")):
            addresses = [entry.address for entry in entries]
            if len(set(addresses)) != len(addresses):
                raise ValueError(f"{what}: an address is listed twice")
        return self

    @model_validator(mode="after")
    def _digests_name_vendor_identities(self) -> Policy:
        senders = self.digests.senders
        named = [] if senders.identities == "all" else list(senders.identities)
        strangers = sorted({address for address in [*named, *senders.send_to] if not self.is_vendor_identity(address)})
        if strangers:
            raise ValueError(
                f"digests.senders names {strangers}, which are not vendor identities ([vendor] domains, identities): "
                "the gateway never sends as them, so they would never get a digest"
            )
        return self

    @cached_property
    def sender_map(self) -> dict[str, SenderEntry]:
        return {entry.address: entry for entry in self.senders}

    @cached_property
    def desk_map(self) -> dict[str, DeskEntry]:
        return {entry.address: entry for entry in self.desks}

    @cached_property
    def rules_by_cell(self) -> dict[tuple[Segment, Category], list[Rule]]:
        """The rules that can decide each (segment, category) cell, in file order."""
        return {
            (segment, category): [r for r in self.rules if segment in r.segments and category in r.categories]
            for segment in Segment
            for category in Category
        }

    @cached_property
    def category_rank(self) -> dict[Category, int]:
        """0 for the most restrictive category."""
        return {category: rank for rank, category in enumerate(self.category_order)}

    @cached_property
    def compiled_subjects(self) -> list[tuple[re.Pattern[str], Category]]:
        return [(re.compile(entry.pattern), entry.category) for entry in self.subjects]

    @cached_property
    def compiled_products(self) -> list[tuple[re.Pattern[str], str]]:
        return [(re.compile(entry.pattern), entry.product) for entry in self.products]

    def is_vendor_identity(self, address: str) -> bool:
        return address in self.vendor.identities or domain_of(address) in self.vendor.domains


def load_policy(path: str | Path | None = None) -> Policy:
    """Read and validate a policy file; the shipped default when `path` is None."""
    path = Path(path) if path is not None else DEFAULT_POLICY_PATH
    try:
        content = path.read_bytes()
    except OSError as error:
        raise PolicyFileError(f"{path}: cannot read the policy file: {error}") from None
    return parse_policy(content, str(path))


def parse_policy(content: bytes | str, source: str) -> Policy:
    """Validate a policy's TOML text; every problem is reported under `source` (a file, an AppConfig version).

    The one validation of a policy: the layer's file, `mailfilter policy check`, the functions
    reading AppConfig and AppConfig's validator all go through here.
    """
    try:
        text = content.decode("utf-8") if isinstance(content, bytes) else content
    except UnicodeDecodeError as error:
        raise PolicyFileError(f"{source}: cannot read the policy file: {error}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise PolicyFileError(f"{source}: not valid TOML: {error}") from None
    try:
        return Policy.model_validate(data)
    except ValidationError as error:
        raise PolicyFileError(f"{source}: invalid policy:\n  {describe(error, root='(policy)', separator=chr(10) + '  ')}") from None
