"""The auth service over the real bus and PostgreSQL: a container per test, a client, events.

The container's clock is a `FixedClock` at the real time, which a test may move.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from nameko.testing.services import replace_dependencies

from common.errors import PortalError
from common.rpc import standalone_client
from services.auth.service import AuthService
from tests.support.bus import BusEvents, watch_events
from tests.support.fakes import FixedClock


class Rpc:
    """`rpc.auth("login", {...})` through a bounded standalone client."""

    def __init__(self, client) -> None:
        self.client = client

    def auth(self, method: str, *args: Any) -> Any:
        return self.client.call("auth", method, *args)

    def error(self, code: str, method: str, *args: Any) -> PortalError:
        with pytest.raises(PortalError) as caught:
            self.auth(method, *args)
        assert caught.value.code == code, caught.value.to_dict()
        return caught.value


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime.now(UTC))


@pytest.fixture
def auth(config, container_factory, clock: FixedClock):
    container = container_factory(AuthService)
    replace_dependencies(container, clock=clock)
    container.start()
    return container


@pytest.fixture
def rpc(auth) -> Iterator[Rpc]:
    with standalone_client(timeout=10) as client:
        yield Rpc(client)


@pytest.fixture
def bus_events(config, auth) -> Iterator[BusEvents]:
    with watch_events(config["AMQP_URI"], "auth") as events:
        yield events
