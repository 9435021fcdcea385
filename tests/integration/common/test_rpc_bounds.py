"""Every RPC call is bounded, and a request answered with 503 never runs later.

No test here reads a clock. A call to a queue nobody consumes must end in the "did not
answer in time" refusal (a hang would be stopped by the pytest timeout instead); a call to a
service that never existed must end in the "not available" refusal while its own timeout is
far longer than the test is allowed to run; a request answered with 503 must leave the
queue (its TTL is the timeout) before the service comes back.
"""

from __future__ import annotations

import uuid

import pytest
from kombu import Connection
from nameko.rpc import RPC_QUEUE_TEMPLATE, rpc

from common.errors import PortalError, ServiceUnavailable
from common.rpc import RpcClient, standalone_client
from services.auth.service import AuthService
from tests.support.bus import wait_for_queue_depth

TEST_TIMEOUT = 60
pytestmark = [pytest.mark.integration, pytest.mark.timeout(TEST_TIMEOUT)]
NOT_AVAILABLE = "service is not available"
NO_ANSWER_IN_TIME = "service did not answer in time"
AUTH_QUEUE = RPC_QUEUE_TEMPLATE.format("auth")


class Caller:
    """A service that calls auth through the `RpcClient` dependency, as the gateway does."""

    name = "bounds_caller"

    auth = RpcClient("auth", timeout=1)

    @rpc(expected_exceptions=PortalError)
    def create_company(self, payload: dict) -> dict:
        return self.auth.create_company(payload)


def test_a_service_that_never_started_is_unavailable_at_once(config) -> None:
    missing = f"never_started_{uuid.uuid4().hex[:8]}"
    # waiting for this timeout would outlive the test: the broker's "unroutable" must answer
    with (
        standalone_client(timeout=TEST_TIMEOUT * 10) as rpc,
        pytest.raises(ServiceUnavailable) as caught,
    ):
        rpc.call(missing, "ping")
    assert caught.value.code == "service_unavailable"
    assert NOT_AVAILABLE in caught.value.message
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
    with standalone_client(timeout=1) as rpc, pytest.raises(ServiceUnavailable) as caught:
        rpc.call("auth", "create_company", payload)
    assert caught.value.code == "service_unavailable"
    assert NO_ANSWER_IN_TIME in caught.value.message

    # the request answered with 503 expires in the queue: nothing is left to run later
    wait_for_queue_depth(config["AMQP_URI"], AUTH_QUEUE, lambda depth: depth == 0)
    second = container_factory(AuthService)
    second.start()
    with standalone_client(timeout=5) as rpc:
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
        with pytest.raises(PortalError) as caught:
            rpc.call("bounds_caller", "create_company", payload)
        # the caller's client (1 s) gave up on auth, well before this client (5 s) would
        assert caught.value.code == "service_unavailable"
        assert caught.value.details == {"service": "auth"}
        assert NO_ANSWER_IN_TIME in caught.value.message

        wait_for_queue_depth(config["AMQP_URI"], AUTH_QUEUE, lambda depth: depth == 0)
        second = container_factory(AuthService)
        second.start()
        assert rpc.call("auth", "find_companies", email) == []
        # and through the dependency, with auth up, the call goes through
        assert rpc.call("bounds_caller", "create_company", payload)["contact_email"] == email


def test_the_reply_queue_exists_before_any_extension_starts(config, container_factory) -> None:
    """Extensions start together: a request sent before the reply consumer connects must
    find its reply queue, or nameko kills the container for 'lost replies'."""
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
