"""The evasion corpus: every way we could think of to get mail past the CSP rules, as data.

Each attempt names the rule it attacks, says in one line why it might work, gives the input
(an outbound send request or SQS body, an inbound message as SES received it, or an SES
"Email Sent" event for the audit) and what must happen: the exact SES envelopes sent, text
that may not appear in a sent message, what is rejected, quarantined and recorded.
tests/integration/test_evasion.py runs each through the real Lambda handlers and also checks, for every
message SES sent, that no header line was split, that no hidden-recipient header survived,
and that no reader sees the address of a recipient it was not meant to see.

Sample directory (events/directory.jsonl): Tailspin Toys buys only through Fabrikam (every
product); Contoso buys Azure and Microsoft 365 through Fabrikam and Dynamics 365 directly
(ceo@gmail.example is Contoso's too); Woodgrove Bank is direct only; Litware Inc has Fabrikam
for Azure and Northwind for Microsoft 365; Bäckerei München's partner Lamna has no contact.

An attempt with `evades` set still gets through today: the test is a strict xfail whose
reason says what SES did, so it fails loudly the day the hole is closed.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mailfilter_cli.sam_template import function_spec
from mailfilter_testkit.paths import EVENTS

# ---------------------------------------------------------------------------------------- who is who

FABRIKAM = "csp-desk@fabrikam.example"
NORTHWIND = ("licensing@northwind.example", "ops@northwind.example")
TAILSPIN = "it@tailspintoys.com"  # CSP only (Fabrikam): subscription and general mail rerouted, product mail blocked
CONTOSO = "ceo@contoso.com"  # CSP and direct: general mail allowed, so a subscription that reads as general evades
CONTOSO_GMAIL = "ceo@gmail.example"  # listed as a Contoso address
WOODGROVE = "cto@woodgrovebank.com"  # direct only: everything allowed
LITWARE = "it@litwareinc.com"  # Azure through Fabrikam, Microsoft 365 through Northwind
MUNCHEN = "info@xn--bckerei-mnchen-5hb60b.example"  # Bäckerei München: its partner has no contact, reroutes are kept
EVIL = "evil@evil.example"  # planted by injection attempts: it may reach no envelope and no address header
VENDOR = "notices@vendor.example"  # a vendor identity the sender map does not know: subject and declarations decide
BILLING_DESK, SUPPORT_DESK, SALES_DESK = "billing@vendor.example", "support@vendor.example", "sales@vendor.example"
GATEWAY_ROLE = function_spec("OutboundAuditFunction").environment["FILTER_CALLER_IDENTITIES"].split(",")[0]

# ---------------------------------------------------------------------------------------- the shapes


@dataclass(frozen=True)
class Send:
    """One message SES must have sent: exactly this envelope; `shows` picks it out, `hides` may not appear in it."""

    to: frozenset[str]
    shows: tuple[str, ...] = ()
    hides: tuple[str, ...] = ()


@dataclass(frozen=True)
class Inbound:
    """A message customers sent to the vendor's desks: the headers SES reports, the raw message stored in S3."""

    headers: tuple[tuple[str, str], ...]
    desks: tuple[str, ...] = (BILLING_DESK,)
    verdict: str = "pass"  # a key of load_run.VERDICTS
    overrides: Mapping[str, str] = field(default_factory=dict)  # spam, virus, spf, dkim, dmarc
    source: str = "bounce@mail.example"  # the envelope sender
    raw: bytes | None = None  # the stored message when it says more than `headers` can (bare CR, ...)
    body: str = "Please send me the invoice for last month.\r\n"


@dataclass(frozen=True)
class Attempt:
    id: str
    attacks: str  # the rule under attack: "seed rule 1", "seed rule 2", "inbound relay", "audit", "privacy", "header injection"
    description: str  # why it might work
    request: dict[str, Any] | None = None  # outbound: a send request (`raw` as bytes)
    body: str | None = None  # outbound: the SQS message body verbatim; MESSAGE_ID is replaced by the attempt's id
    inbound: Inbound | None = None
    sent_event: dict[str, Any] | None = None  # the audit: an SES "Email Sent" event
    sends: tuple[Send, ...] = ()  # every message SES sent, exactly
    rejected: bool = False  # outbound: refused as a request, recorded `rejected`, nothing sent
    quarantined: frozenset[str] = frozenset()  # recipients (desks inbound) kept in quarantine
    rules: Mapping[str, str] = field(default_factory=dict)  # recipient, desk or destination -> recorded rule
    disposition: str | None = None  # inbound: what the receipt rule is told
    planted: str | None = None  # an address that may reach no envelope and no address header
    evades: str | None = None  # a finding: it still gets through (strict xfail)

    @property
    def kind(self) -> str:
        if self.inbound is not None:
            return "inbound"
        if self.sent_event is not None:
            return "audit"
        return "outbound"


# ---------------------------------------------------------------------------------------- helpers


def to(*envelope: str, shows: tuple[str, ...] = (), hides: tuple[str, ...] = ()) -> Send:
    return Send(frozenset(envelope), shows, hides)


def request(*recipients: str, subject: str = "Your invoice", **fields: Any) -> dict[str, Any]:
    return {"from": VENDOR, "to": list(recipients), "subject": subject, "text": "Hello.\n", **fields}


def raw_request(*recipients: str, raw: bytes, **fields: Any) -> dict[str, Any]:
    return {"from": VENDOR, "to": list(recipients), "raw": raw, **fields}


def eml(*headers: str, sender: str | None = VENDOR, body: str = "Hello.\r\n") -> bytes:
    lines = ([f"From: {sender}"] if sender else []) + list(headers)
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


def b_word(text: str, charset: str = "utf-8") -> str:
    """`text` as one RFC 2047 encoded word, base64."""
    return f"=?{charset}?b?{base64.b64encode(text.encode(charset)).decode()}?="


def mail(sender: str, *extra: tuple[str, str], subject: str = "Question about our invoice") -> tuple[tuple[str, str], ...]:
    """The headers of an inbound message from `sender` (a From header value; None leaves it out)."""
    sender_headers = (("From", sender),) if sender is not None else ()
    return (*sender_headers, ("To", BILLING_DESK), ("Subject", subject), ("Message-ID", "<q1@mail.example>"), *extra)


AZURE_NEWS = (("X-Communication-Category", "product"), ("X-Product", "azure"))


def email_sent(
    *destinations: str,
    subject: str | None = "Introducing new Azure features",
    sender: str = "news@vendor.example",
    headers: tuple[tuple[str, str], ...] = AZURE_NEWS,
    caller: list[str] | None = None,
    tags: Mapping[str, list[str]] | None = None,
) -> dict[str, Any]:
    """An SES "Email Sent" event of mail that did not pass the gateway (SES names `caller` as who sent it)."""
    event = json.loads((EVENTS / "email-sent-bypass.json").read_text(encoding="utf-8"))
    mail_ = event["detail"]["mail"]
    mail_["source"] = sender
    mail_["destination"] = list(destinations or ["marketing@tailspintoys.com"])
    subjects = [("Subject", subject)] if subject is not None else []
    written = [("From", sender), ("To", ", ".join(mail_["destination"])), *subjects, *headers]
    mail_["headers"] = [{"name": n, "value": v} for n, v in written]
    mail_["commonHeaders"] = {"from": [sender], "to": mail_["destination"], "messageId": mail_["messageId"]}
    if subject is not None:
        mail_["commonHeaders"]["subject"] = subject  # SES's common subject is the first Subject header
    mail_["tags"]["ses:caller-identity"] = caller if caller is not None else ["marketing-app"]
    mail_["tags"].update(tags or {})
    return event


