"""Review after issue 11: the password-reset queue could be flooded. Every reset request
added a row to auth's queue, whatever the address it came from, and the resolving timer took
only one fixed batch per tick, so one client could grow the table faster than it was worked
off and hold back everyone else's reset emails.

Now each client address (an IPv6 one by its /48) queues at most its share of requests per
window; beyond it a request is answered the same way and not queued. The decision looks at
the address alone, never at the login, so it tells nothing about which logins exist (the
same-work proof is test_auth_reset_same_work.py). And one tick of the timer takes batch after
batch until the queue is empty. The auth worker over a real (SQLite) database.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from nameko.testing.services import worker_factory
from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from common.db import Db, make_engine, migrate
from common.idempotency import RequestInfo
from services.auth import domain, use_cases
from services.auth.models import PasswordRequest
from services.auth.service import MIGRATIONS, AuthService
from tests.support.fakes import FixedClock, RecordedEvents

FLOODER, OWNER = "203.0.113.66", "198.51.100.7"

# a worker called directly, as by a request without a key: nothing to deduplicate
NO_KEY = RequestInfo(None, "auth.test")


@pytest.fixture
def db(tmp_path) -> Iterator[Db]:
    engine = make_engine(f"sqlite:///{tmp_path / 'auth.db'}")
    migrate(engine, "auth", MIGRATIONS)
    yield Db(sessionmaker(bind=engine, expire_on_commit=False))
    engine.dispose()


@pytest.fixture
def events() -> RecordedEvents:
    return RecordedEvents()


@pytest.fixture
def service(db: Db, events: RecordedEvents) -> AuthService:
    return worker_factory(AuthService, db=db, events=events, clock=FixedClock(), request=NO_KEY)


def queue_rows(db: Db) -> int:
    with db.transaction() as session:
        return session.scalar(select(func.count(PasswordRequest.id)))


def nobody() -> str:
    return f"nobody.{uuid.uuid4().hex[:10]}@example.test"


def flood(service: AuthService, count: int, address_of) -> None:
    for number in range(count):
        payload = {"login": nobody(), "client_address": address_of(number)}
        assert service.request_password_reset(payload) is None  # the answer never changes


def test_flooding_from_one_address_stops_growing_the_queue(service, db) -> None:
    flood(service, 100, lambda _: FLOODER)
    after_100 = queue_rows(db)
    flood(service, 200, lambda _: FLOODER)
    assert queue_rows(db) == after_100
    assert after_100 == domain.RESET_QUEUE_LIMIT


def test_hopping_across_the_64s_of_one_ipv6_48_does_not_help(service, db) -> None:
    flood(service, 100, lambda number: f"2001:db8:66:{number:x}::1")
    after_100 = queue_rows(db)
    flood(service, 200, lambda number: f"2001:db8:66:{100 + number:x}::1")
    assert queue_rows(db) == after_100
    assert after_100 == domain.RESET_QUEUE_LIMIT


def test_a_request_from_another_address_still_gets_its_email(service, events) -> None:
    email = f"owner.{uuid.uuid4().hex[:10]}@example.test"
    service.create_company(
        {"name": "Owner Ltd", "contact_name": "Ada", "contact_email": email,
         "password": "Quiet-Lantern-Harbour-7"}
    )  # fmt: skip
    flood(service, 3 * use_cases.RESOLVE_BATCH, lambda _: FLOODER)
    service.request_password_reset({"login": email, "client_address": OWNER})
    service.resolve_reset_requests()  # one tick
    [requested] = events.of("password_reset_requested")
    assert requested["company"]["contact_email"] == email


def test_one_tick_works_off_a_backlog_larger_than_a_batch(service, db, events) -> None:
    backlog = 2 * use_cases.RESOLVE_BATCH + 7
    for number in range(backlog):  # a flood spread over many addresses
        address = f"198.18.{number // 250}.{number % 250}"
        service.request_password_reset({"login": nobody(), "client_address": address})
    assert queue_rows(db) == backlog
    service.resolve_reset_requests()
    assert queue_rows(db) == 0
