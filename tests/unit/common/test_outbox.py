"""The transactional outbox: staged with the change, published after it, relayed if lost."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from sqlalchemy import MetaData, create_engine, select
from sqlalchemy.orm import sessionmaker

from common import logs, metrics, outbox
from common.db import Db


@pytest.fixture
def store(tmp_path):
    metadata = MetaData()
    table = outbox.outbox_table(metadata)
    engine = create_engine(f"sqlite:///{tmp_path / 'outbox.db'}")
    metadata.create_all(engine)
    return Db(sessionmaker(bind=engine, expire_on_commit=False)), table


class Recorder:
    def __init__(self, fail: bool = False) -> None:
        self.sent: list[tuple[str, dict]] = []
        self.fail = fail

    def __call__(self, event_type: str, event: dict) -> None:
        if self.fail:
            raise ConnectionError("broker away")
        self.sent.append((event_type, event))


def unpublished(db: Db, table) -> list[str]:
    with db.transaction() as session:
        return list(
            session.scalars(select(table.c.event_type).where(table.c.published_at.is_(None)))
        )


def test_staged_events_are_published_after_commit_and_marked(store):
    db, table = store
    with db.transaction() as session:
        staged = outbox.stage(session, table, [("thing_happened", {"x": 1})])
    publish = Recorder()
    outbox.flush(db, table, publish, staged)
    assert [(t, e["x"]) for t, e in publish.sent] == [("thing_happened", 1)]
    assert publish.sent[0][1]["event_id"] and publish.sent[0][1]["occurred_at"]
    assert unpublished(db, table) == []


def test_a_rolled_back_change_stages_nothing(store):
    db, table = store
    with pytest.raises(RuntimeError), db.transaction() as session:
        outbox.stage(session, table, [("thing_happened", {"x": 1})])
        raise RuntimeError("use case failed")
    assert unpublished(db, table) == []


def test_a_failed_publish_is_left_for_the_relay_which_sends_it_once(store):
    db, table = store
    with db.transaction() as session:
        staged = outbox.stage(session, table, [("paid", {"n": 1}), ("paid", {"n": 2})])
    outbox.flush(db, table, Recorder(fail=True), staged)  # does not raise: the change stands
    assert unpublished(db, table) == ["paid", "paid"]

    relay = Recorder()
    assert outbox.relay(db, table, relay) == 0  # too young: the request may still publish
    assert outbox.relay(db, table, relay, older_than=timedelta(0)) == 2
    assert [e["n"] for _, e in relay.sent] == [1, 2]
    assert [e["event_id"] for _, e in relay.sent] == [e["event_id"] for _, e in staged]
    assert outbox.relay(db, table, relay, older_than=timedelta(0)) == 0
    assert unpublished(db, table) == []


def test_the_time_a_worker_spends_publishing_is_counted_for_its_service(store):
    db, table = store
    with db.transaction() as session:
        staged = outbox.stage(session, table, [("thing_happened", {"x": 1})])
    counter = metrics.OUTBOX_PUBLISH_SECONDS.labels("outbox_test")
    before = counter._value.get()

    def slow_publish(event_type: str, event: dict) -> None:
        time.sleep(0.02)

    logs.set_worker_service("outbox_test")
    try:
        outbox.flush(db, table, slow_publish, staged)
    finally:
        logs.set_worker_service(None)
    assert counter._value.get() - before >= 0.02
