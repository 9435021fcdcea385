"""RPC with a bound on every call.

nameko's own clients wait forever when the target's queue exists but nobody consumes it. Here
every call has a timeout, and the request message carries the same TTL, so a request that
was already answered with `ServiceUnavailable` is dropped by RabbitMQ instead of running
later when the service comes back.

- `RpcClient("auth")` is the dependency for services and the gateway (one reply queue per
  process, shared by all workers).
- `standalone_client()` is the same for scripts and `portalctl`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from kombu.common import maybe_declare
from kombu.exceptions import OperationalError
from nameko.amqp.publish import UndeliverableMessage, get_connection
from nameko.containers import WorkerContext
from nameko.exceptions import RpcTimeout, UnknownService
from nameko.messaging import encode_to_headers
from nameko.rpc import ClusterRpc, ReplyListener
from nameko.standalone.rpc import ClusterRpcClient

from common import settings
from common.errors import ServiceUnavailable, error_from_reply

DEFAULT_TIMEOUT = 5.0


def rpc_timeout() -> float:
    return settings.get_float("RPC_TIMEOUT", DEFAULT_TIMEOUT)


def interpret(response: dict[str, Any] | None, service: str) -> Any:
    """The result of a reply body, or the `PortalError` it carries; None means no reply."""
    if response is None:
        raise ServiceUnavailable(
            f"The {service} service did not answer in time.", details={"service": service}
        )
    error = response.get("error")
    if error:
        raise error_from_reply(error)
    return response.get("result")


def _unavailable(service: str) -> ServiceUnavailable:
    return ServiceUnavailable(
        f"The {service} service is not available.", details={"service": service}
    )


class ServiceClient:
    """Calls `service.method(*args, **kwargs)` and waits at most `timeout` seconds."""

    def __init__(
        self,
        publish: Callable[..., Any],
        reply_listener: ReplyListener,
        context_data: dict,
        service: str,
        timeout: float,
    ) -> None:
        self._publish = publish
        self._reply_listener = reply_listener
        self._context_data = context_data
        self.service = service
        self.timeout = timeout

    def __getattr__(self, method: str) -> Callable[..., Any]:
        if method.startswith("_"):
            raise AttributeError(method)

        def call(*args: Any, **kwargs: Any) -> Any:
            return self.call(method, *args, **kwargs)

        return call

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        correlation_id = str(uuid.uuid4())
        wait = self._reply_listener.register_for_reply(correlation_id)
        try:
            self._publish(
                {"args": args, "kwargs": kwargs},
                routing_key=f"{self.service}.{method}",
                mandatory=True,
                correlation_id=correlation_id,
                extra_headers=encode_to_headers(self._context_data),
                expiration=self.timeout,
            )
            response = wait(self.timeout)
        except (UndeliverableMessage, UnknownService, OperationalError, OSError) as exc:
            raise _unavailable(self.service) from exc
        finally:
            self._reply_listener.pending.pop(correlation_id, None)
        return interpret(response, self.service)


class RpcClient(ClusterRpc):
    """Dependency: `auth = RpcClient("auth")`, then `self.auth.login(...)` in a worker."""

    def __init__(self, target_service: str, timeout: float | None = None, **options: Any) -> None:
        self.target_service = target_service
        self.timeout = timeout
        super().__init__(**options)

    def setup(self) -> None:
        super().setup()
        # Declare the reply queue now, before any extension starts. Extensions start
        # together, so the web server can send a request before the reply consumer has
        # connected; nameko's consumer then finds a pending reply and no queue yet, takes
        # it for an expired one and kills the container (ReplyQueueExpiredWithPendingReplies).
        with get_connection(self.amqp_uri) as connection:
            maybe_declare(self.reply_listener.queue, connection.channel())

    def get_dependency(self, worker_ctx: WorkerContext) -> ServiceClient:
        return ServiceClient(
            self.publisher.publish,
            self.reply_listener,
            worker_ctx.context_data,
            self.target_service,
            self.timeout or rpc_timeout(),
        )


class StandaloneRpc:
    """RPC from outside a container: `with standalone_client() as rpc: rpc.call("auth", "ping")`."""

    def __init__(self, client: ClusterRpcClient, timeout: float) -> None:
        self._client = client
        self._proxy = None
        self.timeout = timeout

    def start(self) -> StandaloneRpc:
        try:
            self._proxy = self._client.start()
        except (OperationalError, OSError) as exc:
            raise ServiceUnavailable(
                f"Cannot reach the message bus at {settings.amqp_uri()}: {exc}"
            ) from exc
        return self

    def stop(self) -> None:
        self._client.stop()

    def call(self, service: str, method: str, *args: Any, **kwargs: Any) -> Any:
        target = self._proxy[service][method]
        try:
            pending = target.call_async(*args, **kwargs)
            response = pending.get_response()
        except RpcTimeout:
            response = None
        except (UnknownService, UndeliverableMessage, OperationalError, OSError) as exc:
            raise _unavailable(service) from exc
        return interpret(response, service)


@contextmanager
def standalone_client(timeout: float | None = None) -> Iterator[StandaloneRpc]:
    timeout = timeout or rpc_timeout()
    client = ClusterRpcClient(timeout=timeout, uri=settings.amqp_uri(), expiration=timeout)
    rpc = StandaloneRpc(client, timeout).start()
    try:
        yield rpc
    finally:
        rpc.stop()
