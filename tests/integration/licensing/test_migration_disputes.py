"""Migration 0009 on real PostgreSQL: every suspension before it was staff's."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text

from tests.integration.licensing.test_migrations import upgrade
from tests.support import infra

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

BEFORE_DISPUTES = "3f9d2c7b8a15"  # 0008: the last revision before suspension causes


@pytest.fixture
def database_url() -> Iterator[str]:
    name = f"lp_{infra.RUN_ID}_licensing_disputes_{uuid.uuid4().hex[:8]}"
    yield infra.create_database(name)
    infra.drop_database(name)


def test_suspensions_before_causes_are_staffs(database_url) -> None:
    upgrade(database_url, BEFORE_DISPUTES)
    engine = create_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO products (id, code, name, created_at) "
                    "VALUES (1, 'cadpro', 'CAD Pro', now())"
                )
            )
            for pk, suspended in [(1, "now()"), (2, "NULL")]:
                connection.execute(
                    text(
                        "INSERT INTO licenses (id, license_id, customer_id, product_id, seats, "
                        "suspended_at, suspension_reason, activation_password, "
                        f"password_rotated_at, created_at) VALUES (:pk, :lid, 'C0559442', 1, 1, "
                        f"{suspended}, NULL, 'token', now(), now())"
                    ),
                    {"pk": pk, "lid": f"L-AAAA-AAA{pk}"},
                )
        upgrade(database_url, "head")
        with engine.connect() as connection:
            causes = connection.execute(
                text("SELECT suspension_cause FROM licenses ORDER BY id")
            ).scalars()
            assert list(causes) == ["staff", None]
            disputes = connection.execute(text("SELECT count(*) FROM payment_disputes"))
            assert disputes.scalar() == 0
    finally:
        engine.dispose()