# ---------------------------------------------------------------------------------------- the attempts
# fmt: off

REROUTED = "subscription-owned-by-partner"
VIA_FABRIKAM = (to(FABRIKAM),)  # the one message SES sends: the notice to Fabrikam
BLOCKED_PRODUCT = "product-mail-for-csp-customer"

OUTBOUND_SUBJECTS = [
    # ---- seed rule 2 through the subject a raw request carries
    Attempt("raw-subject-contradicts-request-subject", "seed rule 2",
            "the request's subject says maintenance while the raw message the customer reads says invoice",
            request=raw_request(CONTOSO, subject="Scheduled maintenance", raw=eml("To: ceo@contoso.com", "Subject: Your invoice")),
            rejected=True),
    Attempt("raw-subject-differs-only-in-encoding", "seed rule 2",
            "the raw Subject says invoice only once decoded: a check on the undecoded text might let 'maintenance' stand",
            request=raw_request(CONTOSO, subject="Scheduled maintenance", raw=eml(f"Subject: {b_word('Your invoice')}")),
            rejected=True),
    Attempt("raw-subject-alone-decides", "seed rule 2",
            "a raw request without a subject field: the classifier might read an empty subject",
            request=raw_request(CONTOSO, raw=eml("To: ceo@contoso.com", "Subject: Your invoice")),
            sends=(to(FABRIKAM, shows=(CONTOSO,)),), rules={CONTOSO: REROUTED}),
    Attempt("raw-two-subject-headers", "seed rule 2",
            "the classifier might read the first Subject while the mail program shows the second",
            request=raw_request(CONTOSO, raw=eml("Subject: Scheduled maintenance", "Subject: Your invoice")),
            rejected=True),
    Attempt("raw-two-subjects-request-names-the-first", "seed rule 2",
            "the request's subject matches the first of two Subject headers, so a comparison might pass",
            request=raw_request(CONTOSO, subject="Scheduled maintenance",
                                raw=eml("Subject: Scheduled maintenance", "Subject: Your invoice")),
            rejected=True),
    Attempt("request-category-operational-over-raw-invoice", "seed rule 2",
            "the request declares operational; the raw Subject it sends says invoice",
            request=raw_request(CONTOSO, subject="Your invoice", category="operational", raw=eml("Subject: Your invoice")),
            sends=VIA_FABRIKAM, rules={CONTOSO: REROUTED}),
    # ---- declarations in the raw message
    Attempt("raw-declares-operational-beside-invoice-subject", "seed rule 2",
            "a raw X-Communication-Category: operational might outrank the invoice subject, as a declaration once did",
            request=raw_request(CONTOSO, raw=eml("Subject: Your invoice", "X-Communication-Category: operational")),
            sends=VIA_FABRIKAM, rules={CONTOSO: REROUTED}),
    Attempt("raw-declares-subscription-under-operational-request", "seed rule 2",
            "the request says operational, the raw header says subscription: only the request field might be read",
            request=raw_request(TAILSPIN, category="operational",
                                raw=eml("Subject: Account update", "X-Communication-Category: subscription")),
            sends=VIA_FABRIKAM, rules={TAILSPIN: REROUTED}),
    Attempt("raw-declares-product-under-operational-request", "seed rule 1",
            "product mail to a CSP-only customer, declared in the raw message only",
            request=raw_request(TAILSPIN, category="operational", raw=eml("Subject: Account update", "X-Communication-Category: product")),
            quarantined=frozenset({TAILSPIN}), rules={TAILSPIN: BLOCKED_PRODUCT}),
    Attempt("raw-declaration-name-in-upper-case", "seed rule 2",
            "header names are case-insensitive; a lookup by exact name would miss it",
            request=raw_request(TAILSPIN, category="operational",
                                raw=eml("Subject: Account update", "X-COMMUNICATION-CATEGORY: subscription")),
            sends=VIA_FABRIKAM, rules={TAILSPIN: REROUTED}),
    Attempt("raw-declaration-encoded-with-zero-width", "seed rule 2",
            "'Subscription' plus a zero-width space, as an encoded word, is no category name unless decoded and cleaned",
            request=raw_request(TAILSPIN, category="operational",
                                raw=eml("Subject: Account update", "X-Communication-Category: =?utf-8?q?Subscription=E2=80=8B?=")),
            sends=VIA_FABRIKAM, rules={TAILSPIN: REROUTED}),
    Attempt("raw-declaration-folded-with-spaces", "seed rule 2",
            "a folded, padded, upper-case value does not equal 'subscription' as written",
            request=raw_request(TAILSPIN, category="operational",
                                raw=eml("Subject: Account update", "X-Communication-Category:   \r\n   SUBSCRIPTION  ")),
            sends=VIA_FABRIKAM, rules={TAILSPIN: REROUTED}),
    Attempt("raw-declares-operational-with-zero-width", "seed rule 2",
            "'Operational' plus a zero-width space: read as operational or not, the invoice subject still decides",
            request=raw_request(CONTOSO, raw=eml("Subject: Your invoice", "X-Communication-Category: =?utf-8?q?Operational=E2=80=8B?=")),
            sends=VIA_FABRIKAM, rules={CONTOSO: REROUTED}),
    Attempt("raw-cloud-declared-twice-in-other-case", "seed rule 2",
            "usgov in the request and USGOV in the raw message are one cloud: Contoso Government's partner gets it, not Fabrikam",
            request=raw_request(CONTOSO, cloud="usgov", raw=eml("Subject: Your invoice", "X-Cloud-Instance: USGOV")),
            sends=(to("gov-desk@adatum.example", hides=(FABRIKAM,)),), rules={CONTOSO: REROUTED}),
    Attempt("raw-x-product-beside-direct-request-product", "seed rule 2",
            "the request names Dynamics 365 (bought directly), the raw X-Product names Azure (held through Fabrikam)",
            request=raw_request(CONTOSO, category="subscription", product="dynamics-365",
                                raw=eml("Subject: Your invoice", "X-Product: azure")),
            sends=VIA_FABRIKAM, rules={CONTOSO: REROUTED}),
    Attempt("raw-cloud-contradicts-request-cloud", "seed rule 2",
            "the raw X-Cloud-Instance moves the lookup to usgov, where Tailspin is no customer",
            request=raw_request(TAILSPIN, cloud="commercial", raw=eml("Subject: Your invoice", "X-Cloud-Instance: usgov")),
            rejected=True),
    Attempt("raw-two-cloud-headers", "seed rule 2",
            "two X-Cloud-Instance headers: whichever is read first decides the directory",
            request=raw_request(TAILSPIN, raw=eml("Subject: Your invoice", "X-Cloud-Instance: commercial", "X-Cloud-Instance: germany")),
            rejected=True),
    Attempt("request-header-declares-operational", "seed rule 2",
            "a composed request's own X-Communication-Category header beside an invoice subject",
            request=request(CONTOSO, headers={"X-Communication-Category": "operational"}),
            sends=VIA_FABRIKAM, rules={CONTOSO: REROUTED}),
    Attempt("request-header-declares-subscription", "seed rule 2",
            "the request field says operational, its headers say subscription: the headers might be ignored",
            request=request(TAILSPIN, subject="Account update", category="operational",
                            headers={"X-Communication-Category": "subscription"}),
            sends=VIA_FABRIKAM, rules={TAILSPIN: REROUTED}),
    # ---- encoded-word subjects: Contoso gets general mail directly, so a subscription read as general evades
    Attempt("subject-base64-utf8", "seed rule 2", "a base64 encoded word hides 'invoice' from a pattern on the raw text",
            request=request(CONTOSO, subject=b_word("Your invoice")),
            sends=VIA_FABRIKAM, rules={CONTOSO: REROUTED}),
    Attempt("subject-qp-latin1-accented", "seed rule 2", "ISO-8859-1 quoted-printable, and 'rénewal' with an accent",
            request=raw_request(CONTOSO, raw=eml("Subject: =?iso-8859-1?q?Your_r=E9newal?=")),
            sends=VIA_FABRIKAM, rules={CONTOSO: REROUTED}),
    Attempt("subject-qp-windows-1252", "seed rule 2", "windows-1252 quoted-printable with an en dash byte (0x96)",
            request=raw_request(CONTOSO, raw=eml("Subject: =?windows-1252?q?Invoice_=96_January?=")),
            sends=VIA_FABRIKAM, rules={CONTOSO: REROUTED}),
    Attempt("subject-base64-utf16", "seed rule 2", "UTF-16 with a byte-order mark: every other byte is NUL",
            request=raw_request(CONTOSO, raw=eml(f"Subject: {b_word('Your invoice', 'utf-16')}")),
            sends=VIA_FABRIKAM, rules={CONTOSO: REROUTED}),
    Attempt("subject-qp-utf7", "seed rule 2", "UTF-7 spells the I as +AEk-",
            request=raw_request(CONTOSO, raw=eml("Subject: =?utf-7?q?+AEk-nvoice?=")),
            sends=VIA_FABRIKAM, rules={CONTOSO: REROUTED}),
    Attempt("subject-shift-jis-full-width", "seed rule 2", "Shift JIS full-width letters: two encodings deep",
            request=raw_request(CONTOSO, raw=eml(f"Subject: {b_word('Ｉｎｖｏｉｃｅ', 'shift_jis')}")),
            sends=VIA_FABRIKAM, rules={CONTOSO: REROUTED}),
    Attempt("subject-split-across-encoded-words", "seed rule 2", "'Inv' and 'oice' in two adjacent encoded words, joined on display",
            request=raw_request(CONTOSO, raw=eml("Subject: =?utf-8?q?Inv?= =?utf-8?q?oice?=")),
            sends=VIA_FABRIKAM, rules={CONTOSO: REROUTED}),
    Attempt("subject-split-across-charsets", "seed rule 2", "the halves of the word in different charsets and encodings",
            request=raw_request(CONTOSO, raw=eml("Subject: =?iso-8859-1?q?Inv?= =?utf-8?b?b2ljZQ==?=")),
            sends=VIA_FABRIKAM, rules={CONTOSO: REROUTED}),
    Attempt("subject-encoded-words-folded", "seed rule 2", "the word split between encoded words on two folded lines",
            request=raw_request(CONTOSO, raw=eml("Subject: =?utf-8?q?Your_inv?=\r\n =?utf-8?q?oice?=")),
            sends=VIA_FABRIKAM, rules={CONTOSO: REROUTED}),
    Attempt("subject-plain-folded", "seed rule 2", "a plain subject folded between its two words",
            request=raw_request(CONTOSO, raw=eml("Subject: Your\r\n\tinvoice")),
            sends=VIA_FABRIKAM, rules={CONTOSO: REROUTED}),
    Attempt("subject-encoded-word-unpadded-upper-case", "seed rule 2", "upper-case tokens and base64 without its padding",
            request=raw_request(CONTOSO, raw=eml("Subject: =?UTF-8?B?SW52b2ljZQ?=")),
            sends=VIA_FABRIKAM, rules={CONTOSO: REROUTED}),
    Attempt("subject-encoded-zero-width", "seed rule 2", "a zero-width space inside the word, itself encoded",
            request=request(CONTOSO, subject="=?utf-8?q?In=E2=80=8Bvoice?="),
            sends=VIA_FABRIKAM, rules={CONTOSO: REROUTED}),
    # ---- what a reader sees, written so that a pattern does not
    Attempt("subject-zero-width-space", "seed rule 2", "U+200B inside the word: invisible, but no longer 'invoice'",
            request=request(CONTOSO, subject="In\u200bvoice"),
            sends=VIA_FABRIKAM, rules={CONTOSO: REROUTED}),
    Attempt("subject-bidi-override", "seed rule 2", "a right-to-left override inside 'Renewal'",
            request=request(CONTOSO, subject="Re\u202enewal"),
            sends=VIA_FABRIKAM, rules={CONTOSO: REROUTED}),
    Attempt("subject-soft-hyphen", "seed rule 2", "a soft hyphen shows only at a line break",
            request=request(CONTOSO, subject="In\u00advoice"),
            sends=VIA_FABRIKAM, rules={CONTOSO: REROUTED}),
    Attempt("subject-word-joiner", "seed rule 2", "U+2060 WORD JOINER inside the word",
            request=request(CONTOSO, subject="In\u2060voice"),
            sends=VIA_FABRIKAM, rules={CONTOSO: REROUTED}),
    Attempt("subject-variation-selector", "seed rule 2", "a variation selector after a letter",
            request=request(CONTOSO, subject="In\ufe0fvoice"),
            sends=VIA_FABRIKAM, rules={CONTOSO: REROUTED}),
    Attempt("subject-full-width-letters", "seed rule 2", "full-width Latin letters read as 'Invoice'",
            request=request(CONTOSO, subject="Ｉｎｖｏｉｃｅ"),
            sends=VIA_FABRIKAM, rules={CONTOSO: REROUTED}),
    Attempt("subject-combining-diaeresis", "seed rule 2", "I + combining diaeresis: 'Ïnvoice' is not 'invoice' to a regex",
            request=request(CONTOSO, subject="I\u0308nvoice"),
            sends=VIA_FABRIKAM, rules={CONTOSO: REROUTED}),
    Attempt("subject-precomposed-accent", "seed rule 2", "the precomposed Ï",
            request=request(CONTOSO, subject="\u00cfnvoice"),
            sends=VIA_FABRIKAM, rules={CONTOSO: REROUTED}),
    Attempt("subject-cyrillic-homoglyph", "seed rule 2", "a Cyrillic І for the Latin I: no normalisation maps it",
            request=request(CONTOSO, subject="\u0406nvoice"),
            sends=VIA_FABRIKAM, rules={CONTOSO: REROUTED}),
    Attempt("subject-greek-omicron", "seed rule 2", "a Greek omicron inside 'invoice'",
            request=request(CONTOSO, subject="Your inv\u03bfice"),
            sends=VIA_FABRIKAM, rules={CONTOSO: REROUTED}),
    Attempt("subject-latin-small-capitals", "seed rule 2",
            "ɪɴᴠᴏɪᴄᴇ reads as INVOICE, is all Latin script, and NFKC leaves small capitals alone",
            request=request(CONTOSO, subject="Your \u026a\u0274\u1d20\u1d0f\u026a\u1d04\u1d07"),
            sends=VIA_FABRIKAM, rules={CONTOSO: REROUTED}),
    Attempt("subject-mathematical-bold-via-json-surrogates", "seed rule 2",
            "a JSON surrogate pair for MATHEMATICAL BOLD CAPITAL I",
            body=r'{"message_id": "MESSAGE_ID", "from": "notices@vendor.example", "to": ["ceo@contoso.com"], '
                 r'"subject": "\ud835\udc08nvoice", "text": "Hello."}',
            sends=VIA_FABRIKAM, rules={CONTOSO: REROUTED}),
    # ---- every source is heard: the first pattern no longer wins
    Attempt("subject-outage-before-invoice", "seed rule 2", "'outage' matches the service-incident pattern, which is tried first",
            request=request(TAILSPIN, subject="Service outage: your invoice is ready"),
            sends=VIA_FABRIKAM, rules={TAILSPIN: REROUTED}),
    Attempt("subject-renewal-action-required", "seed rule 2", "'action required' is operational and tried before 'renewal'",
            request=request(TAILSPIN, subject="Subscription renewal: action required"),
            sends=VIA_FABRIKAM, rules={TAILSPIN: REROUTED}),
    Attempt("subject-security-advisory-on-billing", "seed rule 2", "'security advisory' is operational",
            request=request(TAILSPIN, subject="Security advisory: billing changes"),
            sends=VIA_FABRIKAM, rules={TAILSPIN: REROUTED}),
    Attempt("subject-maintenance-and-webinar", "seed rule 1", "product mail to a CSP-only customer that opens with 'maintenance'",
            request=request(TAILSPIN, subject="Maintenance window, and a new webinar"),
            quarantined=frozenset({TAILSPIN}), rules={TAILSPIN: BLOCKED_PRODUCT}),
    Attempt("status-sender-with-invoice-subject", "seed rule 2", "status@ is a service-incident sender in the sender map",
            request=request(TAILSPIN, **{"from": "status@vendor.example"}),
            sends=VIA_FABRIKAM, rules={TAILSPIN: REROUTED}),
    Attempt("status-sender-with-product-subject", "seed rule 1", "the service-incident sender announcing new features",
            request=request(TAILSPIN, subject="Introducing new features", **{"from": "status@vendor.example"}),
            quarantined=frozenset({TAILSPIN}), rules={TAILSPIN: BLOCKED_PRODUCT}),
    Attempt("declared-service-incident-invoice-subject", "seed rule 2", "the request declares service-incident over an invoice subject",
            request=request(TAILSPIN, category="service-incident"),
            sends=VIA_FABRIKAM, rules={TAILSPIN: REROUTED}),
    Attempt("general-subject-to-csp-only", "seed rule 1", "nothing in the subject says anything: general mail",
            request=request(TAILSPIN, subject="Hello from the vendor"),
            sends=VIA_FABRIKAM, rules={TAILSPIN: "general-mail-via-partner"}),
    Attempt("empty-subject-to-csp-only", "seed rule 1", "no subject at all",
            request=request(TAILSPIN, subject=""),
            sends=VIA_FABRIKAM, rules={TAILSPIN: "general-mail-via-partner"}),
    # ---- several products: the one that restricts the customer most decides
    Attempt("products-dynamics-and-azure-in-product-mail", "seed rule 1",
            "Dynamics 365 is bought directly; naming it first might make the whole message direct",
            request=request(CONTOSO, subject="Introducing Dynamics 365 and Azure features", **{"from": "news@vendor.example"}),
            sends=VIA_FABRIKAM, rules={CONTOSO: "product-held-through-csp"}),
    Attempt("products-dynamics-and-azure-in-invoice", "seed rule 2", "an invoice naming a direct product before a CSP one",
            request=request(CONTOSO, subject="Your Dynamics 365 and Azure invoice"),
            sends=VIA_FABRIKAM, rules={CONTOSO: REROUTED}),
    Attempt("declared-direct-product-azure-subject", "seed rule 1", "the request declares Dynamics 365; the subject is about Azure",
            request=request(CONTOSO, subject="New Azure features", category="product", product="dynamics-365"),
            sends=VIA_FABRIKAM, rules={CONTOSO: "product-held-through-csp"}),
    Attempt("product-name-with-zero-width", "seed rule 1",
            "'Az\u200bure' is no product to a pattern, and product mail Contoso takes directly",
            request=request(CONTOSO, subject="New Az\u200bure features", **{"from": "news@vendor.example"}),
            sends=VIA_FABRIKAM, rules={CONTOSO: "product-held-through-csp"}),
    Attempt("product-name-full-width", "seed rule 1", "full-width 'Ａｚｕｒｅ'",
            request=request(CONTOSO, subject="New Ａｚｕｒｅ features", **{"from": "news@vendor.example"}),
            sends=VIA_FABRIKAM, rules={CONTOSO: "product-held-through-csp"}),
    Attempt("litware-microsoft-365-goes-to-northwind-only", "seed rule 2",
            "two partners: the invoice must reach the one owning the product",
            request=request(LITWARE, subject="Your Microsoft 365 invoice"),
            sends=(to(*NORTHWIND, hides=(FABRIKAM,)),), rules={LITWARE: REROUTED}),
]

