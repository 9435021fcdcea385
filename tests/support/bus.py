"""Watch a service's events, count what waits in a queue, and deliver a request again, on
the real bus during a test."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import eventlet
from kombu import Connection, Consumer, Exchange, Producer, Queue
from nameko.standalone.events import get_event_exchange

from common.errors import PortalError
from common.rpc import interpret


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


def deliver_again(
    amqp_uri: str,
    service: str,
    method: str,
    args: list,
    times: int = 2,
    timeout: float = 15.0,
    context: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Publish one RPC request message `times` times, as the broker redelivers a request
    whose acknowledgement was lost: the same correlation ID, no request key, and `context`
    in its headers as a nameko client sends context data (`{"actor": {...}}`). The reply
    bodies that arrive within `timeout`, in arrival order."""
    exchange = Exchange("nameko-rpc", type="topic", durable=True)
    reply_to = f"rpc.reply-test-{uuid.uuid4().hex}"
    queue = Queue(reply_to, exchange=exchange, routing_key=reply_to, exclusive=True)
    replies: list[dict[str, Any]] = []

    def on_reply(body: Any, message: Any) -> None:
        replies.append(json.loads(body) if isinstance(body, str | bytes) else body)
        message.ack()

    with Connection(amqp_uri) as connection, Consumer(connection, [queue], callbacks=[on_reply]):
        producer = Producer(connection.channel(), exchange=exchange)
        correlation_id = str(uuid.uuid4())
        for _ in range(times):
            producer.publish(
                {"args": list(args), "kwargs": {}},
                routing_key=f"{service}.{method}",
                serializer="json",
                reply_to=reply_to,
                correlation_id=correlation_id,
                headers={f"nameko.{key}": value for key, value in (context or {}).items()},
                delivery_mode=1,
            )
        deadline = time.monotonic() + timeout
        while len(replies) < times and time.monotonic() < deadline:
            try:
                connection.drain_events(timeout=1)
            except TimeoutError:
                continue
    return replies


def answers(replies: list[dict[str, Any]], service: str) -> list[Any]:
    """Each reply's result, or the `PortalError` it carries."""
    found: list[Any] = []
    for reply in replies:
        try:
            found.append(interpret(reply, service))
        except PortalError as error:
            found.append(error)
    return found
