"""Address and domain normalisation, and the lookup keys one recipient produces.

Every address that enters the filter (directory rows, event recipients, senders)
goes through these functions, so that "Alice@Contoso.COM." and
"alice+billing@contoso.com" meet the same directory entry.
"""

from __future__ import annotations

import re
from functools import lru_cache

import idna

from mailfilter.vocabulary.errors import InvalidAddressError

# A conservative local part: RFC 5322 dot-atom characters. Quoted local parts
# are legal but never appear in customer directories; rejecting them keeps
# header injection (CR, LF, NUL, quotes) out of everything downstream.
_LOCAL_PART = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
_MAX_ADDRESS_LENGTH = 254
_MAX_LOCAL_LENGTH = 64
SUBADDRESS_SEPARATOR = "+"


@lru_cache(maxsize=4096)  # pure; the same few domains come in every message (refusals are not cached)
def normalise_domain(domain: str) -> str:
    """Map a domain per UTS #46, drop a trailing dot, and encode it as IDNA (punycode), lower case.

    The mapping comes first: it turns the ideographic and full-width full stops (U+3002,
    U+FF0E, U+FF61) into "." and removes invisible characters such as U+200B, so
    "contoso.com\u3002" and "contoso.com.\u200b" lose their trailing dot like "contoso.com." does.
    """
    try:
        mapped = idna.uts46_remap(domain.strip(), std3_rules=True, transitional=False)
    except idna.IDNAError as error:
        raise InvalidAddressError(f"invalid domain {domain!r}: {error}") from None
    candidate = mapped.rstrip(".")
    if not candidate:
        raise InvalidAddressError("empty domain")
    try:
        ascii_domain = idna.encode(candidate).decode("ascii")
    except idna.IDNAError as error:
        raise InvalidAddressError(f"invalid domain {domain!r}: {error}") from None
    if "." not in ascii_domain:
        raise InvalidAddressError(f"domain {domain!r} has no dot")
    return ascii_domain.lower()


def normalise_address(address: str) -> str:
    """Return the canonical form of one address: local part lower-cased, domain as IDNA."""
    candidate = address.strip()
    local, at, domain = candidate.rpartition("@")
    if not at or not local:
        raise InvalidAddressError(f"{address!r} is not of the form local@domain")
    if len(local) > _MAX_LOCAL_LENGTH or not _LOCAL_PART.match(local):
        raise InvalidAddressError(f"{address!r} has an invalid local part")
    normalised = f"{local.lower()}@{normalise_domain(domain)}"
    if len(normalised) > _MAX_ADDRESS_LENGTH:
        raise InvalidAddressError(f"{address!r} is longer than {_MAX_ADDRESS_LENGTH} characters")
    return normalised


def without_subaddress(address: str) -> str:
    """Strip a sub-address tag: alice+billing@contoso.com -> alice@contoso.com."""
    local, _, domain = address.partition("@")
    base, separator, _tag = local.partition(SUBADDRESS_SEPARATOR)
    return f"{base}@{domain}" if separator and base else address


def domain_of(address: str) -> str:
    return address.rpartition("@")[2]


def domain_and_parents(domain: str) -> list[str]:
    """contoso.com's mail.eu.contoso.com -> [mail.eu.contoso.com, eu.contoso.com, contoso.com].

    A bare top-level domain is never a candidate: no customer owns "com".
    """
    labels = domain.split(".")
    return [".".join(labels[index:]) for index in range(len(labels) - 1)]


def address_candidates(address: str) -> list[str]:
    """Exact address first, then the address without its sub-address tag."""
    base = without_subaddress(address)
    return [address] if base == address else [address, base]


# Masking addresses in free text (a validation error echoes its input, an SES error names a
# recipient). Every at-sign is a candidate, whatever surrounds it: "@", the full-width and small
# at-signs, and "%40" (percent-encoded). The local part before it is a quoted string when a quote
# closes right before the at-sign ("john doe"@example.org, "a@b"@contoso.com), otherwise the whole
# whitespace-free word before it (backslash-escaped spaces included), so an address containing "<",
# ">", "(", "%" or "\" is masked as a whole rather than only its tail. Every scan is a simple
# regex or str.rfind confined to the text between the previous address and this at-sign, so the
# work is linear in the length of the text.
_ADDRESS_IN_TEXT = re.compile(r"@|\uff20|\ufe6b|%40")
_QUOTE_BEFORE_AT = re.compile(r'"(?=@|\uff20|\ufe6b|%40)')
# Matched on the reversed text: the word before an at-sign, read backwards ("\ " reversed is " \").
_WORD_BACKWARDS = re.compile(r"(?:\S|\s\\)*")
# An IP literal ([192.0.2.1], [IPv6:2001:db8::1]) or a domain, Unicode included, up to a delimiter.
_DOMAIN_IN_TEXT = re.compile(r"\[[^\]\s\"@\uff20\ufe6b]*\]?|(?:[^\s@\uff20\ufe6b%<>()\[\]{}'\"`,;\\]|%(?!40))*")
_CLOSER = {"<": ">", "(": ")", "[": "]", "{": "}", "'": "'", '"': '"', "`": "`"}
# What may stand before an address and is not part of it: a label and an opening bracket or quote
# closed right after the domain (<john@..>, input_value='john@..', "to":"john@.."), or the list
# separator between two addresses (a@contoso.com,b@contoso.com).
_SEPARATORS = re.compile(r"[,;:]*")
_OPENED = re.compile(r"(?:.*[=:,;])?[<(\[{'\"`]+", re.DOTALL)


