"""Fakes of what is outside notify (mail server, auth, clock) and a real SQLite mail queue."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from common.db import Db
from common.errors import PortalError, ServiceUnavailable
from services.notify.exceptions import DeliveryError
from services.notify.mailers import Mailer
from services.notify.repository import Store
from services.notify.service import MIGRATIONS
from services.notify.use_cases import Courier, DeliveryOptions
from tests.support.fakes import FixedClock, copied_db, migrated_sqlite
from tests.unit.notify.payloads import PORTAL_URL


class FakeMailer(Mailer):
    """Keeps sent messages in `sent`; fails the next `failures` sends with `error`."""

    def __init__(self) -> None:
        self.sent: list[EmailMessage] = []
        self.failures = 0
        self.error: Exception = DeliveryError("SMTP server smtp.test:25 answered 451: try later")
        self.attempts = 0

    def send(self, message: EmailMessage) -> None:
        self.attempts += 1
        if self.failures > 0:
            self.failures -= 1
            raise self.error
        self.sent.append(message)

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.sent if m["To"].addresses[0].addr_spec == address]


class FakeDirectory:
    """auth's `get_company` as notify sees it over RPC: a dict, or a `PortalError` by code."""

    def __init__(self) -> None:
        self.companies: dict[str, dict[str, Any]] = {}
        self.unavailable = False
        self.calls: list[str] = []

    def add(self, company: dict[str, Any]) -> dict[str, Any]:
        self.companies[company["customer_id"]] = company
        return company

    def get_company(self, customer_id: str) -> dict[str, Any]:
        self.calls.append(customer_id)
        if self.unavailable:
            raise ServiceUnavailable("The auth service did not answer in time.")
        if customer_id not in self.companies:
            # what common.errors.error_from_reply rebuilds from auth's CompanyNotFound
            raise PortalError(code="company_not_found", message="No company with this ID.")
        return self.companies[customer_id]


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory) -> Path:
    return migrated_sqlite(tmp_path_factory.mktemp("notify-template"), "notify", MIGRATIONS)


@pytest.fixture
def db(migrated_template, tmp_path) -> Iterator[Db]:
    """The real schema in SQLite (the embedded default), a fresh copy per test."""
    with copied_db(migrated_template, tmp_path) as database:
        yield database


@pytest.fixture
def store(db) -> Store:
    return Store(db)


@pytest.fixture
def mailer() -> FakeMailer:
    return FakeMailer()


@pytest.fixture
def directory() -> FakeDirectory:
    return FakeDirectory()


@pytest.fixture
def clock() -> FixedClock:
    # real time: the payloads' links and expiries are built from it
    return FixedClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
def options() -> DeliveryOptions:
    return DeliveryOptions(
        sender="License Portal <portal@portal.test>",
        portal_url=PORTAL_URL,
        retry_base=timedelta(seconds=30),
        lease=timedelta(minutes=5),
    )


@pytest.fixture
def courier(store, mailer, directory, options, clock) -> Courier:
    return Courier(store, mailer, directory, options, clock)
