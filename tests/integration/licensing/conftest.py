"""Fixtures of licensing's integration tests: the real auth and licensing services in this
process, on the run's broker and databases, and a staff client (helpers: support.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from nameko.testing.services import replace_dependencies

from common.rpc import standalone_client
from services.auth.service import AuthService
from services.licensing.service import LicensingService
from tests.integration.licensing.support import Rpc, new_company
from tests.support.bus import BusEvents, watch_events
from tests.support.fakes import FixedClock


@pytest.fixture
def auth(config, container_factory):
    container = container_factory(AuthService)
    container.start()
    return container


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime.now(UTC))


@pytest.fixture
def another_licensing(container_factory, clock: FixedClock):
    """`another_licensing(config=None)`: one more started instance, on the test's clock."""

    def start(config: dict | None = None):
        container = container_factory(LicensingService, config)
        replace_dependencies(container, clock=clock)
        container.start()
        return container

    return start


@pytest.fixture
def licensing(config, auth, another_licensing):
    return another_licensing()


@pytest.fixture
def rpc(licensing) -> Iterator[Rpc]:
    with standalone_client(timeout=15) as client:
        yield Rpc(client)


@pytest.fixture
def product(rpc) -> str:
    code = f"cad-{uuid.uuid4().hex[:8]}"
    rpc("create_product", {"code": code, "name": "CAD Pro"})
    return code


@pytest.fixture
def company(rpc) -> str:
    return new_company(rpc)


@pytest.fixture
def bus_events(config, licensing) -> Iterator[BusEvents]:
    with watch_events(config["AMQP_URI"], "licensing") as events:
        yield events
