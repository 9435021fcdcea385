"""UTC time helpers: every stored and exchanged time is timezone-aware UTC, and every time a
person reads on the server side (pages, receipts, emails) is written by `human_date` or
`human_datetime`."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import DateTime, Dialect
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(value: datetime | None) -> str | None:
    return None if value is None else as_utc(value).isoformat()


def as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def human_date(value: datetime | str | None) -> str:
    """The one way a day is written where a person reads it (the portal's pages rendered on
    the server, receipts, emails), in UTC: `"Dec 7, 2026"`. An ISO 8601 string (as services
    answer times) is read first; a naive time is taken as UTC; None is "".

    >>> human_date(datetime(2026, 12, 7, 23, 30, tzinfo=UTC))
    'Dec 7, 2026'
    >>> human_date("2026-12-08T00:30:00+01:00"), human_date("2026-12-07"), human_date(None)
    ('Dec 7, 2026', 'Dec 7, 2026', '')
    """
    if not value:
        return ""
    moment = _utc(value)
    return f"{moment:%b} {moment.day}, {moment.year}"


def human_datetime(value: datetime | str | None) -> str:
    """`human_date` with the time of day and its zone: `"Dec 7, 2026, 09:00 UTC"`.

    >>> human_datetime(datetime(2026, 12, 7, 9, 0, tzinfo=UTC))
    'Dec 7, 2026, 09:00 UTC'
    >>> human_datetime("2026-12-07T10:00:00+01:00")
    'Dec 7, 2026, 09:00 UTC'
    """
    if not value:
        return ""
    moment = _utc(value)
    return f"{human_date(moment)}, {moment:%H:%M} UTC"


def _utc(value: datetime | str) -> datetime:
    return as_utc(datetime.fromisoformat(value) if isinstance(value, str) else value)


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on PostgreSQL and SQLite alike (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use timezone-aware UTC")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else as_utc(value)
