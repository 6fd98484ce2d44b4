"""One reading of what a message says: the text patterns read and the addresses the filter decides on.

Every trigger (the gateway, the audit, the inbound filter, `explain`, release)
reads headers through these functions, so that what the filter decides on is
what a mail program shows the reader:

- text is decoded as Python's mail parser decodes it (RFC 2047 encoded words,
  charsets, lenient about broken words, as mail programs are), then normalised:
  Unicode NFKC, accents and other combining marks removed, invisible and
  bidirectional controls removed, every run of whitespace or control characters
  one space;
- an address header names exactly one clean mailbox, or it is unreadable: a
  header the parser had to repair is evidence against the message, never guessed around.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from email import policy as email_policy
from email.headerregistry import Address as HeaderAddress

from mailfilter.vocabulary.addresses import normalise_address
from mailfilter.vocabulary.errors import InvalidAddressError, UnreadableHeader
from mailfilter.vocabulary.message import Declaration
from mailfilter.vocabulary.model import Source

# The headers a vendor identity may declare with (docs/policy.md); anyone else's are ignored.
CATEGORY_HEADER = "X-Communication-Category"
PRODUCT_HEADER = "X-Product"
CLOUD_HEADER = "X-Cloud-Instance"


# Characters that show nothing but split a word for a pattern: Unicode format controls
# (category Cf: zero-width spaces and joiners, bidirectional controls, the soft hyphen,
# the BOM) and the default-ignorable letters and marks that are not Cf.
_IGNORABLE_NOT_CF = frozenset("\u034f\u115f\u1160\u17b4\u17b5\u180b\u180c\u180d\u180e\u180f\u3164\uffa0")
_VARIATION_SELECTORS = re.compile("[\ufe00-\ufe0f\U000e0100-\U000e01ef]")
_ESCAPED_BYTES = re.compile("[\udc80-\udcff]")
_FOLD = re.compile(r"\r?\n(?=[ \t])")
_STRAY_BREAK = re.compile(r"[\r\n]")
_BLANKS = re.compile(r"[\s\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def decoded(value: str) -> str:
    """A header value as a mail program shows it: 8-bit UTF-8 read as text, encoded words decoded as Python's parser does."""
    if _ESCAPED_BYTES.search(value):  # the parser keeps undecodable header bytes as surrogates
        value = value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    # Unfolded as RFC 5322 says (a line break before white space goes); any other break is a space.
    value = _STRAY_BREAK.sub(" ", _FOLD.sub("", value))
    if "=?" not in value:
        return value
    try:
        return str(email_policy.default.header_factory("X-Read", value))
    except Exception:  # whatever the parser makes of it, the text as written is what is left
        return value


def hides_a_line_break(value: str) -> bool:
    """An encoded word that decodes to a line break or control character (`=?utf-8?q?x=0D=0ABcc:...?=`).

    Harmless on the wire, but a mail program that decodes and re-writes the header would
    break it in two; decoded as Python's own mail parser decodes it, lenient about broken words.
    """
    if "=?" not in value:
        return False
    try:
        shown = str(email_policy.default.header_factory("X-Check", value))
    except Exception:  # whatever a parser makes of it, it is not kept as written
        return True
    return any(ord(ch) < 32 or ch in "\x7f\x85\u2028\u2029" for ch in shown)


def pattern_text(value: str) -> str:
    """The text that classification patterns read: decoded, NFKC, without marks, invisibles or line breaks."""
    text = decoded(value)
    if text.isascii():  # NFKD and NFKC leave ASCII as it is, and no ASCII character is a mark or invisible
        return _BLANKS.sub(" ", text).strip()
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not _ignorable(ch))
    text = _VARIATION_SELECTORS.sub("", unicodedata.normalize("NFKC", text))
    return _BLANKS.sub(" ", text).strip()


def _ignorable(ch: str) -> bool:
    category = unicodedata.category(ch)
    return category in ("Mn", "Me", "Cf") or ch in _IGNORABLE_NOT_CF


