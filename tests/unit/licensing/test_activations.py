"""`use_cases.activations.authorize`: one activation attempt, its transactions and its failures.

Run over the unit of work on a migrated SQLite database (conftest.py); the licenses come from
a `LicensingService` worker, auth's password check is a plain function of each test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import event

from common.audit import PRODUCT
from common.db import Db
from common.errors import PortalError
from common.unit_of_work import UnitOfWork
from services.licensing import domain
from services.licensing.models import AuditEvent, EventOutbox
from services.licensing.repository import LicensingRepository
from services.licensing.use_cases import activations
from tests.unit.licensing.support import COMPANY, COMPANY_PASSWORD


@pytest.fixture
def uow(db, events) -> UnitOfWork[LicensingRepository]:
    return UnitOfWork(db, LicensingRepository, EventOutbox, events, audit_table=AuditEvent)


@pytest.fixture
def license(service) -> tuple[str, str]:
    """A 2-seat license of COMPANY: (license ID, its activation password)."""
    issued = service.issue_license({"customer_id": COMPANY, "product": "cadpro", "seats": 2})
    password = service.get_license(issued["license_id"])["activation_password"]
    return issued["license_id"], password


class Auth:
    """auth's `verify_company_password`: records who was asked; answers or raises."""

    def __init__(self, answer: bool | PortalError = False) -> None:
        self.answer = answer
        self.asked: list[tuple[str, str]] = []
        self.addresses: list[str | None] = []

    def __call__(self, customer_id: str, password: str, client_address: str | None) -> bool:
        self.asked.append((customer_id, password))
        self.addresses.append(client_address)
        if isinstance(self.answer, PortalError):
            raise self.answer
        return self.answer


def attempt(
    uow: UnitOfWork[LicensingRepository],
    service: Any,
    auth: Auth,
    license_id: str,
    password: str,
    now: datetime,
    installation_id: str = "inst-1",
    address: str | None = None,
) -> Any:
    data = {"installation_id": installation_id, "machine_name": "PC-1"}
    return activations.authorize(
        uow,
        auth,
        service.keys.box,
        license_id,
        password,
        now,
        lambda repo, license, seats: activations.activate(repo, license, data, now, seats),
        installation_id,
        address,
    )


def failures(db: Db, license_id: str, now: datetime, address: str = "unknown") -> int:
    with db.transaction() as session:
        key = domain.normalize_license_id(license_id)
        repo = LicensingRepository(session)
        return len(repo.failures(address, now - domain.FAILURE_WINDOW, key))


@pytest.fixture
def statements(db: Db) -> Iterator[Callable[[], list[str]]]:
    """The SQL run from now on, COMMITs included (the transactions)."""
    engine = db._factory.kw["bind"]
    seen: list[str] = []

    def on_execute(conn, cursor, statement, parameters, context, executemany) -> None:
        seen.append(statement.split()[0].upper())

    def on_commit(conn) -> None:
        seen.append("COMMIT")

    event.listen(engine, "before_cursor_execute", on_execute)
    event.listen(engine, "commit", on_commit)
    yield lambda: list(seen)
    event.remove(engine, "before_cursor_execute", on_execute)
    event.remove(engine, "commit", on_commit)


def test_the_license_password_path_is_one_transaction_and_never_asks_auth(
    uow, service, clock, license, statements
) -> None:
    license_id, password = license
    auth = Auth()
    seen = len(statements())
    result = attempt(uow, service, auth, license_id, password, clock.now())
    assert result["created"] is True
    assert auth.asked == []
    # the locked license with its feature codes (joined: the certificate's claims need
    # them), the failures with the seat facts, the installation, its history, the staged
    # event, the audit trail's fact; then the event marked published
    assert statements()[seen:] == [
        "SELECT",
        "SELECT",
        "INSERT",
        "INSERT",
        "INSERT",
        "INSERT",
        "COMMIT",
        "UPDATE",
        "COMMIT",
    ]


def test_the_company_password_admits_and_takes_the_failure_back(
    uow, service, clock, db, license
) -> None:
    license_id, _ = license
    auth = Auth(answer=True)
    assert attempt(uow, service, auth, license_id, COMPANY_PASSWORD, clock.now())["created"]
    assert auth.asked == [(COMPANY, COMPANY_PASSWORD)]
    assert failures(db, license_id, clock.now()) == 0


def test_a_wrong_password_counts_one_failure(uow, service, clock, db, license) -> None:
    license_id, _ = license
    auth = Auth(answer=False)
    with pytest.raises(PortalError) as caught:
        attempt(uow, service, auth, license_id, "guess", clock.now())
    assert caught.value.code == "invalid_credentials"
    assert auth.asked == [(COMPANY, "guess")]
    assert failures(db, license_id, clock.now()) == 1


def test_an_unknown_license_costs_auth_a_dummy_check_and_counts(uow, service, clock, db) -> None:
    auth = Auth(answer=True)  # even a "yes" for no company admits nothing
    with pytest.raises(PortalError) as caught:
        attempt(uow, service, auth, "l-nope-nope", "guess", clock.now())
    assert caught.value.code == "invalid_credentials"
    assert auth.asked == [("", "guess")]
    assert failures(db, "L-NOPE-NOPE", clock.now()) == 1


def test_when_auth_fails_the_failure_is_taken_back(uow, service, clock, db, license) -> None:
    license_id, _ = license
    auth = Auth(answer=PortalError(code="service_unavailable"))
    with pytest.raises(PortalError) as caught:
        attempt(uow, service, auth, license_id, COMPANY_PASSWORD, clock.now())
    assert caught.value.code == "service_unavailable"
    assert failures(db, license_id, clock.now()) == 0


def test_when_the_admitted_work_fails_no_failure_counts(uow, service, clock, db, license) -> None:
    license_id, _ = license
    now = clock.now()
    with pytest.raises(PortalError) as caught:
        activations.authorize(
            uow,
            Auth(answer=True),
            service.keys.box,
            license_id,
            COMPANY_PASSWORD,
            now,
            lambda repo, license, _seats: activations.deactivate(
                repo, license, "never-activated", "product", PRODUCT, now
            ),
        )
    assert caught.value.code == "installation_not_found"
    assert failures(db, license_id, now) == 0


def test_a_refusal_is_raised_after_its_commit(uow, service, clock, db, events, license) -> None:
    license_id, password = license
    service.suspend_license(license_id)
    for secret, auth in ((password, Auth()), (COMPANY_PASSWORD, Auth(answer=True))):
        with pytest.raises(PortalError) as caught:
            attempt(uow, service, auth, license_id, secret, clock.now())
        assert caught.value.code == "license_suspended"
    history = service.history(license_id)["events"]
    assert [(e["type"], e["reason"]) for e in history] == [
        ("activation_refused", "license_suspended"),
        ("activation_refused", "license_suspended"),
    ]
    assert failures(db, license_id, clock.now()) == 0
    assert events.of("installation_activated") == []