OUTBOUND_RECIPIENTS = [
    # ---- the customer's address written so that a lookup misses it (invoice from billing@: rerouted, never direct)
    *[
        Attempt(f"recipient-{name}", "seed rule 2", why, request=request(address, **{"from": "billing@vendor.example"}),
                sends=VIA_FABRIKAM, rules={TAILSPIN: REROUTED})
        for name, address, why in [
            ("ideographic-full-stop", "it@tailspintoys.com\u3002", "a trailing U+3002 IDEOGRAPHIC FULL STOP"),
            ("full-width-full-stop", "it@tailspintoys.com\uff0e", "a trailing U+FF0E FULLWIDTH FULL STOP"),
            ("halfwidth-ideographic-stop", "it@tailspintoys.com\uff61", "a trailing U+FF61 HALFWIDTH IDEOGRAPHIC FULL STOP"),
            ("dot-zero-width", "it@tailspintoys.com.\u200b", "a trailing dot hidden behind a zero-width space"),
            ("ideographic-stop-inside", "it@tailspintoys\u3002com", "U+3002 as the dot between the labels"),
            ("full-width-domain", "it@\uff54\uff41\uff49\uff4c\uff53\uff50\uff49\uff4e\uff54\uff4f\uff59\uff53.\uff43\uff4f\uff4d",
             "the domain in full-width letters"),
            ("upper-case", "IT@TAILSPINTOYS.COM", "upper case"),
            ("trailing-dots", "it@tailspintoys.com..", "two trailing dots"),
        ]
    ],
    Attempt("recipient-subdomain", "seed rule 2", "a subdomain of the customer's domain is the customer's",
            request=request("it@eu.tailspintoys.com", **{"from": "billing@vendor.example"}), sends=VIA_FABRIKAM,
            rules={"it@eu.tailspintoys.com": REROUTED}),
    Attempt("recipient-subaddress", "seed rule 2", "a +tag on the local part",
            request=request("cfo+x@tailspintoys.com", **{"from": "billing@vendor.example"}), sends=VIA_FABRIKAM,
            rules={"cfo+x@tailspintoys.com": REROUTED}),
    Attempt("recipient-subaddress-of-listed-address", "seed rule 2",
            "ceo@gmail.example is listed as Contoso's; with a +tag an exact lookup finds nobody",
            request=request("ceo+billing@gmail.example", **{"from": "billing@vendor.example"}), sends=VIA_FABRIKAM,
            rules={"ceo+billing@gmail.example": REROUTED}),
    Attempt("recipient-listed-address-upper-case", "seed rule 2", "the listed address in upper case",
            request=request("CEO@GMAIL.EXAMPLE", **{"from": "billing@vendor.example"}), sends=VIA_FABRIKAM,
            rules={CONTOSO_GMAIL: REROUTED}),
    Attempt("recipient-unicode-domain-decomposed", "seed rule 2",
            "Bäckerei München in NFD (a + combining diaeresis): its partner has no contact, so the mail is kept",
            request=request("info@ba\u0308ckerei-mu\u0308nchen.example", **{"from": "billing@vendor.example"}),
            quarantined=frozenset({MUNCHEN}), rules={MUNCHEN: "partner-without-contact"}),
    Attempt("recipient-unicode-domain-upper-case", "seed rule 2", "the Unicode domain in upper case, never allowed for want of a contact",
            request=request("INFO@B\u00c4CKEREI-M\u00dcNCHEN.EXAMPLE", **{"from": "billing@vendor.example"}),
            quarantined=frozenset({MUNCHEN}), rules={MUNCHEN: "partner-without-contact"}),
    # ---- a different domain is a different recipient: sent where it says, never treated as the customer
    Attempt("recipient-cyrillic-homoglyph-domain", "seed rule 2",
            "tаilspintoys.com with a Cyrillic а looks like the customer; it must go to its own punycode address, not Fabrikam",
            request=request("it@t\u0430ilspintoys.com", **{"from": "billing@vendor.example"}),
            sends=(to("it@xn--tilspintoys-yij.com", hides=(FABRIKAM,)),), rules={"it@xn--tilspintoys-yij.com": "not-in-directory"}),
    Attempt("recipient-greek-omicron-domain", "seed rule 2", "a Greek ο in the domain: another domain altogether",
            request=request("it@tailspint\u03bfys.com", **{"from": "billing@vendor.example"}),
            sends=(to("it@xn--tailspintys-gfi.com"),), rules={"it@xn--tailspintys-gfi.com": "not-in-directory"}),
    Attempt("recipient-punycode-lookalike", "seed rule 2", "the lookalike already in punycode",
            request=request("it@xn--tilspintoys-yij.com", **{"from": "billing@vendor.example"}),
            sends=(to("it@xn--tilspintoys-yij.com"),), rules={"it@xn--tilspintoys-yij.com": "not-in-directory"}),
    Attempt("recipient-customer-domain-as-label", "seed rule 2", "tailspintoys.com as a label of the attacker's domain",
            request=request("it@tailspintoys.com.evil.example", **{"from": "billing@vendor.example"}),
            sends=(to("it@tailspintoys.com.evil.example"),), rules={"it@tailspintoys.com.evil.example": "not-in-directory"}),
    # ---- addresses the gateway cannot read are refused, never guessed
    *[
        Attempt(f"recipient-{name}", "seed rule 2", why, request=request(address, **{"from": "billing@vendor.example"}), rejected=True)
        for name, address, why in [
            ("comment", "it(finance)@tailspintoys.com", "an RFC 5322 comment in the local part"),
            ("quoted-local-part", '"it"@tailspintoys.com', "a quoted local part"),
            ("display-name-form", "Finance <it@tailspintoys.com>", "a display name and angle brackets"),
            ("zero-width-local-part", "i\u200bt@tailspintoys.com", "a zero-width space in the local part"),
            ("bidi-in-domain", "it@\u202etailspintoys.com", "a right-to-left override in the domain"),
            ("full-width-at-sign", "it\uff20tailspintoys.com", "a full-width @"),
            ("full-width-local-part", "\uff49\uff54@tailspintoys.com", "full-width letters in the local part"),
        ]
    ],
    # ---- JSON escapes in the queue message body
    Attempt("json-escaped-dot-in-recipient", "seed rule 2", "\\u002e for the dot",
            body=r'{"message_id": "MESSAGE_ID", "from": "billing@vendor.example", "to": ["it@tailspintoys\u002ecom"], '
                 r'"subject": "Your invoice", "text": "Hello."}',
            sends=VIA_FABRIKAM, rules={TAILSPIN: REROUTED}),
    Attempt("json-escaped-key-and-value", "seed rule 2", "\\u0063ategory and \\u006fperational: the same key and value escaped",
            body=r'{"message_id": "MESSAGE_ID", "from": "notices@vendor.example", "to": ["ceo@contoso.com"], '
                 r'"subject": "Your invoice", "text": "Hello.", "\u0063ategory": "\u006fperational"}',
            sends=VIA_FABRIKAM, rules={CONTOSO: REROUTED}),
    Attempt("json-duplicate-category-key", "seed rule 2",
            "two category keys: Python keeps the last, a validator upstream may have read the first",
            body=r'{"message_id": "MESSAGE_ID", "from": "notices@vendor.example", "to": ["it@tailspintoys.com"], '
                 r'"subject": "Account update", "text": "Hello.", "category": "subscription", "category": "operational"}',
            rejected=True),
    Attempt("json-category-with-zero-width", "seed rule 2", "'operational' with a zero-width space is not the enum value",
            body=r'{"message_id": "MESSAGE_ID", "from": "notices@vendor.example", "to": ["it@tailspintoys.com"], '
                 r'"subject": "Your invoice", "text": "Hello.", "category": "operational\u200b"}',
            rejected=True),
    Attempt("json-category-upper-case", "seed rule 2", "'OPERATIONAL' in upper case",
            request=request(TAILSPIN, category="OPERATIONAL"), rejected=True),
    Attempt("json-lone-surrogate-in-subject", "seed rule 2", "a lone surrogate cannot be encoded: the send might crash into retries",
            body=r'{"message_id": "MESSAGE_ID", "from": "notices@vendor.example", "to": ["ceo@contoso.com"], '
                 r'"subject": "Your invoice \ud800", "text": "Hello."}',
            rejected=True),
    Attempt("json-nul-in-recipient", "seed rule 2", "a NUL after the address",
            body=r'{"message_id": "MESSAGE_ID", "from": "billing@vendor.example", "to": ["it@tailspintoys.com\u0000"], '
                 r'"subject": "Your invoice", "text": "Hello."}',
            rejected=True),
]

