"""The small interfaces the functions' cores act through.

`mailfilter.aws` implements each against DynamoDB, S3 and SES; tests pass local
or fake ones, so nothing needs patching. Typed here once, used by every core.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from mailfilter.model import Cloud, Direction, Verdict


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
    ) -> Any: ...


class MailSender(Protocol):
    """SES v2 raw sending (`mailfilter.aws.mailer.Mailer`)."""

    def send(self, message: bytes, *, sender: str, recipients: Sequence[str], tags: Mapping[str, str] | None = None) -> str: ...


class DecisionRecorder(Protocol):
    """The decisions table (`mailfilter.aws.decisions.DecisionLog`)."""

    def record(self, verdict: Verdict, *, kind: str = "decision") -> Any: ...

    def record_outcome(
        self, message_id: str, direction: Direction, cloud: Cloud, recipients: Sequence[str], *, kind: str, error: str
    ) -> Any: ...


class Log(Protocol):
    """The parts of powertools' Logger the cores use."""

    def info(self, msg: object, *args: Any, **kwargs: Any) -> None: ...

    def warning(self, msg: object, *args: Any, **kwargs: Any) -> None: ...

    def error(self, msg: object, *args: Any, **kwargs: Any) -> None: ...
