"""What a schedule event asks for: a kind of digest (`SENDERS` daily, `PARTNERS` weekly) and its `Period`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from mailfilter.vocabulary.errors import DigestRequestError

SENDERS, PARTNERS = "senders", "partners"
KINDS = (SENDERS, PARTNERS)


@dataclass(frozen=True)
class Period:
    """Whole UTC days, `first` to `last` inclusive."""

    first: date
    last: date

    @classmethod
    def day_before(cls, moment: datetime) -> Period:
        day = moment.astimezone(UTC).date() - timedelta(days=1)
        return cls(day, day)

    @classmethod
    def week_before(cls, moment: datetime) -> Period:
        last = moment.astimezone(UTC).date() - timedelta(days=1)
        return cls(last - timedelta(days=6), last)

    @property
    def key(self) -> str:
        return self.first.isoformat() if self.first == self.last else f"{self.first.isoformat()}..{self.last.isoformat()}"

    @property
    def since(self) -> datetime:
        return datetime.combine(self.first, time.min, UTC)

    @property
    def until(self) -> datetime:
        return datetime.combine(self.last, time.max, UTC)

    @property
    def label(self) -> str:
        if self.first == self.last:
            return _day(self.first)
        return f"{_day(self.first)} to {_day(self.last)}"


def _day(day: date) -> str:
    return f"{day.day} {day:%B %Y}"


@dataclass(frozen=True)
class DigestRequest:
    """Which digest, and for which period; `scheduled` says the period came from the schedule's time."""

    kind: str
    moment: datetime
    period: Period
    scheduled: bool


def request_from_event(event: Mapping[str, Any], now: datetime | None = None) -> DigestRequest:
    """The digest a schedule event asks for.

    The template's EventBridge Scheduler schedules send `{"digest": "senders"|"partners",
    "scheduled_time": "<aws.scheduler.scheduled-time>"}`; an `AWS::Events::Rule` target's
    `{"digest": ..., "time": ...}` works the same. An operator re-running one period gives
    `"period_end": "YYYY-MM-DD"` (the day, or the last of the seven days) instead of a time.
    """
    if not isinstance(event, Mapping):
        raise DigestRequestError("the event is not a JSON object")
    kind = event.get("digest")
    if kind not in KINDS:
        raise DigestRequestError(f'the event must say "digest": "senders" or "partners", not {kind!r}')
    if event.get("period_end") is not None:
        try:
            last = date.fromisoformat(str(event["period_end"]))
        except ValueError:
            raise DigestRequestError(f"period_end: expected a date such as 2025-01-14, not {event['period_end']!r}") from None
        first = last if kind == SENDERS else last - timedelta(days=6)
        return DigestRequest(kind, datetime.combine(last + timedelta(days=1), time.min, UTC), Period(first, last), scheduled=False)
    given = event.get("scheduled_time") or event.get("time")
    if given is None:
        moment = now or datetime.now(UTC)
    else:
        try:
            moment = datetime.fromisoformat(str(given).replace("Z", "+00:00"))
        except ValueError:
            raise DigestRequestError(f"scheduled_time: expected an ISO 8601 time, not {given!r}") from None
        moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    period = Period.day_before(moment) if kind == SENDERS else Period.week_before(moment)
    return DigestRequest(kind, moment, period, scheduled=True)
