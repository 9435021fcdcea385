"""common.db on SQLite: insert_ignore and add_unique (the first insert of a key wins,
repeats change nothing) and advisory_xact_lock (no such lock there: it does nothing)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import event
from sqlalchemy.orm import sessionmaker

from common.db import Db, advisory_xact_lock, make_engine
from tests.support import claims


@pytest.fixture
def db(tmp_path) -> Iterator[Db]:
    engine = make_engine(f"sqlite:///{tmp_path / 'claims.db'}")
    claims.metadata.create_all(engine)
    yield Db(sessionmaker(bind=engine, expire_on_commit=False))
    engine.dispose()


def test_the_first_insert_is_new_and_a_repeat_is_ignored(db: Db) -> None:
    claims.first_insert_wins(db)


def test_add_unique_keeps_the_new_entity_and_refuses_its_twin(db: Db) -> None:
    claims.first_entity_wins(db)


def test_advisory_xact_lock_does_nothing_on_sqlite(db: Db) -> None:
    engine = db._factory.kw["bind"]
    executed: list[str] = []

    def on_execute(conn, cursor, statement, parameters, context, executemany) -> None:
        executed.append(statement)

    event.listen(engine, "before_cursor_execute", on_execute)
    try:
        with db.transaction() as session:
            advisory_xact_lock(session, "activation", "L-7KQX-M2PD")
            advisory_xact_lock(session, "activation", "L-7KQX-M2PD")  # no lock to wait for
    finally:
        event.remove(engine, "before_cursor_execute", on_execute)
    assert executed == []
