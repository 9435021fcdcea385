"""common.db.insert_ignore on PostgreSQL: the dialect's ON CONFLICT DO NOTHING, no error."""

from __future__ import annotations

import pytest
from sqlalchemy import Column, MetaData, String, Table, select
from sqlalchemy.orm import sessionmaker

from common.db import Db, insert_ignore, make_engine

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

metadata = MetaData()
claims = Table(
    "claims",
    metadata,
    Column("event_id", String(64), primary_key=True),
    Column("applied_by", String(20), nullable=False),
)


def test_the_first_insert_is_new_and_a_repeat_is_ignored(fresh_database) -> None:
    engine = make_engine(fresh_database("insert_ignore"), pool_size=2)
    try:
        metadata.create_all(engine)
        db = Db(sessionmaker(bind=engine, expire_on_commit=False))
        with db.transaction() as session:
            assert insert_ignore(session, claims, {"event_id": "e1", "applied_by": "first"})
        with db.transaction() as session:
            # no IntegrityError: the transaction goes on and commits the next claim
            assert not insert_ignore(session, claims, {"event_id": "e1", "applied_by": "again"})
            assert insert_ignore(session, claims, {"event_id": "e2", "applied_by": "other"})
        with db.transaction() as session:
            rows = session.execute(select(claims).order_by(claims.c.event_id)).all()
        assert [tuple(row) for row in rows] == [("e1", "first"), ("e2", "other")]
    finally:
        engine.dispose()
