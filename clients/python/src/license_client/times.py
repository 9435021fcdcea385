"""The kit's one parser of times: the data folder's files, the server's answers, errors."""

from __future__ import annotations

import functools
from datetime import datetime, timezone
from typing import Any


def parse_time(value: Any) -> datetime | None:
    """An ISO 8601 time with a zone (`Z` or an offset), in UTC; else None.

    The one parser of the kit's times (these files, the data folder's, the server's answers):
    a time without a zone is refused, not guessed to be UTC.

    >>> parse_time("2026-12-02T11:00:00+01:00"), parse_time("2026-12-02T10:00:00")
    (datetime.datetime(2026, 12, 2, 10, 0, tzinfo=datetime.timezone.utc), None)
    """
    if not isinstance(value, str) or not value:
        return None
    return _parse_time_text(value)


@functools.lru_cache(maxsize=64)  # validation reads the same few stored times again and again
def _parse_time_text(value: str) -> datetime | None:
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"  # Python 3.9/3.10's fromisoformat does not read "Z"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return moment.astimezone(timezone.utc)
