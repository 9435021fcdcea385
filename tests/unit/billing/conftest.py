"""Shared by billing's worker_factory tests: a real (SQLite) database, the outside faked.

`worker_factory` hands the service a real `common.db.Db` over a migrated SQLite file, the
sandbox provider with an in-memory ledger (or a provider that loses answers), a fixed
clock, a list that records events, fake licensing/auth RPC clients, and requests without a
key unless a test gives them one. Licensing's events are delivered by calling the handlers,
as nameko would. Test modules import the helpers: `from tests.unit.billing.conftest import
buy, …`.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from nameko.testing.services import worker_factory
from sqlalchemy import func, select

from common.audit import ActorInfo
from common.db import Db
from common.errors import PortalError
from common.idempotency import RequestInfo
from services.billing.providers import MemoryLedger, ProviderUnavailable, SandboxProvider
from services.billing.service import MIGRATIONS, BillingService
from tests.support.fakes import FixedClock, migrated_db_fixtures

T0 = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
CUSTOMER = "C1000001"
OTHER = "C2000002"
OK_CARD = {"number": "4242 4242 4242 4242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}
DECLINED = {**OK_CARD, "number": "4000000000000002"}
NO_FUNDS = {**OK_CARD, "number": "4000000000009995"}


class FakeLicensing:
    """licensing over RPC (`get_license`, `get_product`, `list_products`), and the
    `license_issued` event it publishes when it issues the license of a receipt."""

    def __init__(self) -> None:
        self.licenses: dict[str, dict[str, Any]] = {}
        self.products: dict[str, dict[str, Any]] = {
            "cadpro": {"code": "cadpro", "name": "CAD Pro", "active": True}
        }
        self.calls: list[str] = []

    def get_product(self, code: str) -> dict[str, Any]:
        self.calls.append("get_product")
        found = self.products.get(code)
        if found is None:
            raise PortalError(code="product_not_found", message="No such product.")
        return found

    def list_products(self) -> list[dict[str, Any]]:
        self.calls.append("list_products")
        return [product for product in self.products.values() if product["active"]]

    def get_license(
        self, license_id: str, customer_id: str | None = None, reveal_password: bool = True
    ) -> dict[str, Any]:
        self.calls.append("get_license")
        # billing never asks for the activation password (nor audits a view of it)
        assert reveal_password is False
        found = self.licenses.get(license_id)
        if found is None or (customer_id and found["customer_id"] != customer_id):
            raise PortalError(code="license_not_found", message="No such license.")
        return found

    def issue_for(self, receipt: str, customer_id: str, expires_at: datetime) -> dict[str, Any]:
        """Issue a license for `receipt`: the `license_issued` event licensing publishes."""
        license_id = f"L-{len(self.licenses) + 1:04d}"
        license = {
            "license_id": license_id,
            "product": {"code": "cadpro", "name": "CAD Pro"},
            "seats": 2,
            "expires_at": expires_at.isoformat(),
            "status": "active",
        }
        self.licenses[license_id] = {**license, "customer_id": customer_id}
        return license_event(customer_id, license, receipt)


def license_event(customer_id: str, license: dict[str, Any], receipt: str | None) -> dict:
    event = {
        "event_id": uuid.uuid4().hex,
        "occurred_at": T0.isoformat(),
        "customer_id": customer_id,
        "license": license,
    }
    return event if receipt is None else {**event, "receipt_number": receipt}


class FakeAuth:
    def get_company(self, customer_id: str) -> dict[str, Any]:
        if customer_id not in (CUSTOMER, OTHER):
            raise PortalError(code="company_not_found", message="No company.")
        return {"customer_id": customer_id}


class LosingProvider(SandboxProvider):
    """Charges, then loses the answer (a timeout after the provider acted)."""

    def charge(self, amount, currency, payment_method, idempotency_key, **options):
        super().charge(amount, currency, payment_method, idempotency_key, **options)
        raise ProviderUnavailable("timeout")


migrated_template, db = migrated_db_fixtures("billing", MIGRATIONS)


def billing_worker(**dependencies: Any) -> BillingService:
    """A worker with the outside faked; its requests carry no key (`service.request =
    RequestInfo(key, operation)` gives the next calls one, as a redelivery repeats it)."""
    dependencies.setdefault("auth", FakeAuth())
    dependencies.setdefault("request", RequestInfo(None, "billing.test"))
    # no actor in the context data unless a test passes `actor=ActorInfo({...})`
    dependencies.setdefault("actor", ActorInfo({}))
    return worker_factory(BillingService, **dependencies)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(T0)


@pytest.fixture
def licensing() -> FakeLicensing:
    return FakeLicensing()


@pytest.fixture
def provider() -> SandboxProvider:
    return SandboxProvider(MemoryLedger())


@pytest.fixture
def service(db, events, clock, licensing, provider) -> BillingService:
    service = billing_worker(
        db=db, events=events, clock=clock, provider=provider, licensing=licensing
    )
    service.create_plan(
        {
            "code": "cad-m",
            "product_code": "CADPRO",
            "amount": 4900,
            "currency": "eur",
            "interval": "month",
        }
    )
    return service


def count(db: Db, model) -> int:
    with db.transaction() as session:
        return session.scalar(select(func.count()).select_from(model))


def raises_code(code: str, call, *args, **kwargs) -> PortalError:
    with pytest.raises(PortalError) as caught:
        call(*args, **kwargs)
    assert caught.value.code == code, caught.value.to_dict()
    return caught.value


def buy(service, card=OK_CARD, seats: int = 2, **extra) -> dict[str, Any]:
    return service.purchase(CUSTOMER, {"plan": "cad-m", "seats": seats, "card": card, **extra})


def bought_and_licensed(service, licensing, card=OK_CARD, **extra) -> dict[str, Any]:
    """A purchase whose license licensing issued (and billing learnt)."""
    result = buy(service, card, **extra)
    receipt = result["payment"]["receipt_number"]
    service.on_license_issued(licensing.issue_for(receipt, CUSTOMER, T0 + timedelta(days=31)))
    return result


def keyed(service: BillingService, key: str | None, method: str) -> BillingService:
    """The next calls carry the request key `key` (a redelivery repeats its key)."""
    service.request = RequestInfo(key, f"billing.{method}")
    return service


def not_applied(
    receipt: str, reason: str = "product_archived", customer_id: str = CUSTOMER
) -> dict[str, Any]:
    """licensing's `payment_not_applied` for `receipt`."""
    return {
        "event_id": uuid.uuid4().hex,
        "occurred_at": T0.isoformat(),
        "receipt_number": receipt,
        "customer_id": customer_id,
        "reason": reason,
        "message": "The product CAD Pro is no longer sold.",
    }
