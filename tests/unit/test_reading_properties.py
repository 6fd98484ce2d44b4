"""Properties of the one reading: encodings, spellings and copies cannot change what the rules see or who sees what.

Each property runs the gateway's own reading (`read_send_request`) and the engine on the
sample directory (events/directory.jsonl), so it holds for what the gateway would send.
"""

from __future__ import annotations

import base64
from email import message_from_bytes
from email import policy as email_policy
from email.header import Header
from email.utils import getaddresses

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailfilter.delivery.copies import allowed_copy, partner_notice, reroute_groups
from mailfilter.directory.memory import InMemoryDirectory
from mailfilter.engine import evaluate
from mailfilter.outbound.request import read_send_request
from mailfilter.policy.config import load_policy
from mailfilter.vocabulary.addresses import normalise_address
from mailfilter.vocabulary.model import Action, Cloud
from mailfilter_testkit.paths import ROOT

DIRECTORY = InMemoryDirectory.from_file(ROOT / "events" / "directory.jsonl")
POLICY = load_policy(None)
FILTER_FROM = "mail-filter@vendor.example"

# Words the default policy's patterns read, mixed with words they do not.
WORDS = ["Your", "invoice", "subscription", "renewal", "Azure", "Microsoft 365", "Dynamics 365", "outage", "maintenance",
         "action required", "announcing", "offer", "webinar", "hello", "Café", "für", "日本語", "naïve", "security advisory"]  # fmt: skip
SUBJECTS = st.lists(st.sampled_from(WORDS), min_size=1, max_size=6).map(" ".join)
CHARSETS = st.sampled_from(["utf-8", "iso-8859-1", "windows-1252", "utf-16", "iso-2022-jp", "koi8-r"])


def raw_request(subject_header: str, to: list[str], extra: str = "") -> dict:
    raw = (
        f"From: Billing <news@vendor.example>\r\nTo: {', '.join(to)}\r\n{extra}Subject: {subject_header}\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello.\r\n"
    ).encode()
    return {"message_id": "prop", "from": "news@vendor.example", "to": to, "raw": base64.b64encode(raw).decode()}


def encoded(subject: str, charset: str, encoding: str) -> str | None:
    """The subject as RFC 2047 encoded words in `charset`, B or Q; None when the charset cannot hold it."""
    try:
        subject.encode(charset)
    except UnicodeEncodeError:
        return None
    header = Header(subject, charset, header_name="Subject")
    text = header.encode(linesep="\r\n")
    if encoding == "q" and "?b?" in text.lower():
        text = Header(subject, "utf-8").encode(linesep="\r\n")  # the email package chooses B or Q per charset; utf-8 varies
    return text


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(subject=SUBJECTS, charset=CHARSETS, encoding=st.sampled_from(["b", "q"]))
def test_a_subject_and_each_of_its_rfc2047_encodings_classify_the_same(subject, charset, encoding):
    words = encoded(subject, charset, encoding)
    if words is None:
        return
    plain = read_send_request(raw_request(subject, ["it@tailspintoys.com"]), POLICY).message
    hidden = read_send_request(raw_request(words, ["it@tailspintoys.com"]), POLICY).message
    assert plain.subject == hidden.subject
    plain_verdict, hidden_verdict = evaluate(plain, DIRECTORY, POLICY), evaluate(hidden, DIRECTORY, POLICY)
    assert hidden_verdict.classification == plain_verdict.classification
    assert hidden_verdict.decisions == plain_verdict.decisions


FULL_STOPS = st.sampled_from([".", "\u3002", "\uff0e", "\uff61"])
INVISIBLES = st.sampled_from(["", "\u200b", "\u00ad", "\u2060", "\ufeff"])


