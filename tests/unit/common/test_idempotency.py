"""common.idempotency: a request handled once answers the same when it comes again."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from common.db import Db, make_engine
from common.errors import Conflict, PortalError
from common.idempotency import IdempotencyKeyReused, Once, RequestInfo, fingerprint
from common.timeutil import utcnow
from common.unit_of_work import Outcome, UnitOfWork
from tests.support.ledger import Base, HandledRequest, Things, add_thing, event_outbox


@pytest.fixture
def db(tmp_path) -> Iterator[Db]:
    engine = make_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    Base.metadata.create_all(engine)
    yield Db(sessionmaker(bind=engine, expire_on_commit=False))
    engine.dispose()


@pytest.fixture
def published() -> list[tuple[str, dict[str, Any]]]:
    return []


@pytest.fixture
def uow(db: Db, published: list) -> UnitOfWork[Things]:
    return UnitOfWork(
        db,
        Things,
        event_outbox,
        lambda kind, payload: published.append((kind, payload)),
        ledger=HandledRequest,
    )


def things_count(uow: UnitOfWork[Things]) -> int:
    return uow.read(Things.count)


def test_a_redelivered_request_answers_the_first_answer_and_changes_nothing(uow, published):
    once = RequestInfo("key-1", "things.add").once("C1", "widget")
    first = uow.run(add_thing, "widget", once=once)
    again = uow.run(add_thing, "widget", once=once)
    assert again == first
    assert things_count(uow) == 1
    assert [kind for kind, _ in published] == ["thing_added"]


def test_the_same_key_with_another_body_is_refused(uow):
    info = RequestInfo("key-1", "things.add")
    uow.run(add_thing, "widget", once=info.once("C1", "widget"))
    with pytest.raises(IdempotencyKeyReused) as raised:
        uow.run(add_thing, "gadget", once=info.once("C1", "gadget"))
    assert raised.value.code == "idempotency_key_reused"
    assert things_count(uow) == 1


def test_keys_are_per_scope_and_per_operation(uow):
    uow.run(add_thing, "a", once=RequestInfo("k", "things.add").once("C1", "a"))
    uow.run(add_thing, "b", once=RequestInfo("k", "things.add").once("C2", "b"))
    uow.run(add_thing, "c", once=RequestInfo("k", "things.other").once("C1", "c"))
    uow.run(add_thing, "d", once=RequestInfo("k", "things.add").once(None, "d"))
    assert things_count(uow) == 4


def test_without_a_key_every_request_runs(uow):
    assert RequestInfo(None, "things.add").once("C1", "x") is None
    uow.run(add_thing, "x", once=None)
    uow.run(add_thing, "x", once=None)
    assert things_count(uow) == 2


def refuse_after_recording(repo: Things, name: str) -> Outcome:
    repo.add(name)
    return Outcome(None, error=Conflict("No seats left.", code="no_seats_available"))


def test_a_recorded_refusal_is_raised_again_without_recording_twice(uow):
    once = RequestInfo("k", "things.refuse").once("C1", "x")
    for _ in range(2):
        with pytest.raises(PortalError) as raised:
            uow.run(refuse_after_recording, "x", once=once)
        assert raised.value.code == "no_seats_available"
        assert raised.value.message == "No seats left."
    assert things_count(uow) == 1


def fail(repo: Things, name: str) -> Outcome:
    repo.add(name)
    raise Conflict("not now")


def test_a_request_that_failed_left_nothing_and_may_run_again(uow):
    once = RequestInfo("k", "things.add").once("C1", "x")
    with pytest.raises(Conflict):
        uow.run(fail, "x", once=once)
    assert uow.run(add_thing, "x", once=once)["name"] == "x"
    assert things_count(uow) == 1


def test_once_needs_a_ledger(db):
    bare = UnitOfWork(db, Things, event_outbox, lambda *_: None)
    with pytest.raises(TypeError):
        bare.run(add_thing, "x", once=Once("C1", "k", "things.add", fingerprint("x")))


def test_pruning_forgets_week_old_requests_only(uow, db):
    uow.run(add_thing, "x", once=RequestInfo("old", "things.add").once("C1", "x"))
    uow.run(add_thing, "y", once=RequestInfo("new", "things.add").once("C1", "y"))
    with db.transaction() as session:
        session.execute(
            HandledRequest.__table__.update()
            .where(HandledRequest.key == "old")
            .values(created_at=utcnow().replace(year=2000))
        )
    uow.prune()
    with db.transaction() as session:
        keys = list(session.scalars(select(HandledRequest.key)))
        assert keys == ["new"]
        assert session.scalar(select(func.count()).select_from(HandledRequest)) == 1


def test_the_fingerprint_ignores_key_order_but_not_values():
    assert fingerprint({"a": 1, "b": 2}) == fingerprint({"b": 2, "a": 1})
    assert fingerprint({"a": 1}) != fingerprint({"a": 2})
