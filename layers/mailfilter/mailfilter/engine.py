"""From message to verdict: classify, look up the customer side once, decide per recipient.

This is the one path every function and `mailfilter explain` runs. It does
no I/O of its own; the directory it is given does the single lookup.
"""

from __future__ import annotations

from mailfilter.directory.view import CustomerMatch
from mailfilter.policy import security
from mailfilter.policy.classify import classify, classify_desk
from mailfilter.policy.config import Policy
from mailfilter.policy.decide import decide, security_block
from mailfilter.ports import Directory
from mailfilter.vocabulary.message import Message
from mailfilter.vocabulary.model import Action, Classification, Decision, Direction, Verdict

UNAUTHENTICATED_REROUTE = "unauthenticated-sender"
UNREADABLE_SENDER = "unreadable-sender"
SUBJECT_RECORDED = 200  # characters of an outbound subject kept with its decisions (docs/policy.md, "Digests")


def evaluate(message: Message, directory: Directory, policy: Policy) -> Verdict:
    classification = classify(message, policy)
    if message.direction is Direction.OUTBOUND:
        matches = directory.lookup(classification.cloud, message.recipients)
        decisions = tuple([decide(r, matches[r], classification, policy) for r in message.recipients])
        subject = message.subject[:SUBJECT_RECORDED] or None
        return Verdict(
            message.message_id, message.direction, classification, policy.mode, decisions, sender=message.sender, subject=subject
        )
    decisions = _inbound_decisions(message, directory, policy, classification)
    auth = message.authentication
    authenticated = auth is not None and security.is_authenticated(auth)  # recorded for `mailfilter policy replay`
    return Verdict(message.message_id, message.direction, classification, policy.mode, decisions, authenticated)


def _inbound_decisions(message: Message, directory: Directory, policy: Policy, message_class: Classification) -> tuple[Decision, ...]:
    """Inbound, the customer is the sender and each vendor desk is decided on its own."""
    desk_classes = {desk: classify_desk(message_class, desk, policy) for desk in message.recipients}
    if message.unreadable is not None:
        reason = f"The sender cannot be told from the message ({message.unreadable}), so it is kept rather than delivered or relayed."
        return tuple(security_block(desk, UNREADABLE_SENDER, reason, None, c, policy) for desk, c in desk_classes.items())
    clouds = {c.cloud for c in desk_classes.values()}
    sender_match = {cloud: directory.lookup(cloud, [message.sender])[message.sender] for cloud in clouds}
    auth = message.authentication
    rejection = security.rejection(auth) if auth else None
    authenticated = auth is not None and security.is_authenticated(auth)

    return tuple(
        decide_desk(desk, sender_match[desk_class.cloud], desk_class, policy, rejection, authenticated)
        for desk, desk_class in desk_classes.items()
    )


def decide_desk(
    desk: str,
    match: CustomerMatch | None,
    desk_class: Classification,
    policy: Policy,
    rejection: tuple[str, str] | None,
    authenticated: bool,
) -> Decision:
    """One vendor desk of an inbound message: the security gates around the table (also `mailfilter policy replay`'s)."""
    if rejection is not None:
        return security_block(desk, *rejection, match, desk_class, policy)
    decision = decide(desk, match, desk_class, policy)
    if decision.action is Action.REROUTE and not authenticated:
        reason = (
            "The sender claims to be a CSP customer but the message is not authenticated "
            "(no DMARC pass, and no SPF pass for its From domain), so it is not relayed to a partner."
        )
        # A reroute by a rule on trial stays on trial as the block it becomes: recorded, delivered as allow.
        decision = security_block(desk, UNAUTHENTICATED_REROUTE, reason, match, desk_class, policy, decision.effective is Action.ALLOW)
    return decision
