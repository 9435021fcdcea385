"""Fakes of what is outside notify (mail server, auth, clock) and a real SQLite mail queue."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import pytest
from sqlalchemy import select

from common.errors import PortalError, ServiceUnavailable
from services.notify.domain import DeliveryOptions
from services.notify.exceptions import DeliveryError
from services.notify.mailers import Mailer
from services.notify.models import Delivery
from services.notify.repository import Store
from services.notify.service import MIGRATIONS
from services.notify.use_cases import Courier
from tests.support.fakes import FixedClock, migrated_db_fixtures
from tests.unit.notify.payloads import PORTAL_URL, link_for


class FakeMailer(Mailer):
    """Keeps sent messages in `sent`; fails the next `failures` sends with `error`, and every
    send to an address in `refused`."""

    def __init__(self) -> None:
        self.sent: list[EmailMessage] = []
        self.failures = 0
        self.error: Exception = DeliveryError("SMTP server smtp.test:25 answered 451: try later")
        self.attempts = 0
        self.refused: set[str] = set()

    def send(self, message: EmailMessage) -> None:
        self.attempts += 1
        address = message["To"].addresses[0].addr_spec
        if address in self.refused:
            raise DeliveryError(f"SMTP server smtp.test:25 refused the recipient {address}")
        if self.failures > 0:
            self.failures -= 1
            raise self.error
        self.sent.append(message)

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.sent if m["To"].addresses[0].addr_spec == address]


class FakeDirectory:
    """auth's `get_company`, `notice_recipients` and `password_link` as notify sees them over
    RPC: a dict, or a `PortalError` by code. Every request has a link (`payloads.link_for`)
    unless it is in `closed`. A company's notices go to its contact (as auth's defaults do:
    the contact is an owner, with every notice on) unless `recipients` says otherwise."""

    def __init__(self) -> None:
        self.companies: dict[str, dict[str, Any]] = {}
        self.unavailable = False
        self.calls: list[str] = []
        self.link_calls: list[str] = []
        self.notice_calls: list[tuple[str, str]] = []
        self.closed: set[str] = set()
        # customer ID -> notice -> users (`{user_id, email, name}`), contact first
        self.recipients: dict[str, dict[str, list[dict[str, Any]]]] = {}

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

    def notice_recipients(self, customer_id: str, notice: str) -> list[dict[str, Any]]:
        self.notice_calls.append((customer_id, notice))
        if self.unavailable:
            raise ServiceUnavailable("The auth service did not answer in time.")
        if customer_id not in self.companies:
            raise PortalError(code="company_not_found", message="No company with this ID.")
        if customer_id in self.recipients:
            return self.recipients[customer_id].get(notice, [])
        company = self.companies[customer_id]
        contact = {
            "user_id": "U-" + customer_id[1:5] + "-CONT",
            "email": company["contact_email"],
            "name": company["contact_name"],
        }
        return [contact]

    def password_link(self, request_id: str) -> dict[str, Any]:
        self.link_calls.append(request_id)
        if self.unavailable:
            raise ServiceUnavailable("The auth service did not answer in time.")
        if request_id in self.closed:
            raise PortalError(code="invalid_token", message="This link is invalid.")
        expires_at = datetime.now(UTC) + timedelta(minutes=30)
        return {"url": link_for(request_id), "expires_at": expires_at.isoformat()}


# the real schema in SQLite (the embedded default), a fresh copy per test
migrated_template, db = migrated_db_fixtures("notify", MIGRATIONS)


@pytest.fixture
def store(db) -> Store:
    return Store(db)


@pytest.fixture
def row_of(store) -> Callable[[str], Delivery | None]:
    """`row_of(event_id)`: the delivery recorded for an event (the service never asks this)."""

    def find(event_id: str) -> Delivery | None:
        with store.repository() as repo:
            return repo.session.scalar(select(Delivery).where(Delivery.event_id == event_id))

    return find


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
