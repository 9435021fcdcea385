"""Parked events: what a consumer keeps of an event it can never apply, for staff to read.

`common.handlers.reliable_handler` acks a poison message after the service's `park` stored
it, so it is never looped forever and never silently lost. Every service that parks keeps
the same table shape (`ParkedEventColumns`), once per `event_id`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from common.timeutil import UTCDateTime

EVENT_ID_MAX = 100
ERROR_MAX = 2000


class ParkedEventColumns:
    """Declarative mixin: `class ParkedEvent(ParkedEventColumns, Base)` in a service's models."""

    __tablename__ = "parked_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    # NULL when the payload had no usable event_id; NULLs never collide on a unique key
    event_id: Mapped[str | None] = mapped_column(String(EVENT_ID_MAX), unique=True)
    source: Mapped[str] = mapped_column(String(32))
    event_type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[Any | None] = mapped_column(JSON)
    error: Mapped[str] = mapped_column(Text)
    parked_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


def event_id_of(payload: Any) -> str | None:
    """The payload's `event_id` if it has a usable one (to park a bad payload only once)."""
    if isinstance(payload, dict):
        value = payload.get("event_id")
        if isinstance(value, str) and 0 < len(value) <= EVENT_ID_MAX and "\x00" not in value:
            return value
    return None


def parked_row(
    source: str, event_type: str, payload: Any, reason: str, now: datetime
) -> dict[str, Any]:
    """The values of a `parked_events` row for an event that can never be applied."""
    return {
        "event_id": event_id_of(payload),
        "source": source,
        "event_type": event_type,
        "payload": payload,
        "error": reason[:ERROR_MAX],
        "parked_at": now,
    }
