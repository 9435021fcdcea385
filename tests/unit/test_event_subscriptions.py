"""common.events.SUBSCRIPTIONS and the real `@event_handler`s agree, both ways.

Producers declare their consumers' queues from that table (docs/events.md: an event published
before its queue exists is dropped), so a handler missing from it loses events on a cold
start, and a row naming no handler fills a queue nobody reads.
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import pytest
from nameko import config
from nameko.containers import ServiceContainer
from nameko.events import SERVICE_POOL, EventHandler
from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR

import services
from common.events import SUBSCRIPTIONS, queue_for, subscription_queues

SERVICES_DIR = Path(services.__file__).parent
SERVICE_NAMES = sorted(path.parent.name for path in SERVICES_DIR.glob("*/service.py"))


def service_class(consumer: str):
    """The nameko service class called `consumer` in services/<consumer>/service.py."""
    module = importlib.import_module(f"services.{consumer}.service")
    found = [
        cls
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if cls.__module__ == module.__name__ and getattr(cls, "name", None) == consumer
    ]
    assert len(found) == 1, f"services.{consumer}.service should define one service {consumer!r}"
    return found[0]


def event_handlers(cls) -> list[tuple[str, EventHandler]]:
    handlers = []
    for method_name, method in inspect.getmembers(cls, inspect.isfunction):
        for entrypoint in getattr(method, ENTRYPOINT_EXTENSIONS_ATTR, ()):
            if isinstance(entrypoint, EventHandler):
                handlers.append((method_name, entrypoint))
    return handlers


def test_the_table_has_no_duplicates() -> None:
    assert len(set(SUBSCRIPTIONS)) == len(SUBSCRIPTIONS)
    assert len({queue.name for queue in subscription_queues()}) == len(SUBSCRIPTIONS)


@pytest.mark.parametrize("row", SUBSCRIPTIONS, ids=lambda row: f"{row[2]}.{row[3]}")
def test_every_row_names_a_real_service_pool_handler(row) -> None:
    source, event_type, consumer, method_name = row
    cls = service_class(consumer)
    method = getattr(cls, method_name, None)
    assert method is not None, f"{cls.__name__} has no method {method_name}"
    handlers = [
        entrypoint
        for entrypoint in getattr(method, ENTRYPOINT_EXTENSIONS_ATTR, ())
        if isinstance(entrypoint, EventHandler)
    ]
    assert handlers, f"{cls.__name__}.{method_name} is not an @event_handler"
    assert any(
        h.source_service == source and h.event_type == event_type and h.handler_type == SERVICE_POOL
        for h in handlers
    ), [(h.source_service, h.event_type, h.handler_type) for h in handlers]


@pytest.mark.parametrize("name", SERVICE_NAMES)
def test_every_service_pool_handler_is_listed(name: str) -> None:
    cls = service_class(name)
    for method_name, handler in event_handlers(cls):
        if handler.handler_type != SERVICE_POOL:
            continue
        row = (handler.source_service, handler.event_type, name, method_name)
        assert row in SUBSCRIPTIONS, f"{row} is missing from common.events.SUBSCRIPTIONS"


@pytest.mark.parametrize("row", SUBSCRIPTIONS, ids=lambda row: f"{row[2]}.{row[3]}")
def test_declared_queue_is_identical_to_the_one_nameko_consumes(row) -> None:
    """RabbitMQ refuses a second declaration of a queue with other arguments (406)."""
    consumer, method_name = row[2], row[3]
    with config.patch({"AMQP_URI": "memory://"}):
        container = ServiceContainer(service_class(consumer))
        [handler] = [
            ep
            for ep in container.entrypoints
            if isinstance(ep, EventHandler) and ep.method_name == method_name
        ]
        handler.setup()  # computes the queue; connects nowhere
    ours, theirs = queue_for(*row), handler.queue
    assert (ours.name, ours.routing_key, ours.exchange.name, ours.exchange.type) == (
        theirs.name,
        theirs.routing_key,
        theirs.exchange.name,
        theirs.exchange.type,
    )
    assert (ours.durable, ours.auto_delete, ours.exclusive) == (
        theirs.durable,
        theirs.auto_delete,
        theirs.exclusive,
    )
    assert (ours.queue_arguments or {}) == (theirs.queue_arguments or {})