OUTBOUND_IDENTITIES = [
    Attempt("raw-from-a-customer", "seed rule 2", "the raw From is a customer's address, not a vendor identity",
            request=raw_request(WOODGROVE, raw=eml("Subject: Wire transfer", sender="CEO <ceo@contoso.com>")), rejected=True),
    Attempt("raw-from-repaired-by-the-parser", "seed rule 2", "'vendor address <stranger>': the parser repairs it into some address",
            request=raw_request(WOODGROVE, raw=eml("Subject: Hello", sender="billing@vendor.example <x@evil.example>")), rejected=True),
    Attempt("raw-from-vendor-as-display-name", "seed rule 2", "the vendor address as the display name of a stranger",
            request=raw_request(WOODGROVE, raw=eml("Subject: Hello", sender='"billing@vendor.example" <x@evil.example>')), rejected=True),
    Attempt("raw-sender-is-a-stranger", "seed rule 2", "a vendor From with a stranger's Sender",
            request=raw_request(WOODGROVE, raw=eml("Subject: Hello", "Sender: x@evil.example")), rejected=True),
    Attempt("raw-two-from-headers", "seed rule 2", "a vendor From and a stranger's From: mail programs show one of them",
            request=raw_request(WOODGROVE, raw=eml("From: x@evil.example", "Subject: Hello")), rejected=True),
    Attempt("raw-from-billing-request-from-status", "seed rule 2",
            "the request is from status@ (service-incident); the customer reads a message From billing@ (subscription)",
            request=raw_request(TAILSPIN, raw=eml("Subject: Account update", sender="billing@vendor.example"),
                                **{"from": "status@vendor.example"}),
            sends=VIA_FABRIKAM, rules={TAILSPIN: REROUTED}),
    Attempt("raw-sender-billing-request-from-status", "seed rule 2",
            "From status@ but Sender billing@: the reader sees 'billing@ on behalf of status@'",
            request=raw_request(TAILSPIN,
                                raw=eml("Subject: Account update", "Sender: billing@vendor.example", sender="status@vendor.example"),
                                **{"from": "status@vendor.example"}),
            sends=VIA_FABRIKAM, rules={TAILSPIN: REROUTED}),
]

