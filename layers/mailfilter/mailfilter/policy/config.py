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
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

from mailfilter.directory.records import Address, Domain, Product
from mailfilter.vocabulary.addresses import domain_of, normalise_address
from mailfilter.vocabulary.errors import InvalidAddressError, PolicyFileError
from mailfilter.vocabulary.model import Action, Category, Cloud, Mode
from mailfilter.vocabulary.validation import describe

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
    # "audit": the rule is on trial. Its decisions are recorded and counted, but delivered as allow
    # (as the global audit mode does for every rule); "enforce" rules follow the policy's mode.
    mode: Mode = Mode.ENFORCE


class Weekday(StrEnum):
    MONDAY = "monday"
    TUESDAY = "tuesday"
    WEDNESDAY = "wednesday"
    THURSDAY = "thursday"
    FRIDAY = "friday"
    SATURDAY = "saturday"
    SUNDAY = "sunday"


def _one_or_more(value: object) -> object:
    return [value] if isinstance(value, str) else value


Mailboxes = Annotated[list[Address], BeforeValidator(_one_or_more), Field(min_length=1)]


class SenderDigests(_Section):
    """Daily, to each sending identity: its blocked and rerouted mail of the day before (`mailfilter.digests`)."""

    enabled: bool = True
    identities: Literal["all"] | tuple[str, ...] = "all"  # "all": every identity that had mail blocked or rerouted
    send_to: dict[Address, Mailboxes] = Field(default_factory=dict)  # identity -> the team mailbox(es) that read its digest

    @field_validator("identities", mode="plain")
    @classmethod
    def _all_or_addresses(cls, value: object) -> Literal["all"] | tuple[str, ...]:
        if value == "all":
            return "all"
        if not isinstance(value, list) or not value:
            raise ValueError(f'expected "all" or a non-empty list of sending identities, not {value!r}')
        found = []
        for index, item in enumerate(value):
            try:
                found.append(normalise_address(item if isinstance(item, str) else ""))
            except InvalidAddressError as error:
                raise ValueError(f"entry {index}: {error}") from None
        return tuple(dict.fromkeys(found))


class PartnerDigests(_Section):
    """Weekly, to each partner's contacts: what was rerouted to it in the seven days before `weekday`."""

    enabled: bool = True
    weekday: Weekday = Weekday.MONDAY


class Digests(_Section):
    """Digests of what the filter did, by mail (docs/policy.md, "Digests"); nothing is sent unless `enabled`."""

    enabled: bool = False
    release_contact: Address | None = None  # whom application teams ask for a release
    mask_recipients: bool = True  # a***@contoso.com in the sender digests
    subjects: bool = True  # show the recorded subjects (outbound mail only records one)
    senders: SenderDigests = Field(default_factory=SenderDigests)
    partners: PartnerDigests = Field(default_factory=PartnerDigests)

    @model_validator(mode="after")
    def _complete(self) -> Digests:
        if self.enabled and self.senders.enabled and self.release_contact is None:
            raise ValueError(
                "release_contact is required when enabled = true and senders.enabled = true: "
                "the daily digest tells application teams whom to ask for a release"
            )
        if self.senders.identities != "all":
            unlisted = sorted(set(self.senders.send_to) - set(self.senders.identities))
            if unlisted:
                raise ValueError(f"senders.send_to names {unlisted}, which senders.identities does not list: they get no digest")
        return self


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
