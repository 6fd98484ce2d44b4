"""Each table of the policy file as validated data: the vendor, the maps that classify, the rules, the digests.

`mailfilter.policy.config.Policy` puts them together and checks them against each other.
"""

from __future__ import annotations

import re
import string
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from mailfilter.directory.records import Address, Domain, Product
from mailfilter.vocabulary.addresses import normalise_address
from mailfilter.vocabulary.errors import InvalidAddressError
from mailfilter.vocabulary.model import Action, Category, Cloud, Mode

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


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class Vendor(Section):
    """The vendor's own identities: only mail from these may declare its category in headers."""

    domains: list[Domain] = Field(default_factory=list)
    identities: list[Address] = Field(default_factory=list)


class SenderEntry(Section):
    """Outbound: mail from this vendor address is about this category (and product, cloud)."""

    address: Address
    category: Category
    product: Product | None = None
    cloud: Cloud | None = None


class DeskEntry(Section):
    """Inbound: mail a customer sends to this vendor address is about this category."""

    address: Address
    category: Category
    cloud: Cloud | None = None


class SubjectEntry(Section):
    pattern: Pattern
    category: Category


class ProductEntry(Section):
    pattern: Pattern
    product: Product


class Rule(Section):
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


class SenderDigests(Section):
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


class PartnerDigests(Section):
    """Weekly, to each partner's contacts: what was rerouted to it in the seven days before `weekday`."""

    enabled: bool = True
    weekday: Weekday = Weekday.MONDAY


class Digests(Section):
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
