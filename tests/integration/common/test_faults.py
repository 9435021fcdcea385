"""Faults of the database answered, not leaked, on a real PostgreSQL.

A backend terminated under a transaction (`pg_terminate_backend`, as a failover does) is a
`DatabaseUnavailable` (503 `service_unavailable` at the gateway), never SQLAlchemy's error
(a 500); a read is retried once on a fresh connection; and the step that marks outbox
events published, after the commit, never turns the committed change into an error.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlparse

import pytest
from sqlalchemy import Column, Engine, Integer, MetaData, String, Table, event, select, text
from sqlalchemy.orm import Session, sessionmaker

from common.context import set_request_id
from common.db import DatabaseUnavailable, Db, make_engine
from common.errors import ServiceUnavailable
from common.outbox import outbox_table, relay
from common.unit_of_work import Outcome, UnitOfWork
from tests.support.blips import terminate_backends

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

metadata = MetaData()
notes = Table(
    "notes",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("text", String(100), nullable=False),
)
outbox = outbox_table(metadata)


@dataclass
class Notes:
    session: Session

    def add(self, value: str) -> int:
        return self.session.execute(notes.insert().values(text=value)).inserted_primary_key[0]

    def count(self) -> int:
        return len(self.session.execute(select(notes.c.id)).all())


def add_note(repo: Notes, value: str) -> Outcome:
    note_id = repo.add(value)
    return Outcome(note_id, [("note_added", {"note_id": note_id})])


def count_notes(repo: Notes) -> int:
    return repo.count()


@pytest.fixture
def engine(fresh_database) -> Iterator[Engine]:
    engine = make_engine(fresh_database("faults"), pool_size=2)
    metadata.create_all(engine)
    yield engine
    engine.dispose()


def database_of(engine: Engine) -> str:
    return urlparse(engine.url.render_as_string(hide_password=False)).path.lstrip("/")


def db_of(engine: Engine) -> Db:
    return Db(sessionmaker(bind=engine, expire_on_commit=False), "notes")


def terminate_on(engine: Engine, statement_start: str, times: int = 1) -> list[int]:
    """Terminate the connection's own backend just before it runs a statement starting with
    `statement_start` (the first `times` such statements): a drop at the worst moment."""
    terminated: list[int] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _drop(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith(statement_start) and len(terminated) < times:
            pid = conn.connection.dbapi_connection.info.backend_pid
            assert terminate_backends(database_of(engine), pid) == 1
            terminated.append(pid)

    return terminated


def test_a_backend_terminated_mid_transaction_is_unavailable_not_an_internal_error(
    engine,
) -> None:
    db = db_of(engine)
    dropped = terminate_on(engine, "INSERT")
    with pytest.raises(DatabaseUnavailable) as raised, db.transaction() as session:
        session.execute(notes.insert().values(text="lost"))
    assert dropped and raised.value.code == "service_unavailable"
    assert isinstance(raised.value, ServiceUnavailable) and not raised.value.during_commit
    # the pool discarded the dead connection: the next transaction works
    with db.transaction() as session:
        session.execute(notes.insert().values(text="kept"))
        assert session.execute(select(notes.c.text)).scalars().all() == ["kept"]


def test_a_backend_terminated_at_commit_says_the_outcome_is_unknown(engine) -> None:
    db = db_of(engine)
    with pytest.raises(DatabaseUnavailable) as raised, db.transaction() as session:
        session.execute(notes.insert().values(text="maybe"))
        # the backend goes between the last statement and the COMMIT
        pid = session.execute(text("SELECT pg_backend_pid()")).scalar_one()
        assert terminate_backends(database_of(engine), pid) == 1
    assert raised.value.during_commit  # the caller retries with its request key
    with db.transaction() as session:
        assert session.execute(select(notes.c.text)).scalars().all() == []


def test_a_read_is_retried_once_on_a_fresh_connection(engine) -> None:
    uow = UnitOfWork(db_of(engine), Notes, outbox, lambda *_: None)
    uow.run(add_note, "first")
    dropped = terminate_on(engine, "SELECT", times=1)
    assert uow.read(count_notes) == 1
    assert len(dropped) == 1  # one drop, answered by the retry


def test_a_change_whose_backend_drops_is_unavailable_and_changes_nothing(engine) -> None:
    published: list[tuple[str, dict]] = []
    uow = UnitOfWork(db_of(engine), Notes, outbox, lambda kind, e: published.append((kind, e)))
    terminate_on(engine, "INSERT INTO EVENT_OUTBOX")
    with pytest.raises(ServiceUnavailable):
        uow.run(add_note, "half")
    assert published == [] and uow.read(count_notes) == 0


def test_marking_events_published_never_turns_a_committed_change_into_an_error(engine) -> None:
    published: list[tuple[str, dict]] = []
    uow = UnitOfWork(db_of(engine), Notes, outbox, lambda kind, e: published.append((kind, e)))
    dropped = terminate_on(engine, "UPDATE EVENT_OUTBOX")
    note_id = uow.run(add_note, "committed")  # answers, although the mark failed
    assert dropped and note_id == 1
    assert [kind for kind, _ in published] == ["note_added"]
    with engine.connect() as connection:
        rows = connection.execute(select(outbox.c.payload, outbox.c.published_at)).all()
    assert len(rows) == 1 and rows[0].published_at is None  # left for the relay
    # the relay publishes it again (consumers deduplicate by event_id) and marks it
    assert uow.relay() == 0  # younger than RELAY_AFTER: still the request's own
    assert relay(uow.db, outbox, uow.publish, older_than=timedelta(0)) == 1
    assert published[1][1]["event_id"] == json.loads(rows[0].payload)["event_id"]
    assert published[1][1]["event_id"] == published[0][1]["event_id"]
    with engine.connect() as connection:
        assert connection.execute(select(outbox.c.published_at)).scalar_one() is not None


def test_events_carry_the_request_id_of_the_worker_into_the_outbox(engine) -> None:
    published: list[tuple[str, dict]] = []
    uow = UnitOfWork(db_of(engine), Notes, outbox, lambda kind, e: published.append((kind, e)))
    set_request_id("req-faults-1")
    try:
        uow.run(add_note, "traced")
    finally:
        set_request_id(None)
    uow.run(add_note, "untraced")
    with engine.connect() as connection:
        stored = [json.loads(p) for p in connection.execute(select(outbox.c.payload)).scalars()]
    assert [e.get("request_id") for e in stored] == ["req-faults-1", None]
    assert [e.get("request_id") for _, e in published] == ["req-faults-1", None]
