"""From message to verdict: classify, look up the customer side once, decide per recipient.

This is the one path every function and `mailfilter explain` runs. It does
no I/O of its own; the directory it is given does the single lookup.
"""

from __future__ import annotations

from mailfilter.directory import Directory
from mailfilter.message import Message
from mailfilter.model import Action, Classification, Decision, Direction, Verdict
from mailfilter.policy import security
from mailfilter.policy.classify import classify, classify_desk
from mailfilter.policy.config import Policy
from mailfilter.policy.decide import decide, security_block

UNAUTHENTICATED_REROUTE = "unauthenticated-sender"
UNREADABLE_SENDER = "unreadable-sender"


def evaluate(message: Message, directory: Directory, policy: Policy) -> Verdict:
    classification = classify(message, policy)
    if message.direction is Direction.OUTBOUND:
        matches = directory.lookup(classification.cloud, message.recipients)
        decisions = tuple(decide(r, matches[r], classification, policy) for r in message.recipients)
    else:
        decisions = _inbound_decisions(message, directory, policy, classification)
    return Verdict(message.message_id, message.direction, classification, policy.mode, decisions)


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

    decisions = []
    for desk, desk_class in desk_classes.items():
        match = sender_match[desk_class.cloud]
        if rejection is not None:
            decisions.append(security_block(desk, *rejection, match, desk_class, policy))
            continue
        decision = decide(desk, match, desk_class, policy)
        if decision.action is Action.REROUTE and not authenticated:
            reason = (
                "The sender claims to be a CSP customer but the message is not authenticated "
                "(no DMARC pass, and no SPF pass for its From domain), so it is not relayed to a partner."
            )
            decision = security_block(desk, UNAUTHENTICATED_REROUTE, reason, match, desk_class, policy)
        decisions.append(decision)
    return tuple(decisions)
