"""Fakes of what is outside notify (mail server, auth) and a real SQLite outbox per test."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import pytest
from sqlalchemy.orm import sessionmaker

from common.db import Db, make_engine, migrate
from common.errors import PortalError, ServiceUnavailable
from services.notify.exceptions import DeliveryError
from services.notify.mailers import Mailer
from services.notify.outbox import DeliveryOptions
from services.notify.repository import Store
from services.notify.service import MIGRATIONS
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


class Clock:
    """A settable clock for the outbox use cases; starts at the real time (payloads use it)."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


@pytest.fixture
def store(tmp_path) -> Store:
    """The real repository over a migrated SQLite file (the embedded default)."""
    engine = make_engine(f"sqlite:///{tmp_path / 'notify.db'}")
    migrate(engine, "notify", MIGRATIONS)
    yield Store(Db(sessionmaker(bind=engine, expire_on_commit=False)))
    engine.dispose()


@pytest.fixture
def mailer() -> FakeMailer:
    return FakeMailer()


@pytest.fixture
def directory() -> FakeDirectory:
    return FakeDirectory()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def options() -> DeliveryOptions:
    return DeliveryOptions(
        sender="License Portal <portal@portal.test>",
        portal_url=PORTAL_URL,
        retry_base=timedelta(seconds=30),
        lease=timedelta(minutes=5),
    )
