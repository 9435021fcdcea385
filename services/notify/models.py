"""The notify database: the mail queue (`deliveries`) and events parked as unusable."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from common.parking import ParkedEventColumns
from common.timeutil import UTCDateTime

# Rows the delivery worker may still claim; sent and failed rows are finished.
_OPEN = text("status IN ('pending', 'sending')")


class NotifyBase(DeclarativeBase):
    """The notify service's own metadata: no table is shared with another service."""


class Delivery(NotifyBase):
    """One email, recorded when its event arrives and worked off by the delivery worker.

    `payload` holds the event until the email is sent, because the email is rendered at send
    time; it is cleared then. auth's events name a password request, not a link: the link is
    asked of auth at send time and only ever in the message, never in this table.

    A notice (`domain.NOTICES`) goes to every user who has it on: its event's row (`user_id`
    "") is split at send time into one row per recipient (`user_id` theirs, same `event_id`)
    and ends `done`; each recipient's row is sent, retried and deduplicated on its own.
    """

    __tablename__ = "deliveries"
    __table_args__ = (
        # the idempotency key: a redelivered event (or a split done twice) adds nothing
        UniqueConstraint("event_id", "user_id", name="uq_deliveries_event_user"),
        # the worker's poll touches open rows only; finished rows stay out of the index
        Index(
            "ix_deliveries_due",
            "next_attempt_at",
            postgresql_where=_OPEN,
            sqlite_where=_OPEN,
        ),
        Index("ix_deliveries_recipient", "recipient"),
        Index("ix_deliveries_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[str] = mapped_column(String(100))
    # the user a notice's row goes to; "" for the event's own row (never NULL: NULLs would
    # not collide in the unique key)
    user_id: Mapped[str] = mapped_column(String(32), default="", server_default="")
    source: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(64))
    customer_id: Mapped[str | None] = mapped_column(String(32))
    # unknown until send time for licensing events (looked up in auth then)
    recipient: Mapped[str | None] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(300))
    # pending | sending | sent | failed | done (a notice split into its recipients' rows)
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[Any | None] = mapped_column(JSON)
    # pending: when to try; sending: when the claim's lease runs out; finished: NULL
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ParkedEvent(ParkedEventColumns, NotifyBase):
    """An event whose payload could not be used: kept for a human, never retried by itself."""
