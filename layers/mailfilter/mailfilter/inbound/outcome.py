"""What the inbound filter did with one receipt event, and SES's disposition contract."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from mailfilter.vocabulary.model import Verdict


class Disposition(StrEnum):
    """What the receipt rule set does next (SES's Lambda action contract)."""

    CONTINUE = "CONTINUE"  # the rule's later actions run: the vendor desks receive the message
    # This rule's later actions are skipped, so its desks get nothing from SES; later rules,
    # the other desk groups of the same message, still run. STOP_RULE would stop them
    # too, and a message to billing@ and sales@ would never reach the sales rule.
    STOP_RULE = "STOP_RULE"


@dataclass(frozen=True, slots=True)
class Delivery:
    partner_contacts: tuple[str, ...]
    desks: tuple[str, ...]
    ses_message_id: str


@dataclass(frozen=True, slots=True)
class InboundOutcome:
    message_id: str
    disposition: Disposition
    verdict: Verdict | None = None
    deliveries: tuple[Delivery, ...] = ()
    quarantined: str | None = None  # the quarantine item's id
    deferred: str | None = None  # why the message could not be handled (it waits for release)
    held: tuple[str, ...] = ()  # desks whose mail waits in quarantine

    def response(self) -> dict[str, str]:
        return {"disposition": self.disposition.value}
