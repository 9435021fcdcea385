"""The RPC transport's cost per call: the reply queue is declared once per connection; requests
and replies keep their publisher confirms.

nameko re-declared the caller's reply queue (exchange, queue, binding: three round trips)
before every request, as kombu never caches the declaration of an expiring queue.
"""

from __future__ import annotations

import uuid

import pytest
from kombu.entity import Queue
from nameko.amqp.publish import Publisher
from nameko.rpc import rpc

from common.errors import PortalError
from common.rpc import RpcClient, _Responder, standalone_client

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]
CALLS = 5


class Echo:
    name = f"transport_echo_{uuid.uuid4().hex[:6]}"

    @rpc
    def echo(self, value: str) -> str:
        return value


class Caller:
    name = f"transport_caller_{uuid.uuid4().hex[:6]}"

    target = RpcClient(Echo.name, timeout=5)

    @rpc(expected_exceptions=PortalError)
    def relay(self, count: int) -> list[str]:
        return [self.target.echo(str(index)) for index in range(count)]


def test_the_reply_queue_is_declared_once_not_before_every_request(
    config, container_factory, monkeypatch
) -> None:
    echo = container_factory(Echo)
    echo.start()
    caller = container_factory(Caller)
    caller.start()
    reply_queue = next(
        ext.reply_listener.queue for ext in caller.extensions if isinstance(ext, RpcClient)
    ).name
    declared: list[str] = []
    queue_declare = Queue.queue_declare

    def counting(self: Queue, *args: object, **kwargs: object) -> object:
        declared.append(self.name)
        return queue_declare(self, *args, **kwargs)

    monkeypatch.setattr(Queue, "queue_declare", counting)
    with standalone_client(timeout=10) as client:
        assert client.call(Caller.name, "relay", CALLS) == [str(i) for i in range(CALLS)]
        assert client.call(Caller.name, "relay", CALLS) == [str(i) for i in range(CALLS)]
    # by the reply consumer as it connects, and once by the publishing connection: not
    # before each of the calls
    assert declared.count(reply_queue) <= 2


def test_replies_and_requests_keep_their_publisher_confirms() -> None:
    # without its confirm, a reply published as the broker closed the connection (a blip)
    # raised out of kombu's retry and killed the service's container (clean-clone CI)
    assert _Responder.publisher_cls.use_confirms is True
    # requests keep theirs: `mandatory` refuses a call to a service that never started
    assert RpcClient.publisher_cls.use_confirms is Publisher.use_confirms is True
