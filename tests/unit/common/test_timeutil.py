"""Times are timezone-aware UTC everywhere; a naive datetime is a bug, caught at the door; a
person reads a day or a moment one way (`human_date`, `human_datetime`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, create_engine, insert, select
from sqlalchemy.exc import StatementError

from common.timeutil import UTCDateTime, as_utc, human_date, human_datetime, iso, utcnow

PARIS = timezone(timedelta(hours=1))


@pytest.fixture
def table():
    engine = create_engine("sqlite://")
    metadata = MetaData()
    table = Table(
        "t", metadata, Column("id", Integer, primary_key=True), Column("at", UTCDateTime())
    )
    metadata.create_all(engine)
    with engine.connect() as connection:
        yield connection, table


def test_utcnow_is_aware_utc() -> None:
    assert utcnow().tzinfo is UTC


def test_iso_and_as_utc() -> None:
    assert iso(None) is None
    assert iso(datetime(2026, 1, 1, 10, tzinfo=PARIS)) == "2026-01-01T09:00:00+00:00"
    assert as_utc(datetime(2026, 1, 1, 9)) == datetime(2026, 1, 1, 9, tzinfo=UTC)


def test_naive_datetimes_are_rejected() -> None:
    with pytest.raises(ValueError, match="naive"):
        UTCDateTime().process_bind_param(datetime(2026, 1, 1, 9), None)


def test_naive_datetimes_are_rejected_by_the_database_layer(table) -> None:
    connection, t = table
    with pytest.raises(StatementError):
        connection.execute(insert(t).values(id=1, at=datetime(2026, 1, 1, 9)))


def test_aware_datetimes_round_trip_as_utc(table) -> None:
    connection, t = table
    connection.execute(insert(t).values(id=1, at=datetime(2026, 1, 1, 10, tzinfo=PARIS)))
    connection.execute(insert(t).values(id=2, at=None))
    rows = dict(connection.execute(select(t.c.id, t.c.at)).all())
    assert rows[1] == datetime(2026, 1, 1, 9, tzinfo=UTC)
    assert rows[1].tzinfo is not None and rows[1].utcoffset() == timedelta(0)
    assert rows[2] is None


def test_comparisons_use_utc_whatever_zone_was_given(table) -> None:
    connection, t = table
    connection.execute(insert(t).values(id=1, at=datetime(2026, 1, 1, 9, 30, tzinfo=UTC)))
    # 10:00 in Paris is 09:00 UTC, earlier than the stored 09:30 UTC
    cutoff = datetime(2026, 1, 1, 10, 0, tzinfo=PARIS)
    assert connection.execute(select(t.c.id).where(t.c.at > cutoff)).scalars().all() == [1]


@pytest.mark.parametrize(
    ("value", "day", "moment"),
    [
        (datetime(2026, 12, 7, 9, 0, tzinfo=UTC), "Dec 7, 2026", "Dec 7, 2026, 09:00 UTC"),
        # another zone is written in UTC, across midnight too
        (datetime(2026, 12, 8, 0, 30, tzinfo=PARIS), "Dec 7, 2026", "Dec 7, 2026, 23:30 UTC"),
        # a naive time is UTC (SQLite gives those)
        (datetime(2026, 3, 5, 7, 4), "Mar 5, 2026", "Mar 5, 2026, 07:04 UTC"),
        # services' ISO strings, as the receipt page gets them
        ("2026-11-28T09:30:00+00:00", "Nov 28, 2026", "Nov 28, 2026, 09:30 UTC"),
        ("2026-11-28T09:30:00Z", "Nov 28, 2026", "Nov 28, 2026, 09:30 UTC"),
        ("2027-01-01T00:15:00+01:00", "Dec 31, 2026", "Dec 31, 2026, 23:15 UTC"),
        ("2026-12-07", "Dec 7, 2026", "Dec 7, 2026, 00:00 UTC"),
        (None, "", ""),
        ("", "", ""),
    ],
)
def test_a_day_and_a_moment_as_people_read_them(value, day: str, moment: str) -> None:
    assert human_date(value) == day
    assert human_datetime(value) == moment


def test_text_that_is_no_time_is_an_error_not_shown_as_it_is() -> None:
    with pytest.raises(ValueError):
        human_date("next Tuesday")
