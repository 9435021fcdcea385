"""The mail queue on PostgreSQL: migrations match models, claims skip locked rows, leases fence."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from common.db import Db, make_engine, migrate
from common.timeutil import utcnow
from services.notify import domain, use_cases
from services.notify.models import NotifyBase
from services.notify.repository import NotifyRepository, Store
from services.notify.service import MIGRATIONS
from tests.unit.notify import payloads

LEASE = timedelta(minutes=5)

pytestmark = pytest.mark.integration


@pytest.fixture
def engine(config) -> Iterator[Engine]:
    engine = make_engine(config["NOTIFY_DATABASE_URL"], pool_size=4)
    migrate(engine, "notify", MIGRATIONS)
    yield engine
    engine.dispose()


@pytest.fixture
def store(engine) -> Store:
    return Store(Db(sessionmaker(bind=engine, expire_on_commit=False)))


def test_migrations_match_the_models(engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={"compare_type": True, "version_table": "alembic_version_notify"},
        )
        differences = compare_metadata(context, NotifyBase.metadata)
    assert differences == []


def test_a_locked_row_is_skipped_not_waited_for(engine, store) -> None:
    recorded = use_cases.record(
        store, "auth", "company_created", payloads.company_created(), utcnow()
    )
    row_id = recorded.delivery_id
    with Session(engine) as first, Session(engine) as second:
        claim = NotifyRepository(first).claim_next(utcnow(), LEASE, only_id=row_id)
        assert claim is not None and claim.attempts == 1
        # the first claim is not committed yet: a second worker neither waits nor takes it
        second.execute(text("SET LOCAL lock_timeout = '2s'"))
        assert NotifyRepository(second).claim_next(utcnow(), LEASE, only_id=row_id) is None
        second.rollback()
        first.commit()
        # committed: it is leased now, so still not claimable
        assert NotifyRepository(second).claim_next(utcnow(), LEASE, only_id=row_id) is None
        second.commit()
        # once the lease has run out, another worker takes over, one attempt later
        later = utcnow() + LEASE + timedelta(seconds=1)
        again = NotifyRepository(second).claim_next(later, LEASE, only_id=row_id)
        second.commit()
    assert again is not None and again.attempts == 2
    with store.repository() as repo:
        # the first worker's late outcome is refused: attempt 2 owns the row now
        assert not repo.finish(claim, domain.sent("x@example.test"), utcnow())
        assert repo.finish(again, domain.sent("x@example.test"), utcnow())


def test_a_redelivered_event_is_a_no_op_on_postgresql(store, tables) -> None:
    payload = payloads.password_changed()
    first = use_cases.record(store, "auth", "password_changed", payload, utcnow())
    again = use_cases.record(store, "auth", "password_changed", payload, utcnow())
    assert first.delivery_id is not None and again.duplicate
    assert tables.delivery(payload["event_id"]).id == first.delivery_id


@pytest.mark.parametrize("field", ["event_id", "customer_id", "contact_name"])
def test_nul_characters_are_parked_not_requeued_forever(store, field: str) -> None:
    # PostgreSQL refuses NUL in text; a payload carrying one must not loop on the bus
    payload = payloads.company_created()
    if field == "event_id":
        payload["event_id"] = "nul\x00" + payload["event_id"][:20]
    else:
        payload["company"][field] = "C\x00" + payload["company"][field][:20]
    recorded = use_cases.record(store, "auth", "company_created", payload, utcnow())
    assert recorded.parked
    with store.repository() as repo:
        errors = [parked.error for parked in repo.parked(5)]
    assert any("NUL" in error for error in errors)
