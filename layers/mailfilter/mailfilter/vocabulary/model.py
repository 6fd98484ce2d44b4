"""The vocabulary every part of the filter shares: clouds, categories, actions, decisions.

A `Decision` is the unit the whole product is about: one recipient, one action,
where the mail goes, the rule that decided it and why. Functions record it,
`mailfilter explain` prints it. The core types are plain dataclasses and tuples
rather than pydantic models because the policy core builds one per recipient
on the mail path; pydantic validates the edges (events, directory rows, policy file).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from mailfilter.directory.view import CustomerMatch


class Cloud(StrEnum):
    """The cloud instances; the rules apply in each separately and directories never mix."""

    COMMERCIAL = "commercial"
    USGOV = "usgov"
    GERMANY = "germany"


class Category(StrEnum):
    SUBSCRIPTION = "subscription"
    SERVICE_INCIDENT = "service-incident"
    OPERATIONAL = "operational"
    PRODUCT = "product"
    GENERAL = "general"


class Action(StrEnum):
    ALLOW = "allow"
    REROUTE = "reroute"
    BLOCK = "block"


class Direction(StrEnum):
    OUTBOUND = "outbound"  # vendor to customer: the customer side is each recipient
    INBOUND = "inbound"  # customer to vendor: the customer side is the sender


class Mode(StrEnum):
    ENFORCE = "enforce"
    AUDIT = "audit"  # decide and record as in enforce, but deliver as allow


class Source(StrEnum):
    """Where a classification came from, strongest first."""

    REQUEST = "request"  # a field of an outbound send request (the vendor's own applications)
    HEADER = "header"  # a header declared by a trusted vendor sender
    RECIPIENT_MAP = "recipient-map"  # inbound: the vendor address the customer wrote to
    SENDER_MAP = "sender-map"  # outbound: the vendor address the mail is sent from
    SUBJECT = "subject"  # a subject pattern of the policy file
    DEFAULT = "default"


class Evidence(NamedTuple):
    """One source that said something about a message: what it said, and which source it was."""

    kind: str  # "category", "product" or "cloud"
    value: str
    source: Source


@dataclass(frozen=True, slots=True)
class Classification:
    """What a message (or, inbound, one vendor recipient) is about, and who said so.

    `category` is the most restrictive category any trusted source gave; `product` the first
    product named, `products` every one (the decision reads the most restrictive for each
    customer); `evidence` every source that matched, including those that did not win.
    """

    category: Category
    category_source: Source
    product: str | None
    product_source: Source
    cloud: Cloud
    cloud_source: Source
    products: tuple[str, ...] = ()
    evidence: tuple[Evidence, ...] = ()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Classification:
        """A classification as `Verdict.as_dict` and the decision records write it."""
        return cls(
            category=Category(data["category"]),
            category_source=Source(data["category_source"]),
            product=data.get("product"),
            product_source=Source(data["product_source"]),
            cloud=Cloud(data["cloud"]),
            cloud_source=Source(data["cloud_source"]),
            products=tuple(data.get("products") or ()),
            evidence=tuple(Evidence(e["kind"], e["value"], Source(e["source"])) for e in data.get("evidence") or ()),
        )


class Decision(NamedTuple):
    """One recipient's outcome: the contract every function records and `explain` prints.

    A NamedTuple rather than a frozen dataclass: it is as immutable, and five
    times cheaper to build, which matters once per recipient on the mail path.
    """

    recipient: str
    action: Action
    effective: Action
    deliver_to: tuple[str, ...]
    rule: str
    seed_rule: int | None
    reason: str
    category: Category
    product: str | None
    customer: str | None = None
    customer_name: str | None = None
    matched_by: str | None = None
    partners: tuple[str, ...] = ()
    # The directory entry as the decision saw it (customer, partners, contacts): recorded so that
    # `mailfilter policy replay` decides again on the same facts. Not part of the printed record.
    match: CustomerMatch | None = None

    def as_dict(self) -> dict[str, Any]:
        values = self._asdict()
        del values["match"]
        return values


@dataclass(frozen=True, slots=True)
class Verdict:
    """Every decision for one message, with the message-level classification."""

    message_id: str
    direction: Direction
    classification: Classification
    mode: Mode
    decisions: tuple[Decision, ...] = field(default_factory=tuple)
    authenticated: bool | None = None  # inbound: the sender's domain vouches for it (policy/security.py); None outbound
    # Outbound: the sending identity (the request's `from`) and the subject as classified, recorded for digests.
    sender: str | None = None
    subject: str | None = None

    def as_dict(self) -> dict[str, Any]:
        c = self.classification
        return {
            "message_id": self.message_id,
            "direction": self.direction.value,
            "cloud": c.cloud.value,
            "cloud_source": c.cloud_source.value,
            "category": c.category.value,
            "category_source": c.category_source.value,
            "product": c.product,
            "product_source": c.product_source.value,
            "products": list(c.products),
            "evidence": [e._asdict() for e in c.evidence],
            "mode": self.mode.value,
            "decisions": [decision.as_dict() for decision in self.decisions],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Verdict:
        """The inverse of `as_dict`, for verdicts stored with quarantined mail."""
        classification = Classification.from_dict(data)
        if not classification.products and classification.product:  # stored before `products` was recorded
            classification = replace(classification, products=(classification.product,))
        decisions = tuple(
            Decision(
                **{
                    **d,
                    "action": Action(d["action"]),
                    "effective": Action(d["effective"]),
                    "category": Category(d["category"]),
                    "deliver_to": tuple(d["deliver_to"]),
                    "partners": tuple(d.get("partners", ())),
                }
            )
            for d in data["decisions"]
        )
        return cls(data["message_id"], Direction(data["direction"]), classification, Mode(data["mode"]), decisions)
