"""common.unit_of_work: a use case's change and its events commit together, then publish."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, func, select
from sqlalchemy.orm import Session, sessionmaker

from common.db import Db, make_engine
from common.errors import Conflict
from common.outbox import Later, outbox_table
from common.unit_of_work import Outcome, UnitOfWork

metadata = MetaData()
things = Table(
    "things",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(50), nullable=False, unique=True),
)
event_outbox = outbox_table(metadata)


class ThingRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, name: str) -> None:
        self.session.execute(things.insert().values(name=name))

    def names(self) -> list[str]:
        return list(self.session.scalars(select(things.c.name).order_by(things.c.id)))

    def count(self) -> int:
        return self.session.scalar(select(func.count()).select_from(things))


class Publisher:
    """Records each event with the names another connection can see when it is published."""

    def __init__(self, db: Db) -> None:
        self.db = db
        self.published: list[tuple[str, dict[str, Any], list[str]]] = []

    def __call__(self, event_type: str, payload: dict[str, Any]) -> None:
        with self.db.transaction() as session:
            visible = ThingRepository(session).names()
        self.published.append((event_type, payload, visible))


@pytest.fixture
def db(tmp_path) -> Iterator[Db]:
    engine = make_engine(f"sqlite:///{tmp_path / 'uow.db'}")
    metadata.create_all(engine)
    yield Db(sessionmaker(bind=engine, expire_on_commit=False))
    engine.dispose()


@pytest.fixture
def publish(db: Db) -> Publisher:
    return Publisher(db)


@pytest.fixture
def uow(db: Db, publish: Publisher) -> UnitOfWork[ThingRepository]:
    return UnitOfWork(db, ThingRepository, event_outbox, publish)


def names(db: Db) -> list[str]:
    with db.transaction() as session:
        return ThingRepository(session).names()


def outbox_rows(db: Db) -> list[tuple[str, bool]]:
    """(event_type, published) of every staged event, in staging order."""
    with db.transaction() as session:
        rows = session.execute(
            select(event_outbox.c.event_type, event_outbox.c.published_at).order_by(
                event_outbox.c.id
            )
        )
        return [(row.event_type, row.published_at is not None) for row in rows]


def add_thing(repo: ThingRepository, name: str) -> Outcome:
    repo.add(name)
    return Outcome(
        result={"name": name},
        events=[("thing_added", {"name": name}), ("things_counted", {"count": 1})],
    )


def test_run_commits_then_publishes_the_events_in_order(db, uow, publish) -> None:
    assert uow.run(add_thing, "anvil") == {"name": "anvil"}
    assert names(db) == ["anvil"]
    # each event went out once the change was visible to everyone else
    assert [(kind, visible) for kind, _, visible in publish.published] == [
        ("thing_added", ["anvil"]),
        ("things_counted", ["anvil"]),
    ]
    [added, counted] = [payload for _, payload, _ in publish.published]
    assert added["name"] == "anvil" and counted["count"] == 1
    assert added["event_id"] != counted["event_id"]
    assert outbox_rows(db) == [("thing_added", True), ("things_counted", True)]


def test_an_error_in_the_use_case_rolls_back_and_publishes_nothing(db, uow, publish) -> None:
    def add_then_fail(repo: ThingRepository, name: str) -> Outcome:
        add_thing(repo, name)
        raise ValueError("the rule said no")

    with pytest.raises(ValueError, match="the rule said no"):
        uow.run(add_then_fail, "anvil")
    assert names(db) == []
    assert publish.published == []
    assert outbox_rows(db) == []


def test_a_refusal_is_raised_after_the_change_and_its_events_commit(db, uow, publish) -> None:
    def record_a_refusal(repo: ThingRepository, name: str) -> Outcome:
        repo.add(name)
        return Outcome(events=[("thing_refused", {"name": name})], error=Conflict("refused"))

    with pytest.raises(Conflict, match="refused"):
        uow.run(record_a_refusal, "attempt-1")
    assert names(db) == ["attempt-1"]  # the refusal stays recorded
    assert [(kind, visible) for kind, _, visible in publish.published] == [
        ("thing_refused", ["attempt-1"])
    ]


def test_run_outcome_answers_the_whole_outcome(uow) -> None:
    outcome = uow.run_outcome(add_thing, "anvil")
    assert outcome.result == {"name": "anvil"}
    assert [kind for kind, _ in outcome.events] == ["thing_added", "things_counted"]


def test_read_answers_and_publishes_nothing(db, uow, publish) -> None:
    uow.run(add_thing, "anvil")
    publish.published.clear()

    assert uow.read(ThingRepository.count) == 1
    assert publish.published == []
    assert len(outbox_rows(db)) == 2  # nothing new staged


def test_a_multi_step_block_publishes_once_it_commits_and_not_if_it_raised(
    db, uow, publish
) -> None:
    with uow.begin() as work:
        work.repo.add("first")
        work.stage([("thing_added", {"name": "first"})])
        work.repo.add("second")
        work.stage([("thing_added", {"name": "second"})])
        assert publish.published == []  # not before the commit
    assert [payload["name"] for _, payload, _ in publish.published] == ["first", "second"]

    with pytest.raises(RuntimeError), uow.begin() as work:
        work.repo.add("third")
        work.stage([("thing_added", {"name": "third"})])
        raise RuntimeError("step two failed")
    assert names(db) == ["first", "second"]
    assert len(publish.published) == 2


def add_thing_later(repo: ThingRepository, name: str) -> Outcome:
    repo.add(name)
    return Outcome(
        result={"name": name},
        events=[("things_counted", {"count": 1})],
        later=[("thing_added", {"name": name})],
    )


def test_later_events_without_a_publisher_for_them_go_out_before_the_answer(
    db, uow, publish
) -> None:
    assert uow.run(add_thing_later, "anvil") == {"name": "anvil"}
    assert [kind for kind, _, _ in publish.published] == ["things_counted", "thing_added"]
    assert outbox_rows(db) == [("things_counted", True), ("thing_added", True)]


def test_later_events_are_staged_with_the_change_and_published_after_the_answer(
    db, publish
) -> None:
    later = Later()
    later.start()
    uow = UnitOfWork(db, ThingRepository, event_outbox, publish, later=later)
    try:
        assert uow.run(add_thing_later, "anvil") == {"name": "anvil"}
        # answered: the urgent event is out, the later one is committed but not yet out
        assert [kind for kind, _, _ in publish.published] == ["things_counted"]
        assert outbox_rows(db) == [("things_counted", True), ("thing_added", False)]
        uow.run(add_thing_later, "bolt")
    finally:
        later.stop()  # publishes what was handed over
    assert [(kind, payload.get("name")) for kind, payload, _ in publish.published] == [
        ("things_counted", None),
        ("things_counted", None),
        ("thing_added", "anvil"),
        ("thing_added", "bolt"),
    ]
    assert all(published for _, published in outbox_rows(db))


def test_a_later_event_that_fails_to_publish_is_left_to_the_relay(db) -> None:
    def broker_away(event_type: str, payload: dict[str, Any]) -> None:
        if event_type == "thing_added":
            raise ConnectionError("broker away")

    later = Later()
    later.start()
    uow = UnitOfWork(db, ThingRepository, event_outbox, broker_away, later=later)
    try:
        assert uow.run(add_thing_later, "anvil") == {"name": "anvil"}
    finally:
        later.stop()
    # answered, and the event is committed unpublished: the relay sends it
    assert names(db) == ["anvil"]
    assert outbox_rows(db) == [("things_counted", True), ("thing_added", False)]


def test_later_events_of_several_workers_are_marked_in_one_transaction(db, publish) -> None:
    marks: list[int] = []

    class Counted(Db):
        def transaction(self):  # type: ignore[override]
            marks.append(1)
            return super().transaction()

    later = Later()
    later.start()
    try:
        # each worker gets a `Db` of its own over the container's one engine
        for name in ("anvil", "bolt", "chisel"):
            later.submit(
                Counted(db._factory),
                event_outbox,
                publish,
                [("thing_added", {"event_id": name, "name": name})],
            )
    finally:
        later.stop()
    assert [payload["name"] for _, payload, _ in publish.published] == ["anvil", "bolt", "chisel"]
    assert marks == [1]
