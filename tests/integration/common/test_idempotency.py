"""The request ledger on PostgreSQL: the same request delivered twice at once runs once.

A redelivery can arrive while the first delivery is still running (another instance took
it). The second claim's insert waits on the first one's uncommitted key, then finds the
stored answer: one change, one event, the same answer twice.
"""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy.orm import sessionmaker

from common.db import Db, make_engine
from common.idempotency import RequestInfo
from common.unit_of_work import Outcome, UnitOfWork
from tests.support.ledger import Base, HandledRequest, Things, event_outbox

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def slow_add(repo: Things, name: str, started: threading.Event) -> Outcome:
    thing_id = repo.add(name)
    started.set()
    time.sleep(0.5)  # the twin delivery arrives while this transaction is open
    return Outcome({"id": thing_id}, [("thing_added", {"name": name})])


def test_two_deliveries_at_once_change_once_and_answer_alike(fresh_database) -> None:
    engine = make_engine(fresh_database("ledger"), pool_size=4)
    try:
        Base.metadata.create_all(engine)
        db = Db(sessionmaker(bind=engine, expire_on_commit=False))
        published: list[str] = []
        uow = UnitOfWork(
            db, Things, event_outbox, lambda kind, _: published.append(kind), ledger=HandledRequest
        )
        once = RequestInfo("rpc:twin", "things.add").once("C1", "widget")
        started = threading.Event()
        answers: list[dict] = []

        def deliver() -> None:
            answers.append(uow.run(slow_add, "widget", started, once=once))

        first = threading.Thread(target=deliver)
        first.start()
        assert started.wait(10)
        second = threading.Thread(target=deliver)
        second.start()
        first.join(20)
        second.join(20)
        assert len(answers) == 2
        assert answers[0] == answers[1]
        assert uow.read(Things.count) == 1
        assert published == ["thing_added"]
    finally:
        engine.dispose()
