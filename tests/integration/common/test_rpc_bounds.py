"""Every RPC call is bounded, and a request answered with 503 never runs later (DESIGN §8)."""

from __future__ import annotations

import time
import uuid

import eventlet
import pytest
from nameko.rpc import rpc

from common.errors import PortalError, ServiceUnavailable
from common.rpc import RpcClient, standalone_client
from services.auth.service import AuthService

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


class Caller:
    """A service that calls auth through the `RpcClient` dependency, as the gateway does."""

    name = "bounds_caller"

    auth = RpcClient("auth", timeout=1)

    @rpc(expected_exceptions=PortalError)
    def create_company(self, payload: dict) -> dict:
        return self.auth.create_company(payload)


def test_a_service_that_never_started_is_unavailable_at_once(config) -> None:
    missing = f"never_started_{uuid.uuid4().hex[:8]}"
    with standalone_client(timeout=5) as rpc:
        started = time.monotonic()
        with pytest.raises(ServiceUnavailable) as caught:
            rpc.call(missing, "ping")
        elapsed = time.monotonic() - started
    assert elapsed < 2, elapsed
    assert caught.value.code == "service_unavailable"
    assert caught.value.details == {"service": missing}


def test_a_stopped_service_times_out_and_the_request_never_runs_later(
    config, container_factory
) -> None:
    # the service has run, so its durable queue exists, but nobody consumes it now
    first = container_factory(AuthService)
    first.start()
    first.kill()

    email = f"late-{uuid.uuid4().hex[:12]}@acme.test"
    payload = {"name": "Late Ltd", "contact_name": "Lou", "contact_email": email}
    with standalone_client(timeout=1) as rpc:
        started = time.monotonic()
        with pytest.raises(ServiceUnavailable) as caught:
            rpc.call("auth", "create_company", payload)
        elapsed = time.monotonic() - started
    assert caught.value.code == "service_unavailable"
    assert 0.9 <= elapsed < 2.5, elapsed

    # the service comes back: the request that was answered with 503 must not run now
    second = container_factory(AuthService)
    second.start()
    with standalone_client(timeout=5) as rpc:
        assert rpc.call("auth", "ping")["status"] == "ok"  # queued behind the old request
        eventlet.sleep(0.3)  # let any worker that did pick the old request finish
        assert rpc.call("auth", "find_companies", email) == []
        # the same call made now does run: the check above can see a company
        rpc.call("auth", "create_company", payload)
        assert len(rpc.call("auth", "find_companies", email)) == 1


def test_the_rpc_client_dependency_is_bounded_and_its_requests_expire(
    config, container_factory
) -> None:
    first = container_factory(AuthService)
    first.start()
    first.kill()
    caller = container_factory(Caller)
    caller.start()

    email = f"late-{uuid.uuid4().hex[:12]}@acme.test"
    payload = {"name": "Late Ltd", "contact_name": "Lou", "contact_email": email}
    with standalone_client(timeout=5) as rpc:
        started = time.monotonic()
        with pytest.raises(PortalError) as caught:
            rpc.call("bounds_caller", "create_company", payload)
        elapsed = time.monotonic() - started
        assert caught.value.code == "service_unavailable"
        assert caught.value.details == {"service": "auth"}
        assert 0.9 <= elapsed < 2.5, elapsed

        second = container_factory(AuthService)
        second.start()
        assert rpc.call("auth", "ping")["status"] == "ok"
        eventlet.sleep(0.3)
        assert rpc.call("auth", "find_companies", email) == []
        # and through the dependency, with auth up, the call goes through
        assert rpc.call("bounds_caller", "create_company", payload)["contact_email"] == email


def test_the_reply_queue_exists_before_any_extension_starts(config, container_factory) -> None:
    """Extensions start together: a request sent before the reply consumer connects must
    find its reply queue, or nameko kills the container for 'lost replies'."""
    from kombu import Connection

    container = container_factory(Caller)
    container.extensions.all.setup()
    try:
        queue = next(
            ext.reply_listener.queue for ext in container.extensions if isinstance(ext, RpcClient)
        )
        with Connection(config["AMQP_URI"]) as connection:
            queue.bind(connection.channel()).queue_declare(passive=True)
    finally:
        container.extensions.all.stop()