OUTBOUND_INJECTION = [
    Attempt("subject-crlf-in-json", "header injection", "a CR LF and a Bcc line in the request's subject",
            request=request(TAILSPIN, subject="Invoice\r\nBcc: evil@evil.example"), rejected=True, planted=EVIL),
    Attempt("subject-encoded-crlf-qp", "header injection", "an encoded CR LF decodes into a header break when re-written",
            request=request(TAILSPIN, WOODGROVE, subject="=?utf-8?q?Invoice=0D=0ABcc:_evil@evil.example?="),
            sends=(to(FABRIKAM), to(WOODGROVE)), planted=EVIL),
    Attempt("subject-encoded-crlf-base64", "header injection", "the same in base64, with a second header after it",
            request=request(TAILSPIN, WOODGROVE, subject=b_word("Invoice\r\nBcc: evil@evil.example\r\nX-Evil: 1")),
            sends=(to(FABRIKAM), to(WOODGROVE)), planted=EVIL),
    Attempt("subject-line-separator", "header injection", "U+2028 LINE SEPARATOR before a Bcc line",
            request=request(TAILSPIN, WOODGROVE, subject="Invoice\u2028Bcc: evil@evil.example"),
            sends=(to(FABRIKAM), to(WOODGROVE)), planted=EVIL),
    Attempt("request-header-encoded-crlf", "header injection", "an encoded CR LF in a header the request adds",
            request=request(TAILSPIN, WOODGROVE, headers={"X-Campaign": "=?utf-8?q?a=0D=0ABcc:_evil@evil.example?="}),
            sends=(to(FABRIKAM), to(WOODGROVE)), planted=EVIL),
    Attempt("request-header-crlf-in-json", "header injection", "a literal CR LF in a header value",
            request=request(TAILSPIN, headers={"X-Campaign": "a\r\nBcc: evil@evil.example"}), rejected=True, planted=EVIL),
    Attempt("request-header-name-with-crlf", "header injection", "the header name itself carries the line break",
            request=request(TAILSPIN, headers={"X-A\r\nBcc": "evil@evil.example"}), rejected=True, planted=EVIL),
    Attempt("request-reply-to-with-crlf", "header injection", "a CR LF inside a reply_to address",
            request=request(TAILSPIN, reply_to=["x@vendor.example\r\nBcc: evil@evil.example"]), rejected=True, planted=EVIL),
    Attempt("raw-header-encoded-crlf-passed-on", "header injection",
            "a raw message's own header hides an encoded CR LF; the allowed copy passes raw headers on",
            request=raw_request(WOODGROVE, raw=eml("Subject: Hello", "X-Campaign: =?utf-8?q?a=0D=0ABcc:_evil@evil.example?=")),
            sends=(to(WOODGROVE),), planted=EVIL),
    Attempt("raw-subject-encoded-crlf-into-notice", "header injection",
            "the partner notice's Subject is built from the raw Subject, which hides a CR LF",
            request=raw_request(TAILSPIN, raw=eml("Subject: =?utf-8?q?Invoice=0D=0ABcc:_evil@evil.example?=")),
            sends=VIA_FABRIKAM, planted=EVIL),
    Attempt("raw-bare-cr-in-subject", "header injection", "a lone CR is a line break to some parsers and not to others",
            request=raw_request(TAILSPIN, WOODGROVE,
                                raw=b"From: notices@vendor.example\r\nSubject: Your invoice\rBcc: evil@evil.example\r\n\r\nHi\r\n"),
            sends=(to(FABRIKAM), to(WOODGROVE)), planted=EVIL),
    Attempt("raw-bare-lf-in-header", "header injection", "a lone LF inside a CRLF message, before a Cc line",
            request=raw_request(TAILSPIN, WOODGROVE,
                                raw=b"From: notices@vendor.example\r\nSubject: Your invoice\r\n"
                                    b"X-Note: a\nCc: evil@evil.example\r\n\r\nHi\r\n"),
            sends=(to(FABRIKAM), to(WOODGROVE)), planted=EVIL),
    Attempt("raw-bcc-header", "header injection", "a Bcc in the raw message is not an envelope recipient",
            request=raw_request(WOODGROVE, raw=eml("Subject: Hello", "Bcc: evil@evil.example")), sends=(to(WOODGROVE),), planted=EVIL),
]

