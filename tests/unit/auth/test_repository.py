"""The queries of services.auth.repository that the use cases lean on, over SQLite."""

from __future__ import annotations

from datetime import UTC, datetime

from common.db import Db
from services.auth.models import Company
from services.auth.repository import AuthRepository

NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


def company(customer_id: str, email: str) -> Company:
    return Company(
        customer_id=customer_id,
        name="Acme",
        contact_name="Ada",
        contact_email=email,
        created_at=NOW,
    )


def test_add_unique_refuses_a_taken_email_or_customer_id_and_the_work_goes_on(db: Db) -> None:
    with db.transaction() as session:
        repo = AuthRepository(session)
        first = company("C1000001", "ada@acme.test")
        assert repo.add_unique(first) is True
        assert first.id is not None
        assert repo.add_unique(company("C1000002", "ada@acme.test")) is False
        assert repo.add_unique(company("C1000001", "bob@acme.test")) is False
        # no IntegrityError spoiled the transaction: it still reads and writes
        assert repo.add_unique(company("C1000003", "bob@acme.test")) is True
    with db.transaction() as session:
        repo = AuthRepository(session)
        assert repo.company_by_email("ada@acme.test").id == first.id
        assert [c.customer_id for c in repo.search_companies("acme.test")] == [
            "C1000001",
            "C1000003",
        ]
