"""Ages and dates on the command line: `7d`, `12h`, `2w`, or an ISO date or time (UTC unless it says otherwise)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import click

_AGE = re.compile(r"^(\d+)([dhw])$")
_UNITS = {"h": "hours", "d": "days", "w": "weeks"}


def parse_moment(value: str) -> datetime:
    """An age ("7d", "12h", "2w") counted back from now, or an ISO date or time (UTC unless it says otherwise)."""
    match = _AGE.match(value.strip())
    if match:
        return datetime.now(UTC) - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise click.BadParameter(f"{value!r}: expected an age such as 7d, 12h or 2w, or an ISO date such as 2025-01-14") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class Moment(click.ParamType):
    name = "AGE|DATE"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> datetime:
        return value if isinstance(value, datetime) else parse_moment(str(value))