def mailbox(value: str, *, header: str = "From") -> str:
    """The one address a From-like header names, normalised; `UnreadableHeader` otherwise.

    Refused: a value the parser had to repair (`cfo@contoso.com <attacker@evil.example>`,
    `x <cfo@contoso.com>@evil.example`), more or fewer than one address, a group, and an
    address `normalise_address` refuses.
    """
    addresses = address_list(value, header=header, groups=False)
    if len(addresses) != 1:
        raise UnreadableHeader(f"{header} names {len(addresses)} addresses, not one")
    return addresses[0]


def address_list(value: str, *, header: str = "To", groups: bool = True) -> list[str]:
    """Every address an address-list header names, normalised, in order; `UnreadableHeader` on any defect.

    With `groups=False` a named group (`Customers: a@x.example;`) is refused too.
    """
    try:
        parsed = email_policy.default.header_factory(header, value)
    except Exception as error:  # the parser's own failure is one more way of being unreadable
        raise UnreadableHeader(f"{header} cannot be parsed: {error}") from None
    defects = getattr(parsed, "defects", ())
    if defects:
        raise UnreadableHeader(f"{header} is malformed: {defects[0]}")
    if not groups and any(group.display_name is not None for group in getattr(parsed, "groups", ())):
        raise UnreadableHeader(f"{header} is a group, not a mailbox")
    found = []
    for address in getattr(parsed, "addresses", ()):
        found.append(_clean(address, header))
    return found


def _clean(address: HeaderAddress, header: str) -> str:
    if not address.username or not address.domain:
        raise UnreadableHeader(f"{header} holds an address without a local part or domain")
    try:
        return normalise_address(address.addr_spec)
    except InvalidAddressError as error:
        raise UnreadableHeader(f"{header}: {error}") from None


def values(headers: Iterable[tuple[str, str]], name: str) -> list[str]:
    """Every value of header `name` (any case), in order: a repeated header is read every time."""
    wanted = name.lower()
    return [value for key, value in headers if key.lower() == wanted]


def header_declarations(headers: Iterable[tuple[str, str]]) -> tuple[Declaration, ...]:
    """One declaration per declaring header, as written; the classifier decides whether it is trusted."""
    found = []
    for key, value in headers:
        name = key.lower()
        if name == CATEGORY_HEADER.lower():
            found.append(Declaration(Source.HEADER, category=value))
        elif name == PRODUCT_HEADER.lower():
            found.append(Declaration(Source.HEADER, product=value))
        elif name == CLOUD_HEADER.lower():
            found.append(Declaration(Source.HEADER, cloud=value))
    return tuple(found)


def subject_text(headers: Iterable[tuple[str, str]]) -> str:
    """The pattern text of every Subject header, joined: a second Subject cannot hide what the first says."""
    return " ".join(pattern_text(value) for value in values(headers, "Subject")).strip()


# Scripts whose letters pass for Latin ones ("inv\u043eice" has a Cyrillic o): a word that mixes
# Latin with one of them hides from every pattern, so the classifier treats it as evasion.
# Latin letters that NFKC leaves alone but that nobody writes in business mail except to look
# like plain ones: IPA and phonetic letters, small capitals ("\u026a\u0274\u1d20\u1d0f\u026a\u1d04\u1d07").
_LOOKALIKE_SCRIPTS = ("CYRILLIC", "GREEK", "ARMENIAN", "CHEROKEE")
_PHONETIC_LETTERS = re.compile("[\u0250-\u02ff\u1d00-\u1dbf\ua720-\ua7ff\uab30-\uab6f]")
_WORD = re.compile(r"\w+")


def disguised_words(text: str) -> list[str]:
    """The words of a pattern text that no pattern can read as written: mixed-script or phonetic lookalikes."""
    found = []
    for word in _WORD.findall(text):
        if word.isascii():
            continue
        scripts = {unicodedata.name(ch, "").split(" ", 1)[0] for ch in word if ch.isalpha()}
        if ("LATIN" in scripts and scripts.intersection(_LOOKALIKE_SCRIPTS)) or _PHONETIC_LETTERS.search(word):
            found.append(word)
    return found
