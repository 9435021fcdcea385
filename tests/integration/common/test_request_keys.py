"""Every RPC request reaches its worker with a request key, the same on a redelivery.

The gateway and `portalctl` set the key in the context data; a request that came without
one (another service's call) gets its AMQP correlation ID, which a redelivery repeats. A
worker that sets a key while it runs (the gateway, once it read `Idempotency-Key`) passes
it on with its next calls.
"""

from __future__ import annotations

import pytest
from nameko.containers import WorkerContext
from nameko.extensions import DependencyProvider

from common.idempotency import REQUEST_KEY, RequestInfo, Requests
from common.rpc import RpcClient, rpc, standalone_client

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


class Echo:
    name = "request_key_echo"

    request = Requests()

    @rpc
    def key(self) -> list:
        info: RequestInfo = self.request
        return [info.key, info.operation]


class Context(DependencyProvider):
    def get_dependency(self, worker_ctx: WorkerContext) -> dict:
        return worker_ctx.data


class Forwarder:
    """Sets a key while its worker runs, then calls: as the gateway does per HTTP request."""

    name = "request_key_forwarder"

    echo = RpcClient("request_key_echo")
    context = Context()

    @rpc
    def forward(self, key: str | None, calls: int = 1) -> list:
        if key is not None:
            self.context[REQUEST_KEY] = key
        return [self.echo.key()[0] for _ in range(calls)]


def test_the_caller_s_key_arrives_and_a_keyless_request_gets_its_correlation_id(
    config, container_factory
) -> None:
    container_factory(Echo).start()
    with standalone_client(context_data={REQUEST_KEY: "staff-run-1"}) as staff:
        first = staff.call("request_key_echo", "key")
        second = staff.call("request_key_echo", "key")
    assert first == ["staff-run-1>request_key_echo.key#1", "request_key_echo.key"]
    assert second[0] == "staff-run-1>request_key_echo.key#2"
    with standalone_client() as anonymous:
        first, _ = anonymous.call("request_key_echo", "key")
        second, _ = anonymous.call("request_key_echo", "key")
    assert first.startswith("rpc:") and second.startswith("rpc:")
    assert first != second  # one per call: only a redelivery repeats it


def test_a_worker_s_calls_carry_keys_derived_from_its_own(config, container_factory) -> None:
    container_factory(Echo).start()
    container_factory(Forwarder).start()
    with standalone_client() as client:
        # a key set while the worker runs (the gateway's Idempotency-Key) reaches its calls,
        # one key per call, the same ones whenever the same request runs again
        keys = client.call("request_key_forwarder", "forward", "http-abc", 2)
        assert keys == ["http-abc>request_key_echo.key#1", "http-abc>request_key_echo.key#2"]
        assert client.call("request_key_forwarder", "forward", "http-abc", 2) == keys
        # a request without a key: its correlation ID's key is derived the same way
        [key] = client.call("request_key_forwarder", "forward", None)
        assert key.startswith("rpc:") and key.endswith(">request_key_echo.key#1")
