"""The policy file: classification maps and the decision table, as validated data.

Operators change behaviour by editing TOML, not code. The shipped default
(`default.toml` beside this module) states the seed's four rules line by line.
"""

from __future__ import annotations

import re
import string
import tomllib
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from mailfilter.addresses import domain_of
from mailfilter.directory.records import Address, Domain, Product
from mailfilter.model import Action, Category, Cloud, Mode
from mailfilter.validation import describe

DEFAULT_POLICY_PATH = Path(__file__).with_name("default.toml")
REASON_FIELDS = frozenset({"customer", "partners", "product", "category"})


class Segment(StrEnum):
    """Where the customer side stands with the vendor, in the message's cloud."""

    UNKNOWN = "unknown"  # not in the directory for this cloud
    NO_CSP = "no-csp"  # a customer without a CSP partner
    CSP_ONLY = "csp-only"  # a CSP customer with no direct relationship
    CSP_AND_DIRECT = "csp-and-direct"  # a CSP customer that also buys from the vendor directly


class ProductCondition(StrEnum):
    ANY = "any"
    HELD_THROUGH_CSP = "held-through-csp"  # a partner owns the product for this customer
    DIRECT_NOT_CSP = "direct-not-csp"  # bought directly, and no partner owns it


def _pattern(value: str) -> str:
    try:
        re.compile(value)
    except re.error as error:
        raise ValueError(f"invalid regular expression {value!r}: {error}") from None
    return value


def _reason(value: str) -> str:
    names = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
    unknown = names - REASON_FIELDS
    if unknown:
        raise ValueError(f"unknown placeholder(s) {sorted(unknown)}; use {sorted(REASON_FIELDS)}")
    return value


Pattern = Annotated[str, AfterValidator(_pattern)]
Reason = Annotated[str, AfterValidator(_reason)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class Vendor(_Section):
    """The vendor's own identities: only mail from these may declare its category in headers."""

    domains: list[Domain] = Field(default_factory=list)
    identities: list[Address] = Field(default_factory=list)


class SenderEntry(_Section):
    """Outbound: mail from this vendor address is about this category (and product, cloud)."""

    address: Address
    category: Category
    product: Product | None = None
    cloud: Cloud | None = None


class DeskEntry(_Section):
    """Inbound: mail a customer sends to this vendor address is about this category."""

    address: Address
    category: Category
    cloud: Cloud | None = None


class SubjectEntry(_Section):
    pattern: Pattern
    category: Category


class ProductEntry(_Section):
    pattern: Pattern
    product: Product


class Rule(_Section):
    """One line of the decision table; the first rule that matches a recipient decides."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    seed_rule: int | None = Field(default=None, ge=1, le=4)
    segments: list[Segment] = Field(min_length=1)
    categories: list[Category] = Field(min_length=1)
    product: ProductCondition = ProductCondition.ANY
    action: Action
    reason: Reason


# When sources disagree about what a message is about, the first of these that any source
# gave wins: a declaration, an address or a pattern can make mail more restricted, never less.
MOST_RESTRICTIVE_FIRST = (Category.SUBSCRIPTION, Category.PRODUCT, Category.GENERAL, Category.OPERATIONAL, Category.SERVICE_INCIDENT)


class Policy(_Section):
    mode: Mode = Mode.ENFORCE
    default_cloud: Cloud = Cloud.COMMERCIAL
    category_order: list[Category] = Field(default_factory=lambda: list(MOST_RESTRICTIVE_FIRST))
    vendor: Vendor = Field(default_factory=Vendor)
    senders: list[SenderEntry] = Field(default_factory=list)
    desks: list[DeskEntry] = Field(default_factory=list)
    subjects: list[SubjectEntry] = Field(default_factory=list)
    products: list[ProductEntry] = Field(default_factory=list)
    rules: list[Rule] = Field(min_length=1)

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


class PolicyFileError(ValueError):
    """A policy file that cannot be read or does not validate."""


def load_policy(path: str | Path | None = None) -> Policy:
    """Read and validate a policy file; the shipped default when `path` is None."""
    path = Path(path) if path is not None else DEFAULT_POLICY_PATH
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise PolicyFileError(f"{path}: cannot read the policy file: {error}") from None
    except tomllib.TOMLDecodeError as error:
        raise PolicyFileError(f"{path}: not valid TOML: {error}") from None
    try:
        return Policy.model_validate(data)
    except ValidationError as error:
        raise PolicyFileError(f"{path}: invalid policy:\n  {describe(error, root='(policy)', separator=chr(10) + '  ')}") from None