def mask(address: str) -> str:
    """alice@contoso.com -> a***@contoso.com: enough for an operator to follow a message, not to harvest addresses."""
    local, at, domain = address.rpartition("@")
    return f"{local[:1]}***@{domain}" if at else "***"


def _opening_quote(text: str, closing: int, floor: int) -> int | None:
    """Where the quoted string that `closing` ends opens: the nearest unescaped quote before it, else the nearest quote."""
    nearest, end = None, closing
    while (found := text.rfind('"', floor, end)) >= 0:
        nearest = found if nearest is None else nearest
        slashes = found
        while slashes > floor and text[slashes - 1] == "\\":
            slashes -= 1
        if (found - slashes) % 2 == 0:
            return found
        end = slashes
    return nearest


def _quoted_local_parts(text: str) -> dict[int, int]:
    """At-sign index -> index of the quote that opens the quoted local part right before it."""
    quoted: dict[int, int] = {}
    floor = 0
    for closing in _QUOTE_BEFORE_AT.finditer(text):
        at = closing.end()
        opening = _opening_quote(text, closing.start(), floor)
        if opening is None:
            floor = closing.start()  # this quote may open a later quoted string
        else:
            quoted[at] = opening
            floor = at + 1
    return quoted


def _local_start(text: str, word_start: int, at: int, domain_end: int, *, follows_address: bool) -> int:
    """Where the local part starts in the word before its at-sign: after an opening bracket closed after the domain, or a list separator."""
    word = text[word_start:at]
    closer = text[domain_end : domain_end + 1]
    opened = _OPENED.match(word)
    if opened and closer and _CLOSER[word[opened.end() - 1]] == closer:
        return word_start + opened.end()
    return word_start + _SEPARATORS.match(word).end() if follows_address else word_start


def mask_in_text(text: str) -> str:
    """Every address of a free text (a validation error echoes its input) masked as `mask` does: j***@contoso.de.

    Quoted local parts ("john doe"@example.org -> "***@example.org), Unicode local parts and
    domains, IP-literal domains and addresses with unusual characters are masked too; when in
    doubt more is masked, never less. Text without an at-sign comes back unchanged.
    """
    if not _ADDRESS_IN_TEXT.search(text):
        return text
    quoted = _quoted_local_parts(text) if '"' in text else {}
    spans = iter(sorted(quoted.items()))  # (at-sign, opening quote), in order and disjoint
    span = next(spans, None)
    backwards = text[::-1]
    size = len(text)
    pieces: list[str] = []
    copied = floor = 0  # text[:copied] is in pieces; no local part reaches back before floor
    carried = None  # where a local part that runs on through an at-sign (a@b@contoso.com) starts
    for sign in _ADDRESS_IN_TEXT.finditer(text):
        at, after = sign.start(), sign.end()
        if at < floor:
            continue  # in the domain of the address before
        while span is not None and span[0] < at:
            span = next(spans, None)
        if span is not None and span[1] < at < span[0]:
            continue  # inside a quoted local part: "a@b"@contoso.com
        opening = quoted.get(at)
        if carried is not None:
            start = carried
        elif opening is not None and opening >= floor:
            start = opening
        else:
            start = at - len(_WORD_BACKWARDS.match(backwards, size - at, size - floor).group())
        if start == at:  # nothing before the at-sign ("@handle", "meet @ 5"): not an address
            floor = after
            continue
        domain_end = _DOMAIN_IN_TEXT.match(text, after).end()
        floor = domain_end
        if _ADDRESS_IN_TEXT.match(text, domain_end):
            carried = start
            continue
        carried = None
        if start != opening:
            start = _local_start(text, start, at, domain_end, follows_address=0 < copied == start)
            if start == at:
                continue
        pieces += [text[copied:start], text[start], "***", text[at:domain_end]]
        copied = domain_end
    pieces.append(text[copied:])
    return "".join(pieces)