OUTBOUND_PRIVACY = [
    Attempt("copies-and-notices-name-only-their-reader", "privacy",
            "To and Cc name three customers: each copy and each notice's attachment must show only its own",
            request=request(WOODGROVE, TAILSPIN, cc=[CONTOSO], subject="Your Azure invoice", **{"from": "billing@vendor.example"}),
            sends=(to(WOODGROVE, hides=(TAILSPIN, CONTOSO)), to(FABRIKAM, shows=(TAILSPIN,), hides=(CONTOSO, WOODGROVE)),
                   to(FABRIKAM, shows=(CONTOSO,), hides=(TAILSPIN, WOODGROVE))),
            rules={WOODGROVE: "no-csp-partner", TAILSPIN: REROUTED, CONTOSO: REROUTED}),
    Attempt("raw-resent-and-envelope-headers", "privacy",
            "Resent-To/Cc/Bcc, Delivered-To, X-Original-To, Apparently-To, Envelope-To name other customers",
            request=raw_request(WOODGROVE, TAILSPIN, cc=[CONTOSO], raw=eml(
                "To: cto@woodgrovebank.com, it@tailspintoys.com", "Cc: ceo@contoso.com", "Subject: Your Azure invoice",
                "Resent-To: ceo@contoso.com, it@tailspintoys.com", "Resent-Cc: cto@woodgrovebank.com, it@tailspintoys.com",
                "Resent-Bcc: ceo@contoso.com", "Delivered-To: it@tailspintoys.com", "X-Original-To: ceo@contoso.com",
                "Apparently-To: it@tailspintoys.com", "Envelope-To: ceo@contoso.com", "X-Envelope-To: it@tailspintoys.com")),
            sends=(to(WOODGROVE, hides=(TAILSPIN, CONTOSO)), to(FABRIKAM, shows=(TAILSPIN,), hides=(CONTOSO, WOODGROVE)),
                   to(FABRIKAM, shows=(CONTOSO,), hides=(TAILSPIN, WOODGROVE)))),
    Attempt("request-headers-name-other-customers", "privacy", "Resent-To and Delivered-To set through the request's headers",
            request=request(WOODGROVE, subject="Hello", headers={"Resent-To": CONTOSO, "Delivered-To": TAILSPIN, "Resent-Cc": LITWARE}),
            sends=(to(WOODGROVE, hides=(CONTOSO, TAILSPIN, LITWARE)),)),
    Attempt("bcc-recipient-stays-hidden", "privacy", "an allowed Bcc recipient shares the copy the To recipient reads",
            request=request(WOODGROVE, subject="Hello", bcc=[CONTOSO]), sends=(to(WOODGROVE, CONTOSO, hides=(CONTOSO,)),),
            rules={WOODGROVE: "no-csp-partner", CONTOSO: "general-mail-for-direct-customer"}),
    Attempt("raw-group-syntax", "privacy", "the recipients in an RFC 5322 group",
            request=raw_request(WOODGROVE, TAILSPIN,
                                raw=eml("To: Customers: cto@woodgrovebank.com, it@tailspintoys.com;", "Subject: Your invoice")),
            sends=(to(WOODGROVE, hides=(TAILSPIN,)), to(FABRIKAM, shows=(TAILSPIN,), hides=(WOODGROVE,)))),
    Attempt("raw-mixed-case-addresses", "privacy", "the other customer's address in mixed case in To",
            request=raw_request(WOODGROVE, TAILSPIN, raw=eml("To: CTO@WoodgroveBank.com, IT@TailspinToys.COM", "Subject: Your invoice")),
            sends=(to(WOODGROVE, hides=(TAILSPIN,)), to(FABRIKAM, shows=(TAILSPIN,), hides=(WOODGROVE,)))),
    Attempt("raw-confusable-address-in-to", "privacy", "the other customer's address with an ideographic full stop, as UTF-8",
            request=raw_request(WOODGROVE, "it@tailspintoys.com\u3002",
                                raw=eml("To: cto@woodgrovebank.com, it@tailspintoys.com\u3002", "Subject: Your invoice")),
            sends=(to(WOODGROVE, hides=("tailspintoys",)), to(FABRIKAM, shows=(TAILSPIN,), hides=(WOODGROVE,)))),
    Attempt("two-partners-two-notices", "privacy", "Litware's notice goes to Northwind, Tailspin's to Fabrikam: neither names the other",
            request=request(LITWARE, TAILSPIN, subject="Your Microsoft 365 invoice"),
            sends=(to(*NORTHWIND, hides=(TAILSPIN, FABRIKAM)), to(FABRIKAM, hides=(LITWARE, *NORTHWIND)))),
]

