"""Times are timezone-aware UTC everywhere; a naive datetime is a bug, caught at the door."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, create_engine, insert, select
from sqlalchemy.exc import StatementError

from common.timeutil import UTCDateTime, as_utc, iso, utcnow

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
