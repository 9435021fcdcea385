"""common.db.insert_ignore on SQLite: the first insert of a key wins, repeats change nothing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Column, MetaData, String, Table, select
from sqlalchemy.orm import sessionmaker

from common.db import Db, insert_ignore, make_engine

metadata = MetaData()
claims = Table(
    "claims",
    metadata,
    Column("event_id", String(64), primary_key=True),
    Column("applied_by", String(20), nullable=False),
)


@pytest.fixture
def db(tmp_path) -> Iterator[Db]:
    engine = make_engine(f"sqlite:///{tmp_path / 'claims.db'}")
    metadata.create_all(engine)
    yield Db(sessionmaker(bind=engine, expire_on_commit=False))
    engine.dispose()


def test_the_first_insert_is_new_and_a_repeat_is_ignored(db: Db) -> None:
    with db.transaction() as session:
        assert insert_ignore(session, claims, {"event_id": "e1", "applied_by": "first"}) is True
    with db.transaction() as session:
        assert insert_ignore(session, claims, {"event_id": "e1", "applied_by": "again"}) is False
        assert insert_ignore(session, claims, {"event_id": "e2", "applied_by": "other"}) is True
    with db.transaction() as session:
        rows = session.execute(select(claims).order_by(claims.c.event_id)).all()
    assert [tuple(row) for row in rows] == [("e1", "first"), ("e2", "other")]
