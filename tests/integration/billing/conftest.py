"""billing against the real RabbitMQ and PostgreSQL, with a stand-in licensing service.

The stand-in answers the RPCs billing asks licensing (`get_license` for a renewal bought by
hand, `get_product` / `list_products` for what is on sale) from tables the test fills, and
`license_for` publishes the `license_issued` event licensing would, so renewals can be tested
independently of the real licensing service.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from nameko.rpc import rpc
from nameko.standalone.events import event_dispatcher
from sqlalchemy import create_engine, text

from common.errors import NotFound
from common.rpc import standalone_client
from services.billing.service import BillingService
from tests.support.bus import BusEvents, watch_events
from tests.support.waiting import eventually

# the timer stays out of the way: tests run passes by hand, concurrently where it matters
QUIET = {"BILLING_RENEWAL_SCAN_SECONDS": 3600}
OK_CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2031, "cvc": "123"}

LICENSES: dict[str, dict[str, Any]] = {}  # license ID → license
# product code → product; "cadpro" is on sale unless a test archives it
PRODUCTS: dict[str, dict[str, Any]] = {"cadpro": {"code": "cadpro", "name": "CAD Pro"}}


class StandInLicensing:
    """Answers `get_license` like licensing, for the licenses `license_for` issued, and
    `get_product` / `list_products` for `PRODUCTS`."""

    name = "licensing"

    @rpc
    def ping(self) -> dict[str, str]:
        return {"service": self.name, "status": "ok"}

    @rpc(expected_exceptions=NotFound)
    def get_license(
        self, license_id: str, customer_id: str | None = None, reveal_password: bool = True
    ) -> dict[str, Any]:
        # billing asks with reveal_password=False: it needs no activation password
        assert reveal_password is False
        found = LICENSES.get(license_id)
        if found is None or (customer_id and found["customer_id"] != customer_id):
            raise NotFound(code="license_not_found", message="No such license.")
        return found

    @rpc(expected_exceptions=NotFound)
    def get_product(self, code: str) -> dict[str, Any]:
        found = PRODUCTS.get(code)
        if found is None:
            raise NotFound(code="product_not_found", message="No such product.")
        return {"active": True, **found}

    @rpc
    def list_products(self, include_archived: bool = False) -> list[dict[str, Any]]:
        products = [{"active": True, **product} for product in PRODUCTS.values()]
        return [p for p in products if include_archived or p["active"]]


def license_for(rpc, receipt: str, customer_id: str) -> dict[str, Any]:
    """Issue the license `L-<receipt>` as licensing would, and wait until billing knows it."""
    license = {
        "license_id": f"L-{receipt}",
        "product": {"code": "cadpro", "name": "CAD Pro"},
        "seats": 2,
        # a bought license runs to its paid period's end (a perpetual one needs no renewal)
        "expires_at": (datetime.now(UTC) + timedelta(days=31)).isoformat(),
        "status": "active",
    }
    LICENSES[license["license_id"]] = {**license, "customer_id": customer_id}
    event = {
        "event_id": uuid.uuid4().hex,
        "occurred_at": datetime.now(UTC).isoformat(),
        "customer_id": customer_id,
        "license": license,
        "receipt_number": receipt,
    }
    event_dispatcher()("licensing", "license_issued", event)
    eventually(
        lambda: (
            rpc.call("billing", "get_receipt", receipt, customer_id)["license_id"]
            == license["license_id"]
        )
    )
    return LICENSES[license["license_id"]]


@pytest.fixture
def start_billing(config, container_factory):
    def start(**overrides: Any):
        container = container_factory(BillingService, {**QUIET, **overrides})
        container.start()
        return container

    return start


@pytest.fixture
def licensing(config, container_factory):
    container = container_factory(StandInLicensing)
    container.start()
    return container


@pytest.fixture
def billing(start_billing, licensing):
    return start_billing()


@pytest.fixture
def rpc(config) -> Iterator[Any]:
    with standalone_client(timeout=10) as client:
        yield client


@pytest.fixture
def plan(rpc, billing) -> dict[str, Any]:
    code = f"cad-{uuid.uuid4().hex[:8]}"
    return rpc.call(
        "billing",
        "create_plan",
        {
            "code": code,
            "product_code": "CADPRO",
            "amount": 4900,
            "currency": "EUR",
            "interval": "month",
        },
    )


@pytest.fixture
def sql(config):
    """`sql("SELECT …", name=value)`: rows of billing's database, for what RPC does not show."""
    engine = create_engine(config["BILLING_DATABASE_URL"])

    def query(statement: str, **params: Any) -> list:
        with engine.connect() as connection:
            return connection.execute(text(statement), params).all()

    yield query
    engine.dispose()


@pytest.fixture
def billing_events(config, billing) -> Iterator[BusEvents]:
    with watch_events(config["AMQP_URI"], "billing") as events:
        yield events