INBOUND = [
    # ---- the customer side must be exactly one clean address
    *[
        Attempt(f"inbound-from-{name}", "inbound relay", why, inbound=Inbound(headers),
                sends=(), quarantined=frozenset({BILLING_DESK}), rules={BILLING_DESK: "unreadable-sender"}, disposition="STOP_RULE")
        for name, headers, why in [
            ("address-then-angle-address", mail("cfo@tailspintoys.com <attacker@evil.example>"),
             "a bare address before an angle address: parsers disagree on which is the sender"),
            ("angle-address-then-domain", mail("x <cfo@tailspintoys.com>@evil.example"), "an angle address followed by a domain"),
            ("two-from-headers", (("From", "cfo@tailspintoys.com"), *mail("attacker@evil.example")), "two From headers"),
            ("group", mail("Finance: cfo@tailspintoys.com;"), "a group holding the customer's address"),
            ("two-addresses", mail("cfo@tailspintoys.com, attacker@evil.example"), "two mailboxes in one From"),
            ("empty-angle", mail("<>"), "the null address"),
            ("missing", mail(None), "no From header at all"),
        ]
    ],
    Attempt("inbound-from-display-name-is-an-address", "inbound relay",
            "the customer's address as an encoded display name; the sender is the stranger, and it is not relayed",
            inbound=Inbound(mail("=?utf-8?q?cfo=40tailspintoys.com?= <attacker@evil.example>")),
            rules={BILLING_DESK: "not-in-directory"}, disposition="CONTINUE"),
    Attempt("inbound-from-comment-names-the-customer", "inbound relay", "the customer's address in a comment after a stranger's",
            inbound=Inbound(mail("attacker@evil.example (cfo@tailspintoys.com)")),
            rules={BILLING_DESK: "not-in-directory"}, disposition="CONTINUE"),
    Attempt("inbound-homoglyph-domain-authenticated", "inbound relay",
            "DMARC passes for tаilspintoys.com (Cyrillic а), which looks like the customer: not the customer, not relayed",
            inbound=Inbound(mail("cfo@t\u0430ilspintoys.com")), rules={BILLING_DESK: "not-in-directory"}, disposition="CONTINUE"),
    # ---- no relay without authentication
    Attempt("inbound-unauthenticated-customer", "inbound relay", "a From claiming Tailspin with nothing authenticated",
            inbound=Inbound(mail("cfo@tailspintoys.com"), verdict="unauthenticated"),
            quarantined=frozenset({BILLING_DESK}), rules={BILLING_DESK: "unauthenticated-sender"}, disposition="STOP_RULE"),
    Attempt("inbound-unauthenticated-confusable-stop", "inbound relay", "the spoofed From written with a full-width full stop",
            inbound=Inbound(mail("cfo@tailspintoys\uff0ecom"), verdict="unauthenticated"),
            quarantined=frozenset({BILLING_DESK}), rules={BILLING_DESK: "unauthenticated-sender"}, disposition="STOP_RULE"),
    Attempt("inbound-unauthenticated-subdomain", "inbound relay", "a spoofed subdomain of the customer",
            inbound=Inbound(mail("cfo@eu.tailspintoys.com"), verdict="unauthenticated"),
            quarantined=frozenset({BILLING_DESK}), rules={BILLING_DESK: "unauthenticated-sender"}, disposition="STOP_RULE"),
    Attempt("inbound-spf-pass-for-attacker-envelope", "inbound relay", "SPF passes, but for the attacker's envelope domain",
            inbound=Inbound(mail("cfo@tailspintoys.com"), verdict="unauthenticated", overrides={"spf": "PASS"},
                            source="bounce@attacker.example"),
            quarantined=frozenset({BILLING_DESK}), rules={BILLING_DESK: "unauthenticated-sender"}, disposition="STOP_RULE"),
    # ---- declarations on inbound mail are nobody's to make
    Attempt("inbound-declares-operational-to-billing", "inbound relay",
            "the customer declares its billing question operational, to reach the vendor's desk",
            inbound=Inbound(mail("cfo@tailspintoys.com", ("X-Communication-Category", "operational"))),
            sends=(to(FABRIKAM, hides=("X-Communication-Category",)),), rules={BILLING_DESK: REROUTED}, disposition="STOP_RULE"),
    Attempt("inbound-declares-operational-to-sales", "seed rule 1", "product mail from a CSP-only customer, declared operational",
            inbound=Inbound(mail("cfo@tailspintoys.com", ("X-Communication-Category", "operational")), desks=(SALES_DESK,)),
            quarantined=frozenset({SALES_DESK}), rules={SALES_DESK: BLOCKED_PRODUCT}, disposition="STOP_RULE"),
    Attempt("inbound-declaration-odd-case-zero-width", "seed rule 1", "x-communication-category: OPERATIONAL with a zero-width space",
            inbound=Inbound(mail("cfo@tailspintoys.com", ("x-communication-category", "OPERATIONAL\u200b")), desks=(SALES_DESK,)),
            quarantined=frozenset({SALES_DESK}), rules={SALES_DESK: BLOCKED_PRODUCT}, disposition="STOP_RULE"),
    Attempt("inbound-declares-usgov-cloud", "inbound relay", "X-Cloud-Instance: usgov, where Tailspin is no customer",
            inbound=Inbound(mail("cfo@tailspintoys.com", ("X-Cloud-Instance", "usgov"))),
            sends=VIA_FABRIKAM, rules={BILLING_DESK: REROUTED}, disposition="STOP_RULE"),
    Attempt("inbound-partner-without-contact", "inbound relay", "Bäckerei München's partner has no contact: kept, never allowed",
            inbound=Inbound(mail("info@b\u00e4ckerei-m\u00fcnchen.example")),
            quarantined=frozenset({BILLING_DESK}), rules={BILLING_DESK: "partner-without-contact"}, disposition="STOP_RULE"),
    Attempt("inbound-forged-filter-headers", "inbound relay",
            "the customer writes the filter's own X-Mailfilter-* and X-Original-* headers",
            inbound=Inbound(mail("cfo@tailspintoys.com", ("X-Mailfilter-Rule", "forged-rule"), ("X-Original-From", "forged@contoso.com"),
                                 ("X-SES-Spam-Verdict", "forged-pass"))),
            sends=(to(FABRIKAM, hides=("forged",)),), rules={BILLING_DESK: REROUTED}, disposition="STOP_RULE"),
    # ---- the forward to the partner cannot be split
    Attempt("inbound-bare-cr-in-subject", "header injection", "a lone CR before a Bcc line in the stored Subject",
            inbound=Inbound(mail("cfo@tailspintoys.com"), raw=b"From: cfo@tailspintoys.com\r\nTo: billing@vendor.example\r\n"
                            b"Subject: Invoice\rBcc: evil@evil.example\r\n\r\nbody\r\n"),
            sends=VIA_FABRIKAM, rules={BILLING_DESK: REROUTED}, disposition="STOP_RULE", planted=EVIL),
    Attempt("inbound-bare-cr-in-custom-header", "header injection", "a lone CR before a To line in a custom header",
            inbound=Inbound(mail("cfo@tailspintoys.com"), raw=b"From: cfo@tailspintoys.com\r\nTo: billing@vendor.example\r\n"
                            b"Subject: Invoice\r\nX-Note: a\rTo: evil@evil.example\r\n\r\nbody\r\n"),
            sends=VIA_FABRIKAM, rules={BILLING_DESK: REROUTED}, disposition="STOP_RULE", planted=EVIL),
    Attempt("inbound-bare-lf-in-subject", "header injection", "a lone LF inside a CRLF message, before a Cc line",
            inbound=Inbound(mail("cfo@tailspintoys.com"), raw=b"From: cfo@tailspintoys.com\r\nTo: billing@vendor.example\r\n"
                            b"Subject: Invoice\nCc: evil@evil.example\r\n\r\nbody\r\n"),
            sends=VIA_FABRIKAM, rules={BILLING_DESK: REROUTED}, disposition="STOP_RULE", planted=EVIL),
    Attempt("inbound-encoded-crlf-in-subject", "header injection", "an encoded CR LF in the Subject the partner's program decodes",
            inbound=Inbound(mail("cfo@tailspintoys.com", subject="=?utf-8?q?Invoice=0D=0ABcc:_evil@evil.example?=")),
            sends=VIA_FABRIKAM, rules={BILLING_DESK: REROUTED}, disposition="STOP_RULE", planted=EVIL),
]

