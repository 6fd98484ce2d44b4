"""What an invalid send request still says about itself, read loosely, only to record its rejection.

A request that does not validate is never sent; its rejection is recorded where the sender
looks for its message: under the id, recipients and cloud it names, as far as they can be read.
"""

from __future__ import annotations

import json
from typing import Any

from mailfilter.vocabulary.model import Cloud


def loose_json(body: str) -> Any:
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return None


def given_id(data: Any, fallback: str) -> str:
    value = data.get("message_id") if isinstance(data, dict) else None
    return value if isinstance(value, str) and value.strip() and len(value) <= 128 else fallback


def given_recipients(data: Any) -> list[str]:
    """Whatever looks like a recipient in a request that did not validate, for the rejection record."""
    if not isinstance(data, dict):
        return []
    found = []
    for name in ("to", "cc", "bcc"):
        values = data.get(name)
        if isinstance(values, list):
            found.extend(v.strip().lower() for v in values if isinstance(v, str) and "@" in v and len(v) <= 254)
    return list(dict.fromkeys(found))[:50]


def given_cloud(data: Any) -> Cloud | None:
    value = data.get("cloud") if isinstance(data, dict) else None
    return Cloud(value) if value in Cloud._value2member_map_ else None