@st.composite
def spellings(draw: st.DrawFn, address: str) -> str:
    """The same address written as a sender might: case, full-width letters, other full stops, invisibles, a trailing dot."""
    local, _, domain = address.partition("@")
    local = "".join(ch.upper() if draw(st.booleans()) else ch for ch in local)
    labels = []
    for label in domain.split("."):
        chars = []
        for ch in label:
            form = draw(st.sampled_from(["plain", "upper", "wide"]))
            chars.append(
                ch.upper() if form == "upper" else chr(ord(ch) + 0xFEE0) if form == "wide" and ch.isascii() and ch.isalnum() else ch
            )
            chars.append(draw(INVISIBLES))
        labels.append("".join(chars))
    spelled = labels[0]
    for label in labels[1:]:
        spelled += draw(FULL_STOPS) + label
    if draw(st.booleans()):
        spelled += draw(FULL_STOPS) + draw(INVISIBLES)
    return f"{local}@{spelled}"


CUSTOMER_ADDRESSES = [
    "cfo@tailspintoys.com",
    "it@contoso.com",
    "ops@eu.litwareinc.com",
    "info@bäckerei-münchen.example",
    "cto@woodgrovebank.com",
]


@settings(max_examples=300, deadline=None)
@given(data=st.data(), address=st.sampled_from(CUSTOMER_ADDRESSES))
def test_an_address_and_its_unicode_equivalent_spellings_resolve_to_the_same_customer(data, address):
    spelled = data.draw(spellings(address))
    canonical = normalise_address(address)
    assert normalise_address(spelled) == canonical
    matches = DIRECTORY.lookup(Cloud.COMMERCIAL, [canonical])
    assert matches[canonical] is not None
    request = {"message_id": "prop", "from": "billing@vendor.example", "to": [spelled], "subject": "Your invoice", "text": "Hi."}
    (decision,) = evaluate(read_send_request(request, POLICY).message, DIRECTORY, POLICY).decisions
    assert (decision.recipient, decision.customer) == (canonical, matches[canonical].customer.tenant_id)


RECIPIENTS = ["cfo@tailspintoys.com", "it@tailspintoys.com", "it@contoso.com", "cto@woodgrovebank.com", "ops@litwareinc.com",
              "info@bäckerei-münchen.example", "someone@unlisted.example"]  # fmt: skip


def addresses_in(raw: bytes) -> set[str]:
    """Every address any top-level header of a message names."""
    parsed = message_from_bytes(raw, policy=email_policy.compat32)
    found = set()
    for _name, value in parsed.items():
        for _, address in getaddresses([str(value)]):
            if "@" in address:
                found.add(normalise_address(address))
    return found


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    to=st.lists(st.sampled_from(RECIPIENTS), min_size=1, max_size=4, unique=True),
    cc=st.lists(st.sampled_from(RECIPIENTS), max_size=3, unique=True),
    resent=st.lists(st.sampled_from(RECIPIENTS), max_size=3, unique=True),
    subject=st.sampled_from(["Your invoice", "Announcing Azure news", "Hello", "Planned maintenance"]),
)
def test_no_notice_or_copy_names_an_address_its_recipient_may_not_see(to, cc, resent, subject):
    extra = (f"Cc: {', '.join(cc)}\r\n" if cc else "") + (f"Resent-To: {', '.join(resent)}\r\n" if resent else "")
    request = raw_request(subject, to, extra) | {"cc": [a for a in cc if a not in to]}
    reading = read_send_request(request, POLICY)
    verdict = evaluate(reading.message, DIRECTORY, POLICY)
    header_addresses = {normalise_address(a) for a in to + cc + resent}
    vendor = {"news@vendor.example"}

    allowed = {d.recipient for d in verdict.decisions if d.effective is Action.ALLOW}
    if allowed:
        copy = bytes(allowed_copy(reading.original, reading.request, allowed))
        assert (addresses_in(copy) & header_addresses) <= allowed
    for group in reroute_groups(verdict.decisions):
        notice = bytes(partner_notice(reading.original, reading.request, verdict, group, FILTER_FROM))
        parsed = message_from_bytes(notice, policy=email_policy.default)
        (attachment,) = list(parsed.iter_attachments())
        shown = addresses_in(attachment.get_content().as_bytes())
        assert shown - vendor <= set(group.recipients)
        assert set(group.recipients) <= {normalise_address(a) for a in to + cc}
        assert addresses_in(notice) - vendor - {FILTER_FROM} <= set(group.deliver_to)
