"""Watch a service's events, and count what waits in a queue, on the real bus during a test."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import eventlet
from kombu import Connection, Consumer, Queue
from nameko.standalone.events import get_event_exchange


class BusEvents:
    """Every event published on one service's exchange while the watch is open."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.received: list[tuple[str, dict[str, Any]]] = []

    def on_message(self, body, message) -> None:
        if isinstance(body, str | bytes):
            body = json.loads(body)
        self.received.append((message.delivery_info["routing_key"], body))
        message.ack()

    def wait_until(self, predicate: Callable[[BusEvents], bool], timeout: float = 10.0) -> None:
        """Until `predicate(self)` holds, draining events as they come."""
        deadline = eventlet.hubs.get_hub().clock() + timeout
        while not predicate(self):
            remaining = deadline - eventlet.hubs.get_hub().clock()
            if remaining <= 0:
                raise AssertionError(f"not within {timeout}s; got {self.received}")
            try:
                self.connection.drain_events(timeout=remaining)
            except TimeoutError:
                continue

    def wait_for(self, event_type: str, count: int = 1, timeout: float = 5.0) -> list[dict]:
        """At least `count` events of `event_type`, or an AssertionError naming what came."""
        self.wait_until(lambda events: len(events.of(event_type)) >= count, timeout)
        return self.of(event_type)

    def of(self, event_type: str) -> list[dict]:
        return [body for kind, body in self.received if kind == event_type]


@contextmanager
def watch_events(amqp_uri: str, source: str) -> Iterator[BusEvents]:
    """Bind a private queue to `<source>.events` for every event type while open."""
    queue = Queue(
        f"test-{source}-events-{uuid.uuid4().hex}",
        exchange=get_event_exchange(source),
        routing_key="#",
        exclusive=True,
        auto_delete=True,
    )
    with Connection(amqp_uri) as connection:
        events = BusEvents(connection)
        with Consumer(connection, queues=[queue], callbacks=[events.on_message]):
            yield events


def queue_depth(amqp_uri: str, queue: str) -> int:
    """Messages ready in `queue` right now.

    A passive declare answers from the queue itself, exactly; the management API's figures
    are samples that lag by seconds.
    """
    with Connection(amqp_uri) as connection:
        return connection.default_channel.queue_declare(queue=queue, passive=True).message_count


def wait_for_queue_depth(
    amqp_uri: str, queue: str, predicate: Callable[[int], bool], timeout: float = 10.0
) -> int:
    """Until `predicate(depth)` holds for `queue` (e.g. `lambda n: n == 0`); the depth."""
    deadline = time.monotonic() + timeout
    while True:
        depth = queue_depth(amqp_uri, queue)
        if predicate(depth):
            return depth
        if time.monotonic() >= deadline:
            raise AssertionError(f"{queue} holds {depth} messages after {timeout}s")
        time.sleep(0.05)
