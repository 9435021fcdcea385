"""Finding 5: a password reset request for a known login took about twice as long as one for
an unknown login (it made a token and published an event before answering).

Now the request is queued and answered with the same work whatever the login; the login is
looked up afterwards by a timer. Timing is the machine's business (`python -m bench
bench.reset_timing` prints it); here the work itself is compared: the SQL statements the
request runs (the same text, in the same order), the events it publishes, and its answer,
for a known and an unknown email address and customer ID.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from nameko.testing.services import worker_factory
from sqlalchemy import event
from sqlalchemy.orm import sessionmaker

from common.db import Db, make_engine, migrate
from common.idempotency import RequestInfo
from services.auth.service import MIGRATIONS, AuthService
from tests.support.fakes import FixedClock, RecordedEvents

# a worker called directly, as by a request without a key: nothing to deduplicate
NO_KEY = RequestInfo(None, "auth.test")


@pytest.fixture
def engine(tmp_path) -> Iterator:
    engine = make_engine(f"sqlite:///{tmp_path / 'auth.db'}")
    migrate(engine, "auth", MIGRATIONS)
    yield engine
    engine.dispose()


def test_a_reset_request_does_the_same_work_for_known_and_unknown_logins(engine) -> None:
    events = RecordedEvents()
    service = worker_factory(
        AuthService,
        db=Db(sessionmaker(bind=engine, expire_on_commit=False)),
        events=events,
        clock=FixedClock(),
        request=NO_KEY,
    )
    email = f"known.{uuid.uuid4().hex[:8]}@example.test"
    company = service.create_company(
        {"name": "Known Ltd", "contact_name": "Ada", "contact_email": email,
         "password": "Quiet-Lantern-Harbour-7"}
    )  # fmt: skip
    events.clear()
    statements: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def record(conn, cursor, statement, parameters, context, executemany) -> None:
        statements.append(" ".join(statement.split()))

    def work(login: str) -> tuple[object, list[str], list]:
        statements.clear()
        answer = service.request_password_reset({"login": login})
        return answer, list(statements), list(events)

    runs = {
        "a known email": work(email),
        "a known customer ID": work(company["customer_id"]),
        "an unknown email": work(f"nobody.{uuid.uuid4().hex[:8]}@example.test"),
        "an unknown customer ID": work("C0000000"),
    }
    answer, sql, published = runs["an unknown email"]
    assert sql, "no SQL recorded"
    for login, (other_answer, other_sql, other_published) in runs.items():
        assert other_sql == sql, f"{login} runs other SQL than an unknown email"
        assert (other_answer, other_published) == (answer, published) == (None, []), login
