"""notify against the real RabbitMQ, PostgreSQL and an SMTP sink process, with short intervals."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from nameko.standalone.events import event_dispatcher
from sqlalchemy import create_engine, select

from common.events import declare_subscriptions, queue_for
from common.rpc import standalone_client
from services.notify.models import Delivery, ParkedEvent
from services.notify.service import NotifyService
from tests.support import bus
from tests.support.smtp_sink import SmtpSink

FAST = {
    "NOTIFY_POLL_SECONDS": 0.2,
    "NOTIFY_RETRY_BASE_SECONDS": 0.5,
    "MAIL_FROM": "License Portal <portal@portal.test>",
}


@pytest.fixture
def sink(tmp_path) -> Iterator[SmtpSink]:
    with SmtpSink(tmp_path / "smtp") as running:
        yield running


@pytest.fixture
def start_notify(config, container_factory, sink) -> Callable[..., Any]:
    """`start_notify(**settings)`: a running notify container sending to `sink` (by default).

    `config` comes first so that it is patched before, and restored after, the containers'
    own config patches.
    """

    def start(**overrides: Any):
        container = container_factory(NotifyService, {**sink.settings, **FAST, **overrides})
        container.start()
        return container

    return start


@pytest.fixture
def dispatch(config) -> Callable[[str, str, Any], None]:
    """`dispatch(source, event_type, payload)` on the bus, as the producing service would.

    Declares every consumer queue first, as producers do at start-up (common.events).
    """
    declare_subscriptions()
    return event_dispatcher()


@pytest.fixture
def rpc(config):
    with standalone_client() as client:
        yield client


class NotifyTables:
    """Direct reads of notify's tables, for what RPC deliberately does not show."""

    def __init__(self, url: str) -> None:
        self.engine = create_engine(url)

    def delivery(self, event_id: str) -> Delivery | None:
        with self.engine.connect() as connection:
            return connection.execute(
                select(Delivery.__table__).where(Delivery.event_id == event_id)
            ).first()

    def deliveries(self) -> list:
        with self.engine.connect() as connection:
            return connection.execute(select(Delivery.__table__)).all()

    def deliveries_of(self, event_id: str) -> list:
        """An event's rows: its own first, then a notice's one row per recipient."""
        with self.engine.connect() as connection:
            query = select(Delivery.__table__).where(Delivery.event_id == event_id)
            return connection.execute(query.order_by(Delivery.id)).all()

    def emails_sent(self, event_id: str) -> bool:
        """Whether the event made an email and every one was sent (a notice's own row, once
        split into its recipients' rows, is `done`: it is no email)."""
        rows = [row for row in self.deliveries_of(event_id) if row.status != "done"]
        return bool(rows) and all(row.status == "sent" for row in rows)

    def parked(self, event_id: str) -> list:
        with self.engine.connect() as connection:
            return connection.execute(
                select(ParkedEvent.__table__).where(ParkedEvent.event_id == event_id)
            ).all()


@pytest.fixture
def tables(config) -> Iterator[NotifyTables]:
    reader = NotifyTables(config["NOTIFY_DATABASE_URL"])
    yield reader
    reader.engine.dispose()


def queue_depth(config: dict, source: str, event_type: str) -> int:
    """Messages ready in notify's queue for `source.event_type` (unacked ones not counted)."""
    queue = queue_for(source, event_type, "notify", f"on_{event_type}").name
    return bus.queue_depth(config["AMQP_URI"], queue)
