"""Licensing's migrations on real PostgreSQL: what an upgrade does to the data already there."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from alembic import command
from sqlalchemy import create_engine, text

from common.db import alembic_config
from services.licensing.service import MIGRATIONS
from tests.support import infra

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

BEFORE_CANONICAL_IDS = "e437c7bd5aea"  # 0004: the last revision before 0005


@pytest.fixture
def database_url() -> Iterator[str]:
    name = f"lp_{infra.RUN_ID}_licensing_upgrade_{uuid.uuid4().hex[:8]}"
    yield infra.create_database(name)
    infra.drop_database(name)


def upgrade(url: str, revision: str) -> None:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            config = alembic_config("licensing", MIGRATIONS)
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
            connection.commit()
    finally:
        engine.dispose()


def test_licenses_of_a_customer_id_typed_in_lower_case_come_home(database_url) -> None:
    upgrade(database_url, BEFORE_CANONICAL_IDS)
    engine = create_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO products (id, code, name, created_at) "
                    "VALUES (1, 'cadpro', 'CAD Pro', now())"
                )
            )
            for pk, customer in [(1, " c0559442 "), (2, "C0559442"), (3, "c1111111")]:
                connection.execute(
                    text(
                        "INSERT INTO licenses (id, license_id, customer_id, product_id, seats, "
                        "activation_password, password_rotated_at, created_at) "
                        "VALUES (:pk, :lid, :customer, 1, 1, 'token', now(), now())"
                    ),
                    {"pk": pk, "lid": f"L-AAAA-AAA{pk}", "customer": customer},
                )
            connection.execute(
                text(
                    "INSERT INTO payment_events (event_id, receipt_number, customer_id, kind, "
                    "status, received_at) VALUES ('e1', 'R-2026-000001', 'c0559442', 'new', "
                    "'applied', now())"
                )
            )
        upgrade(database_url, "head")
        with engine.connect() as connection:
            customers = connection.execute(
                text("SELECT customer_id FROM licenses ORDER BY id")
            ).scalars()
            assert list(customers) == ["C0559442", "C0559442", "C1111111"]
            paid_by = connection.execute(text("SELECT customer_id FROM payment_events")).scalar()
            assert paid_by == "C0559442"
            product = connection.execute(text("SELECT code, archived_at FROM products")).one()
            assert tuple(product) == ("cadpro", None)
            reason = connection.execute(text("SELECT suspension_reason FROM licenses")).scalars()
            assert set(reason) == {None}
    finally:
        engine.dispose()


BEFORE_AUDIT_TRAIL = "34564771c437"  # 0005: the last revision before the audit trail


def test_history_written_before_the_audit_trail_names_what_its_source_implied(
    database_url,
) -> None:
    upgrade(database_url, BEFORE_AUDIT_TRAIL)
    engine = create_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO products (id, code, name, created_at) "
                    "VALUES (1, 'cadpro', 'CAD Pro', now())"
                )
            )
            connection.execute(
                text(
                    "INSERT INTO licenses (id, license_id, customer_id, product_id, seats, "
                    "activation_password, password_rotated_at, created_at) "
                    "VALUES (1, 'L-AAAA-AAA1', 'C0559442', 1, 1, 'token', now(), now())"
                )
            )
            for pk, source in enumerate(["product", "portal", "staff", "system"], start=1):
                connection.execute(
                    text(
                        "INSERT INTO history (id, license_pk, type, at, installation_id, "
                        "machine_name, source) VALUES (:pk, 1, 'deactivated', now(), 'i', "
                        "'PC', :source)"
                    ),
                    {"pk": pk, "source": source},
                )
        upgrade(database_url, "head")
        with engine.connect() as connection:
            actors = connection.execute(
                text(
                    "SELECT source, actor_type, actor_user_id, actor_email FROM history ORDER BY id"
                )
            ).all()
            assert [tuple(row) for row in actors] == [
                ("product", "product", None, None),
                ("portal", "user", None, None),
                ("staff", "staff", None, None),
                ("system", "system", None, None),
            ]
            assert connection.execute(text("SELECT count(*) FROM audit_events")).scalar() == 0
        # a row an instance of the previous release writes during the upgrade has no actor
        # (the history view reads it as its source implies, views.history_actor)
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO history (id, license_pk, type, at, installation_id, source) "
                    "VALUES (5, 1, 'activated', now(), 'j', 'product')"
                )
            )
            latest = connection.execute(text("SELECT actor_type FROM history WHERE id = 5"))
            assert latest.scalar() is None
    finally:
        engine.dispose()


BEFORE_FLOATING = "8c2f4a6d1e07"  # 0007: the last revision before floating licenses


def test_licenses_issued_before_floating_ones_are_node_locked(database_url) -> None:
    upgrade(database_url, BEFORE_FLOATING)
    engine = create_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO products (id, code, name, created_at) "
                    "VALUES (1, 'cadpro', 'CAD Pro', now())"
                )
            )
            connection.execute(
                text(
                    "INSERT INTO licenses (id, license_id, customer_id, product_id, seats, "
                    "activation_password, password_rotated_at, created_at) "
                    "VALUES (1, 'L-AAAA-AAA1', 'C0559442', 1, 3, 'token', now(), now())"
                )
            )
        upgrade(database_url, "head")
        with engine.connect() as connection:
            row = connection.execute(
                text(
                    "SELECT model, lease_seconds, max_borrow_days, seats_exhausted_notified_at "
                    "FROM licenses"
                )
            ).one()
            assert tuple(row) == ("node_locked", None, None, None)
            assert connection.execute(text("SELECT count(*) FROM leases")).scalar() == 0
    finally:
        engine.dispose()
