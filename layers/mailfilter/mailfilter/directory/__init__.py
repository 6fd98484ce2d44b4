"""The customer directory: its file format, its validation, and how an address finds its customer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from mailfilter.directory.view import CustomerMatch
from mailfilter.model import Cloud


class Directory(Protocol):
    """Resolves the customer side of a message in one cloud, in one round trip."""

    def lookup(self, cloud: Cloud, addresses: Sequence[str]) -> dict[str, CustomerMatch | None]:
        """Map each normalised address to its customer, or None when it is not in the directory."""
        ...
