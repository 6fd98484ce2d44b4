"""The small interfaces the functions' cores act through.

`mailfilter.aws` implements each against DynamoDB, S3 and SES; tests pass local
or fake ones, so nothing needs patching. Typed here once, used by every core.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from mailfilter.delivery.raw import Mail
from mailfilter.directory.view import CustomerMatch
from mailfilter.policy.config import Policy
from mailfilter.vocabulary.model import Cloud, Direction, Verdict


class QuarantineStore(Protocol):
    """Kept mail and its decision (`mailfilter.aws.quarantine.Quarantine`)."""

    def put(
        self,
        *,
        message_id: str,
        direction: str,
        cloud: str,
        recipients: Sequence[str],
        customers: Sequence[str | None],
        request: Mapping[str, Any],
        verdict: Mapping[str, Any],
        partner_contacts: Mapping[str, Sequence[str]] | None = None,
        raw: Mapping[str, str] | None = None,
    ) -> Any: ...


class StoredMail(Protocol):
    """The outgoing messages a send request names by `raw_key` (`mailfilter.aws.raw_mail.MailBucket`).

    `read_outgoing` raises `StoredMessageMissing` (the request is refused: it names nothing),
    `StoredMessageTooLarge` (refused: SES would never send it) or `MailUnavailable` (S3 failed:
    the record is retried).
    """

    def read_outgoing(self, key: str, *, max_bytes: int) -> bytearray: ...

    def preserve_outgoing(self, key: str, message_id: str) -> dict[str, str]: ...


class MailSender(Protocol):
    """SES v2 raw sending (`mailfilter.aws.mailer.Mailer`)."""

    def send(self, message: Mail | bytes, *, sender: str, recipients: Sequence[str], tags: Mapping[str, str] | None = None) -> str: ...


class DecisionRecorder(Protocol):
    """The decisions table (`mailfilter.aws.decisions.DecisionLog`)."""

    table_name: str

    def record(self, verdict: Verdict, *, kind: str = "decision") -> Any: ...

    def items(self, verdict: Verdict, *, kind: str = "decision") -> list[dict[str, Any]]: ...

    def outcome_items(
        self, message_id: str, direction: Direction, cloud: Cloud, recipients: Sequence[str], *, kind: str, error: str
    ) -> list[dict[str, Any]]: ...

    def record_outcome(
        self, message_id: str, direction: Direction, cloud: Cloud, recipients: Sequence[str], *, kind: str, error: str
    ) -> Any: ...


@dataclass(frozen=True, slots=True)
class Claim:
    """The message is this invocation's to handle: `steps` are the sends an earlier attempt completed."""

    steps: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Done:
    """The message was handled before: `result` is what that invocation returned."""

    result: dict[str, Any]


class Ledger(Protocol):
    """Each message once (`mailfilter.aws.ledger.MessageLedger`): claim it, mark its sends, finish it with its records."""

    def claim(self, message_id: str) -> Claim | Done: ...

    def mark(self, message_id: str, step: str) -> None: ...

    def finish(
        self, message_id: str, result: dict[str, Any], records: Sequence[tuple[str, dict[str, Any]]], step: str | None = None
    ) -> None: ...

    def abandon(self, message_id: str) -> None: ...

    def register(self, context: Any) -> None: ...

    def once(self, key: str, work: Callable[[], dict[str, Any]]) -> dict[str, Any]: ...


class Log(Protocol):
    """The parts of powertools' Logger the cores use."""

    def info(self, msg: object, *args: Any, **kwargs: Any) -> None: ...

    def warning(self, msg: object, *args: Any, **kwargs: Any) -> None: ...

    def error(self, msg: object, *args: Any, **kwargs: Any) -> None: ...


class Directory(Protocol):
    """Resolves the customer side of a message in one cloud, in one round trip."""

    def lookup(self, cloud: Cloud, addresses: Sequence[str]) -> dict[str, CustomerMatch | None]:
        """Map each normalised address to its customer, or None when it is not in the directory."""
        ...


class PolicySource(Protocol):
    def current(self) -> Policy: ...


class RawMailStore(Protocol):
    """The raw messages SES stored (`mailfilter.aws.raw_mail.MailBucket`)."""

    def read(self, message_id: str, *, max_bytes: int) -> bytes: ...

    def read_location(self, location: Mapping[str, str], *, max_bytes: int) -> bytes: ...

    def preserve(self, message_id: str) -> dict[str, str]: ...

    def location(self, message_id: str) -> dict[str, str]: ...


@dataclass(frozen=True, slots=True)
class HeaderBlock:
    """The bytes read from the start of a stored message (its header block and perhaps a little body), and its size."""

    head: bytes
    size: int


class StoredHeaders(Protocol):
    """The header blocks of stored outgoing messages (`mailfilter.aws.raw_mail.MailBucket`)."""

    def header_block(self, key: str) -> HeaderBlock: ...


class Queue(Protocol):
    def send(self, request: dict[str, Any]) -> str: ...


CountMetric = Callable[..., None]  # (name, value, category, cloud, mode=None)


class ReadPeriod(Protocol):
    """A period's decision and release records, for the digests (`mailfilter.aws.trace.DecisionTrace`, its `by-day` index)."""

    def __call__(self, since: datetime, until: datetime, /) -> Iterable[Mapping[str, Any]]: ...


class Once(Protocol):
    """`work` run the first time `key` is seen; later calls answered `{"replayed": True, ...}` (`MessageLedger.once`)."""

    def __call__(self, key: str, work: Callable[[], dict[str, Any]], /) -> dict[str, Any]: ...