DEFAULT_VIOLATION = {"marketing@tailspintoys.com": BLOCKED_PRODUCT}
ENCODED_AZURE_INVOICE = b_word("Your Azure subscription invoice")

AUDIT = [
    Attempt("audit-forged-gateway-tag", "audit", "the sender sets the gateway's own message tag on mail it sends itself",
            sent_event=email_sent(tags={"csp-mail-filter": ["gateway"]}), rules=DEFAULT_VIOLATION),
    Attempt("audit-forged-ses-headers", "audit", "X-SES-MESSAGE-TAGS and a caller header written into the message",
            sent_event=email_sent(headers=(*AZURE_NEWS, ("X-SES-MESSAGE-TAGS", "csp-mail-filter=gateway"),
                                           ("X-SES-CALLER-IDENTITY", GATEWAY_ROLE))),
            rules=DEFAULT_VIOLATION),
    Attempt("audit-caller-look-alike", "audit", "a role named like the gateway's, with a suffix",
            sent_event=email_sent(caller=[f"{GATEWAY_ROLE}-copy"]), rules=DEFAULT_VIOLATION),
    Attempt("audit-caller-other-case", "audit", "the gateway role's name in lower case",
            sent_event=email_sent(caller=[GATEWAY_ROLE.lower()]), rules=DEFAULT_VIOLATION),
    Attempt("audit-two-callers", "audit", "two caller identities, one of them the gateway's",
            sent_event=email_sent(caller=["marketing-app", GATEWAY_ROLE]), rules=DEFAULT_VIOLATION),
    Attempt("audit-no-caller", "audit", "no caller identity at all", sent_event=email_sent(caller=[]), rules=DEFAULT_VIOLATION),
    Attempt("audit-declarations-ignored", "audit", "bypass mail declares itself operational, in the usgov cloud, about Dynamics",
            sent_event=email_sent(headers=(("X-Communication-Category", "operational"), ("X-Cloud-Instance", "usgov"),
                                           ("X-Product", "dynamics-365"))),
            rules=DEFAULT_VIOLATION),
    *[
        Attempt(f"audit-subject-{name}", "audit", why,
                sent_event=email_sent(subject=subject, sender="noreply@vendor.example", headers=()),
                rules={"marketing@tailspintoys.com": REROUTED})
        for name, subject, why in [
            ("base64", ENCODED_AZURE_INVOICE, "a base64 encoded-word subject"),
            ("qp-latin1", "=?iso-8859-1?q?Your_r=E9newal?=", "ISO-8859-1 quoted-printable with an accent"),
            ("split-words", "=?utf-8?q?Your_inv?= =?utf-8?b?b2ljZQ==?=", "the word split across two encoded words"),
            ("zero-width", "Your in\u200bvoice", "a zero-width space inside the word"),
            ("full-width", "Your \uff29\uff4e\uff56\uff4f\uff49\uff43\uff45", "full-width letters"),
            ("outage-first", "Service outage: your invoice", "'outage' first: the service-incident pattern used to win"),
        ]
    ],
    Attempt("audit-two-subject-headers", "audit", "SES's common subject is the first of two Subject headers",
            sent_event=email_sent(subject="Scheduled maintenance", sender="noreply@vendor.example", headers=(("Subject", "Your invoice"),)),
            rules={"marketing@tailspintoys.com": REROUTED}),
    Attempt("audit-destination-repaired", "audit", "a destination the parser would repair into some address",
            sent_event=email_sent("cfo@contoso.com <attacker@evil.example>"),
            rules={"cfo@contoso.com <attacker@evil.example>": "unreadable-destination"}),
    Attempt("audit-destination-quoted-local-part", "audit", "a quoted local part the filter cannot look up",
            sent_event=email_sent('"john doe"@example.org', "marketing@tailspintoys.com"),
            rules={'"john doe"@example.org': "unreadable-destination", **DEFAULT_VIOLATION}),
    Attempt("audit-destination-two-addresses", "audit", "one destination naming two addresses",
            sent_event=email_sent("a@x.example, marketing@tailspintoys.com"),
            rules={"a@x.example, marketing@tailspintoys.com": "unreadable-destination"}),
    Attempt("audit-destination-confusable-stop", "audit", "the destination with an ideographic full stop",
            sent_event=email_sent("marketing@tailspintoys.com\u3002"), rules=DEFAULT_VIOLATION),
    Attempt("audit-destination-upper-case", "audit", "the destination in upper case",
            sent_event=email_sent("MARKETING@TAILSPINTOYS.COM"), rules=DEFAULT_VIOLATION),
    Attempt("audit-destination-subaddress-of-listed-address", "audit", "a +tag on Contoso's listed address",
            sent_event=email_sent("ceo+news@gmail.example"), rules={"ceo+news@gmail.example": "product-held-through-csp"}),
]

# fmt: on

CORPUS: list[Attempt] = [
    *OUTBOUND_SUBJECTS,
    *OUTBOUND_RECIPIENTS,
    *OUTBOUND_IDENTITIES,
    *OUTBOUND_INJECTION,
    *OUTBOUND_PRIVACY,
    *INBOUND,
    *AUDIT,
]
