"""billing against the real RabbitMQ and PostgreSQL, with a stand-in licensing service.

The stand-in answers the two RPCs billing asks licensing (`get_license`,
`license_for_payment`) from a table the test fills, so renewals can be tested before and
independently of the real licensing service.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kombu import Connection
from nameko.rpc import rpc
from sqlalchemy import create_engine, text

from common.errors import NotFound
from common.events import subscription_queues
from common.rpc import standalone_client
from services.billing.service import BillingService
from tests.support.bus import BusEvents, watch_events

# the timer stays out of the way: tests run passes by hand, concurrently where it matters
QUIET = {"BILLING_RENEWAL_SCAN_SECONDS": 3600}
OK_CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2031, "cvc": "123"}

LICENSES: dict[str, dict[str, Any]] = {}  # receipt number or license ID → license


class StandInLicensing:
    """Answers like licensing: every paid receipt has a license `L-<receipt>`."""

    name = "licensing"

    @rpc
    def ping(self) -> dict[str, str]:
        return {"service": self.name, "status": "ok"}

    @rpc(expected_exceptions=NotFound)
    def get_license(self, license_id: str, customer_id: str | None = None) -> dict[str, Any]:
        found = LICENSES.get(license_id)
        if found is None or (customer_id and found["customer_id"] != customer_id):
            raise NotFound(code="license_not_found", message="No such license.")
        return found

    @rpc
    def license_for_payment(self, receipt_number: str, customer_id: str) -> dict | None:
        found = LICENSES.get(receipt_number)
        return found if found and found["customer_id"] == customer_id else None


def license_for(receipt: str, customer_id: str, **extra: Any) -> dict[str, Any]:
    license = {
        "license_id": f"L-{receipt}",
        "customer_id": customer_id,
        "product": {"code": "CADPRO", "name": "CAD Pro"},
        "seats": 2,
        "expires_at": None,
        **extra,
    }
    LICENSES[receipt] = LICENSES[license["license_id"]] = license
    return license


@pytest.fixture(autouse=True)
def leave_no_events_behind(config):
    """Empty the consumer queues after each test (its containers are gone by then).

    Billing declares notify's and licensing's queues when it starts; the events these tests
    publish for made-up customers would otherwise wait there for the next test that starts
    notify or licensing.
    """
    yield
    with Connection(config["AMQP_URI"]) as connection:
        channel = connection.channel()
        for queue in subscription_queues():
            bound = queue.bind(channel)
            bound.declare()
            bound.purge()


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
