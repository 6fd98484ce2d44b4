"""A message as bytes: its header fields as written, and its body, so copies leave as they came.

The filter changes only the header fields it means to change (docs/outbound.md,
docs/inbound.md list them); every other field keeps its name, value and folding
byte for byte, and the body is never touched. The header block is split as mail
software splits it (Python's own parser, which the classifier reads with): a
field is a line `name:` of printable ASCII, a line starting with a space or tab
continues it, and the block ends at the first empty line or at the first line
that is neither, which starts the body and is kept there.

One deliberate change on the way in: a lone CR inside the header block (one not
followed by LF) becomes a space. Some readers take it for a line break and some
do not, so left in place it could show one reader a header another never saw;
the classifier reads the message after this change, as it is delivered.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from email import policy as email_policy
from email.header import Header

# Python's feedparser: a header line is a run of printable ASCII other than ':' then ':'
# (possibly empty), or a continuation starting with white space.
_FIELD_NAME = re.compile(rb"^([\x21-\x39\x3b-\x7e]*):")
_LONE_CR = re.compile(rb"\r(?!\n)")
_MBOX_FROM = b"From "


@dataclass(frozen=True, slots=True)
class HeaderField:
    """One header field exactly as written: name, colon, value and folding, with its final line break."""

    raw: bytes

    @property
    def name(self) -> str:
        return self.raw.split(b":", 1)[0].decode("ascii")

    @property
    def key(self) -> str:
        return self.name.lower()

    @property
    def value(self) -> bytes:
        """The value as written, folding included, without the leading white space or the final line break."""
        return self.raw.split(b":", 1)[1].lstrip(b" \t").rstrip(b"\r\n")

    def text(self) -> str:
        """The value as one line of text (unfolded; bytes that are not UTF-8 read as Latin-1)."""
        unfolded = re.sub(rb"\r?\n(?=[ \t])", b"", self.value)
        try:
            return unfolded.decode("utf-8")
        except UnicodeDecodeError:
            return unfolded.decode("latin-1")


Buffer = bytes | bytearray | memoryview


@dataclass(frozen=True, slots=True)
class Mail:
    """A message ready to send, as the byte strings it is made of.

    A 35 MB body is one of the parts, never copied to join it to new header fields:
    `mailfilter.aws.mailer` streams the parts to SES. `bytes(mail)` joins them, for tests and small tools.
    """

    parts: tuple[Buffer, ...]

    def __bytes__(self) -> bytes:
        return b"".join(self.parts)

    @property
    def size(self) -> int:
        return sum(memoryview(part).nbytes for part in self.parts)

    def isascii(self) -> bool:
        return not any(_NOT_ASCII.search(part) for part in self.parts)


_NOT_ASCII = re.compile(rb"[\x80-\xff]")


@dataclass(frozen=True, slots=True)
class RawMessage:
    fields: tuple[HeaderField, ...]
    body: Buffer  # a memoryview into the stored message when it was read from S3: never copied
    newline: bytes  # the line break the header block uses: b"\r\n" or b"\n"
    separator: bytes  # the empty line between header block and body as written; b"" when there was none

    def __bytes__(self) -> bytes:
        """Header fields, the empty line (added where the original had none), then the body as written."""
        return bytes(self.mail())

    def mail(self) -> Mail:
        return Mail((*(field.raw for field in self.fields), self.separator or self.newline, self.body))

    def all(self, name: str) -> list[HeaderField]:
        key = name.lower()
        return [field for field in self.fields if field.key == key]

    def items(self) -> list[tuple[str, str]]:
        """(name, value) of every field, values as unfolded text: what `mailfilter.vocabulary.reading` reads."""
        return [(field.name, field.text()) for field in self.fields]

    def without(self, names: Iterable[str]) -> RawMessage:
        keys = {name.lower() for name in names}
        return replace(self, fields=tuple(field for field in self.fields if field.key not in keys))

    def replacing(self, name: str, fields: Sequence[HeaderField]) -> RawMessage:
        """Every field called `name` replaced by `fields`, at the place of the first one (or at the end)."""
        key = name.lower()
        kept: list[HeaderField] = []
        placed = False
        for field in self.fields:
            if field.key != key:
                kept.append(field)
            elif not placed:
                kept.extend(fields)
                placed = True
        if not placed:
            kept.extend(fields)
        return replace(self, fields=tuple(kept))


def split_message(raw: bytes | bytearray) -> RawMessage:
    """Header fields and body of a raw message, as mail software reads them; nothing is dropped but an mbox "From " line.

    The body of a `bytearray` (a message read from S3) is a view into it, not a copy.
    """
    first_break = raw.find(b"\n")
    newline = b"\r\n" if first_break > 0 and raw[first_break - 1 : first_break] == b"\r" else b"\n"
    fields: list[bytearray] = []
    position = 0
    if raw.startswith(_MBOX_FROM):  # an mbox envelope line, not a header field (Python's parser drops it too)
        position = _line_end(raw, 0)
    while position < len(raw):
        end = _line_end(raw, position)
        line = raw[position:end]
        content = line.rstrip(b"\r\n")
        if not content.strip(b"\r"):
            return _message(fields, _rest(raw, end), newline, bytes(line))
        if content[:1] in (b" ", b"\t") and fields:
            fields[-1] += _LONE_CR.sub(b" ", line)
        elif _FIELD_NAME.match(content) and not content.startswith(b":"):
            fields.append(bytearray(_LONE_CR.sub(b" ", line)))
        else:  # the first line that is not a header field starts the body, as in Python's parser
            return _message(fields, _rest(raw, position), newline, b"")
        position = end
    return _message(fields, b"", newline, b"")


def _rest(raw: bytes | bytearray, start: int) -> Buffer:
    return memoryview(raw)[start:] if isinstance(raw, bytearray) else raw[start:]


def _line_end(raw: bytes | bytearray, start: int) -> int:
    end = raw.find(b"\n", start)
    return len(raw) if end == -1 else end + 1


def _message(fields: list[bytearray], body: Buffer, newline: bytes, separator: bytes) -> RawMessage:
    complete = [bytes(field) if field.endswith(b"\n") else bytes(field) + newline for field in fields]
    return RawMessage(tuple(HeaderField(field) for field in complete), body, newline, separator)


MAX_LINE = 998  # RFC 5322's limit for one line, without its line break

# Fields that SES rejects when repeated (docs: "Amazon SES header fields"). A kept field is kept once.
SES_SINGLE_FIELDS = frozenset(
    {
        "accept-language",
        "archived-at",
        "auto-submitted",
        "bounces-to",
        "comments",
        "content-alternative",
        "content-base",
        "content-class",
        "content-description",
        "content-disposition",
        "content-duration",
        "content-id",
        "content-language",
        "content-length",
        "content-location",
        "content-md5",
        "content-transfer-encoding",
        "content-type",
        "date",
        "delivered-to",
        "disposition-notification-options",
        "disposition-notification-to",
        "dkim-signature",
        "domainkey-signature",
        "errors-to",
        "from",
        "importance",
        "in-reply-to",
        "keywords",
        "list-archive",
        "list-help",
        "list-id",
        "list-owner",
        "list-post",
        "list-subscribe",
        "list-unsubscribe",
        "list-unsubscribe-post",
        "message-context",
        "message-id",
        "mime-version",
        "organization",
        "original-from",
        "original-message-id",
        "original-recipient",
        "original-subject",
        "precedence",
        "priority",
        "references",
        "reply-to",
        "return-path",
        "return-receipt-to",
        "sender",
        "solicitation",
        "sensitivity",
        "subject",
        "thread-index",
        "thread-topic",
        "user-agent",
        "vbr-info",
    }
)


def new_field(name: str, value: str, newline: bytes) -> HeaderField:
    """A field the filter writes: one line of text (CR and LF as spaces, NUL dropped), folded, non-ASCII
    RFC 2047-encoded, so nothing can be injected. Callers defuse encoded words that hide a line break first."""
    value = value.replace("\r", " ").replace("\n", " ").replace("\x00", "")
    charset = "us-ascii" if value.isascii() else "utf-8"
    linesep = newline.decode("ascii")
    encoded = Header(value, charset, header_name=name).encode(linesep=linesep)
    if any(len(line) > MAX_LINE - len(name) - 2 for line in encoded.split(linesep)):
        # An unbreakable token longer than a line: encoded words can be split where plain text cannot.
        encoded = Header(value, "utf-8", header_name=name).encode(linesep=linesep)
    return HeaderField(f"{name}: {encoded}".encode("ascii") + newline)


def address_field(name: str, addresses: str, newline: bytes) -> HeaderField:
    """An address-list field the filter writes, folded and encoded as the standard library writes one."""
    policy = email_policy.SMTP.clone(linesep=newline.decode("ascii"))
    return HeaderField(policy.fold_binary(name, addresses))
