"""Fixtures of licensing's integration tests: the real auth and licensing services in this
process, on the run's broker and databases, a staff client, a portal user's client and SQL
on licensing's database (helpers: support.py)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from nameko.testing.services import replace_dependencies
from sqlalchemy import create_engine, text

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
def portal_user() -> dict[str, str]:
    """The actor of `as_user`'s calls, as the gateway sends a signed-in user."""
    return {"type": "user", "user_id": "U-AAAA-BBBB", "email": "x@y.test"}


@pytest.fixture
def as_user(licensing, portal_user: dict[str, str]) -> Iterator[Rpc]:
    """A client acting as a signed-in portal user (the gateway's context data)."""
    with standalone_client(timeout=15, context_data={"actor": portal_user}) as client:
        yield Rpc(client)


@pytest.fixture
def sql(config) -> Iterator[Callable[..., list]]:
    """`sql("SELECT …", name=value)`: rows of licensing's database, each statement in a
    transaction of its own."""
    engine = create_engine(config["LICENSING_DATABASE_URL"])

    def query(statement: str, **params: Any) -> list:
        with engine.begin() as connection:
            result = connection.execute(text(statement), params)
            return result.all() if result.returns_rows else []

    yield query
    engine.dispose()


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
