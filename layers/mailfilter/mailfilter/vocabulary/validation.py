"""pydantic's validation errors, worded for operators: field path and problem, every one of them."""

from __future__ import annotations

from pydantic import ValidationError


def problems(error: ValidationError, *, root: str = "(record)") -> list[tuple[str, str]]:
    """(field path, problem) for each error; `root` names a problem with the whole object."""
    return [
        (".".join(str(part) for part in detail["loc"]) or root, detail["msg"].removeprefix("Value error, "))
        for detail in error.errors(include_url=False)
    ]


def describe(error: ValidationError, *, root: str = "(record)", separator: str = "; ") -> str:
    """Every problem on one line (or as `separator` joins them): `field: problem; field: problem`."""
    return separator.join(f"{field}: {problem}" for field, problem in problems(error, root=root))
