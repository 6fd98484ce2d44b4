"""Inbound security gates: evidence about the message itself, checked before and after the table.

Security comes before policy: spam, viruses and DMARC failures are blocked
(kept in quarantine), and only authenticated mail may be rerouted to a partner,
so the filter can never relay a spoofed message in a customer's name.
"""

from __future__ import annotations

from mailfilter.vocabulary.message import Authentication

PASS = "PASS"
FAIL = "FAIL"
ENFORCED_DMARC_POLICIES = frozenset({"reject", "quarantine"})


def rejection(auth: Authentication) -> tuple[str, str] | None:
    """(rule, reason) when the message must be blocked whatever the table says."""
    if auth.virus == FAIL:
        return "virus-detected", "The receiving server found a virus in the message."
    if auth.spam == FAIL:
        return "spam-detected", "The receiving server classified the message as spam."
    if auth.dmarc == FAIL and (auth.dmarc_policy or "").lower() in ENFORCED_DMARC_POLICIES:
        return "dmarc-failed", f"The message fails DMARC and its domain's policy is {auth.dmarc_policy.lower()}."
    return None


def is_authenticated(auth: Authentication) -> bool:
    """The sender's domain vouches for the message.

    DMARC pass proves the From domain directly. Without it, only SPF pass counts, and only
    when the envelope sender is in the From domain: SPF vouches for the envelope's domain.
    A DKIM pass alone proves nothing about the From domain, because the verdict does not say
    which domain signed: an attacker signs with their own domain and forges the envelope.
    """
    if auth.dmarc == PASS:
        return True
    return auth.envelope_aligned and auth.spf == PASS
