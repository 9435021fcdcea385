"""RPC with a bound on every call, transient messages, and a caller the broker vouches for.

nameko's own clients wait forever when the target's queue exists but nobody consumes it. Here
every call has a timeout, and the request message carries the same TTL, so a request that
was already answered with `ServiceUnavailable` is dropped by RabbitMQ instead of running
later when the service comes back.

- `RpcClient("auth")` is the dependency for services and the gateway (one reply queue per
  process, shared by all workers).
- `standalone_client()` is the same for scripts and `portalctl`.
- `@rpc` is nameko's entrypoint whose worker knows who called: every request and reply is
  published with the AMQP `user_id` property set to the connection's user, which RabbitMQ
  refuses unless it is that user, so `Caller` (the `BusCaller()` dependency) tells a
  gateway from staff without trusting anything the caller wrote (common/bus.py).
- Requests and replies are transient (delivery mode 1): they live seconds, and card numbers
  in `billing.purchase` must never reach the broker's disk (nameko's default is persistent).
  Replies keep their publisher confirms (without them a broker blip during a reply killed the
  service: the unconfirmed publish raised out of kombu's retry), and the caller's reply queue
  is declared once per connection, not before every request (`ReplyQueue`).
- Every consumer of a service (`@rpc`, and `@reliable_handler` in common/handlers.py) is a
  `DrainingConsumer`: on SIGTERM it stops taking messages, lets the ones it holds finish and
  be acknowledged (bounded by `SHUTDOWN_TIMEOUT`), and only then closes its connection.
- `rpc-<service>` is declared with `settings.durable_queue_arguments()` (`QUEUE_TYPE`).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import eventlet
from amqp.exceptions import AMQPError
from kombu import Queue
from kombu.common import maybe_declare
from kombu.exceptions import OperationalError
from kombu.message import Message
from nameko import config as nameko_config
from nameko.amqp.consume import Consumer
from nameko.amqp.publish import Publisher, UndeliverableMessage, get_connection
from nameko.constants import (
    AMQP_SSL_CONFIG_KEY,
    HEADER_PREFIX,
    LOGIN_METHOD_CONFIG_KEY,
    NON_PERSISTENT,
)
from nameko.containers import WorkerContext
from nameko.exceptions import RpcTimeout, UnknownService
from nameko.extensions import DependencyProvider
from nameko.messaging import encode_to_headers
from nameko.rpc import (
    RPC_REPLY_QUEUE_TEMPLATE,
    ClusterRpc,
    ReplyListener,
    Responder,
    Rpc,
    RpcConsumer,
    get_rpc_exchange,
)
from nameko.standalone.rpc import ClusterRpcClient

from common import settings, tracing
from common.bus import kind_of, redacted, reply_queue_label, user_of
from common.errors import Forbidden, ServiceUnavailable, error_from_reply
from common.idempotency import REQUEST_KEY, derived_key

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 5.0
# how long a stopping process waits for the messages it holds; Kubernetes' default grace
# period is 30 s, so this leaves time for the rest of the shutdown before a SIGKILL
DEFAULT_SHUTDOWN_TIMEOUT = 20.0


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


class TransientPublisher(Publisher):
    """nameko's publisher for RPC requests and replies: transient, and stamped with the
    connection's user as `user_id` (RabbitMQ refuses any other value)."""

    delivery_mode = NON_PERSISTENT

    def publish(self, payload: Any, **kwargs: Any) -> None:
        user = user_of(self.amqp_uri)
        if user:
            kwargs.setdefault("user_id", user)
        super().publish(payload, **kwargs)


class ReplyQueue(Queue):
    """The reply queue as the request publisher declares it: once per connection.

    nameko's RPC publisher (re)declares the caller's reply queue before every request, in
    case it expired, and kombu never remembers the declaration of a queue with `x-expires`:
    each request cost three more round trips to the broker (exchange, queue, binding) before
    it was even sent. The queue cannot expire while its consumer is connected (`x-expires`
    counts unused time only), and the reply consumer declares it again when it reconnects;
    declaring it once per publishing connection (kombu forgets its declarations on a
    reconnection) still covers a broker that lost it.
    """

    @property
    def can_cache_declaration(self) -> bool:
        return True

    @classmethod
    def of(cls, queue: Queue) -> ReplyQueue:
        return cls(
            queue.name,
            exchange=queue.exchange,
            routing_key=queue.routing_key,
            queue_arguments=queue.queue_arguments,
        )


class ServiceClient:
    """Calls `service.method(*args, **kwargs)` and waits at most `timeout` seconds."""

    def __init__(
        self,
        publish: Callable[..., Any],
        reply_listener: ReplyListener,
        context_data: Callable[[], dict],
        service: str,
        timeout: float,
    ) -> None:
        self._publish = publish
        self._reply_listener = reply_listener
        # read at each call: the gateway sets the request key while its worker runs
        self._context_data = context_data
        self._calls: dict[str, int] = {}
        self.service = service
        self.timeout = timeout

    def _call_key(self, worker_key: str, method: str) -> str:
        """The request key of this worker's n-th call of `method`: derived from the worker's
        own key, so a redelivered worker making the same calls sends the same keys, and two
        calls of one worker never share a key."""
        count = self._calls[method] = self._calls.get(method, 0) + 1
        return derived_key(worker_key, f"{self.service}.{method}#{count}")

    def __getattr__(self, method: str) -> Callable[..., Any]:
        if method.startswith("_"):
            raise AttributeError(method)

        def call(*args: Any, **kwargs: Any) -> Any:
            return self.call(method, *args, **kwargs)

        return call

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        correlation_id = str(uuid.uuid4())
        wait = self._reply_listener.register_for_reply(correlation_id)
        context = dict(self._context_data())
        if context.get(REQUEST_KEY):
            context[REQUEST_KEY] = self._call_key(str(context[REQUEST_KEY]), method)
        # a client span (when tracing is on), whose `traceparent` the context data carries
        with tracing.client_span(self.service, method, context):
            try:
                self._publish(
                    {"args": args, "kwargs": kwargs},
                    routing_key=f"{self.service}.{method}",
                    mandatory=True,
                    correlation_id=correlation_id,
                    extra_headers=encode_to_headers(context),
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

    publisher_cls = TransientPublisher

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
        self.publisher.declare = [ReplyQueue.of(self.reply_listener.queue)]

    def get_dependency(self, worker_ctx: WorkerContext) -> ServiceClient:
        return ServiceClient(
            self.publisher.publish,
            self.reply_listener,
            lambda: worker_ctx.context_data,
            self.target_service,
            self.timeout or rpc_timeout(),
        )


class _ClusterRpcClient(ClusterRpcClient):
    """nameko's standalone client, with transient requests stamped with the user, and a
    reply queue named after the kind (`rpc.reply-staff-<uuid>`) that only it may use."""

    publisher_cls = TransientPublisher

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        # the queue object is shared by the reply listener and the publisher's declarations
        self.reply_listener.queue.name = RPC_REPLY_QUEUE_TEMPLATE.format(
            reply_queue_label(self.amqp_uri), self.uuid
        )


class StandaloneRpc:
    """RPC from outside a container: `with standalone_client() as rpc: rpc.call("auth", "ping")`."""

    def __init__(
        self, client: ClusterRpcClient, timeout: float, context_data: dict | None = None
    ) -> None:
        self._client = client
        self._proxy = None
        self.timeout = timeout
        # the very dict nameko's client sends with each request: one derived key per call
        self._context = context_data if context_data is not None else {}
        self._run_key = self._context.get(REQUEST_KEY)
        self._calls: dict[str, int] = {}

    def start(self) -> StandaloneRpc:
        try:
            self._proxy = self._client.start()
        except (OperationalError, OSError) as exc:
            raise ServiceUnavailable(
                f"Cannot reach the message bus at {redacted(self._client.amqp_uri)}: {exc}"
            ) from exc
        return self

    def stop(self) -> None:
        self._client.stop()

    def call(self, service: str, method: str, *args: Any, **kwargs: Any) -> Any:
        target = self._proxy[service][method]
        if self._run_key:
            step = f"{service}.{method}"
            count = self._calls[step] = self._calls.get(step, 0) + 1
            self._context[REQUEST_KEY] = derived_key(self._run_key, f"{step}#{count}")
        try:
            pending = target.call_async(*args, **kwargs)
            response = pending.get_response()
        except RpcTimeout:
            response = None
        except (UnknownService, UndeliverableMessage, OperationalError, OSError) as exc:
            raise _unavailable(service) from exc
        return interpret(response, service)


@contextmanager
def standalone_client(
    timeout: float | None = None, uri: str | None = None, context_data: dict | None = None
) -> Iterator[StandaloneRpc]:
    """A started client on `uri` (default `AMQP_URI`), stopped on leaving the block;
    `context_data` goes into every request's headers, as a worker's does (a `request_key`
    in it is derived per call: one key per call, the same for the same run's same call)."""
    timeout = timeout or rpc_timeout()
    context = dict(context_data or {})
    client = _ClusterRpcClient(
        context_data=context,
        timeout=timeout,
        uri=uri or settings.amqp_uri(),
        expiration=timeout,
    )
    rpc = StandaloneRpc(client, timeout, context).start()
    try:
        yield rpc
    finally:
        rpc.stop()


# --- the entrypoint: who called, as the broker verified it ---------------------------------

CALLER_KEY = "bus_user"


class _Responder(Responder):
    publisher_cls = TransientPublisher


# --- consumers that drain on SIGTERM ---------------------------------------------------------


def shutdown_timeout() -> float:
    return settings.get_float("SHUTDOWN_TIMEOUT", DEFAULT_SHUTDOWN_TIMEOUT)


# what acknowledging on a connection the broker closed raises (a blip, a broker restart);
# nameko catches only amqp's own ConnectionError, not the socket's ConnectionResetError
LOST_CONNECTION = (OSError, AMQPError, OperationalError)


def _unsettled(what: str, message: Message, exc: BaseException) -> None:
    """A message whose worker finished after its connection was lost: the broker already
    holds it again and delivers it again, and every consumer here is idempotent (the request
    ledger, `event_id`). Raised, the error would end the worker's thread, and nameko ends
    the whole container with it."""
    log.warning(
        "could not %s %s: the connection to the broker was lost (%s); the broker delivers it again",
        what,
        message.properties.get("correlation_id") or message.delivery_info.get("routing_key"),
        exc.__class__.__name__,
    )


class DrainingConsumer(Consumer):
    """nameko's consumer, stopped gracefully: `stop()` drains before it closes.

    nameko's own `stop()` ends the consuming loop at once: its connection closes within a
    second while workers still run, so their acknowledgements fail and the broker hands their
    messages to another instance to run again. Draining instead cancels the subscription
    (nothing new arrives; what was prefetched goes back to the queue), waits until every
    message it handed to a worker is acknowledged or requeued (`SHUTDOWN_TIMEOUT` at most),
    and only then closes. Past the bound, what is still held goes back to the broker when
    the connection closes, and is delivered to another instance: nothing acknowledged is
    lost either way.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.draining = False
        self._cancelled = False
        self._kombu_consumers: list[Any] = []
        self._held: set[int] = set()

    @property
    def held(self) -> int:
        """How many messages a worker is handling (acknowledged or requeued when it ends)."""
        return len(self._held)

    def get_consumers(self, consumer_cls: Any, channel: Any) -> list[Any]:
        # called again after every reconnection: a drain cancels the new ones too
        self._kombu_consumers = super().get_consumers(consumer_cls, channel)
        self._cancelled = False
        return self._kombu_consumers

    def on_iteration(self) -> None:
        # kombu's loop calls this on the consumer's own green thread, between two reads of
        # the connection: the one place where cancelling touches the channel safely
        if self.draining and not self._cancelled:
            self._cancelled = True
            for consumer in self._kombu_consumers:
                try:
                    consumer.cancel()
                except Exception as exc:  # the connection is going anyway
                    log.debug("cancelling a consumer while draining: %s", exc)

    def on_message(self, body: Any, message: Message) -> None:
        if self.draining or self.should_stop:
            self.requeue_message(message)
            return
        self._held.add(id(message))
        super().on_message(body, message)

    def ack_message(self, message: Message) -> None:
        try:
            super().ack_message(message)
        except LOST_CONNECTION as exc:
            _unsettled("acknowledge", message, exc)
        finally:
            self._held.discard(id(message))

    def requeue_message(self, message: Message) -> None:
        try:
            super().requeue_message(message)
        except LOST_CONNECTION as exc:
            _unsettled("requeue", message, exc)
        finally:
            self._held.discard(id(message))

    def stop(self) -> None:
        """Drain (bounded by `SHUTDOWN_TIMEOUT`), then end the consuming loop."""
        if self.should_stop:
            return
        self.draining = True
        deadline = time.monotonic() + shutdown_timeout()
        while self._held and time.monotonic() < deadline:
            eventlet.sleep(0.05)
        if self._held:
            log.warning(
                "stopping with %d message(s) still being handled after %.0f s; the broker"
                " delivers them again",
                len(self._held),
                shutdown_timeout(),
            )
        self.should_stop = True


def stop_draining(consumer: DrainingConsumer, container: Any) -> None:
    """Drain `consumer`; past the bound, end the container's workers that still run (the
    broker has their messages back once the consumer's connection closes)."""
    consumer.stop()
    if consumer.held:
        # nameko offers no public way to end workers without killing the container
        container._kill_worker_threads()


class DurableQueueConsumer:
    """Mixin for nameko's queue consumers (the RPC consumer, event handlers): their durable
    queue of the configured `QUEUE_TYPE`, and a consumer that drains on stop."""

    consumer_cls = DrainingConsumer

    def setup(self) -> None:
        super().setup()
        # nameko built `self.queue` and gave the consumer a list holding it: same object
        self.queue.queue_arguments = settings.durable_queue_arguments() or None

    def stop(self) -> None:
        stop_draining(self.consumer, self.container)


class VerifiedRpcConsumer(DurableQueueConsumer, RpcConsumer):
    """nameko's shared RPC consumer, answering with transient replies stamped with the user;
    `rpc-<service>` of the configured `QUEUE_TYPE`; drained on stop (`DrainingConsumer`)."""

    def handle_result(self, message: Message, result: Any, exc_info: Any) -> tuple[Any, Any]:
        responder = _Responder(
            self.amqp_uri,
            get_rpc_exchange(),
            message,
            ssl=nameko_config.get(AMQP_SSL_CONFIG_KEY),
            login_method=nameko_config.get(LOGIN_METHOD_CONFIG_KEY),
        )
        result, exc_info = responder.send_response(result, exc_info)
        self.consumer.ack_message(message)
        return result, exc_info


class VerifiedRpc(Rpc):
    """nameko's `@rpc`, whose worker context holds the request's `user_id` as `bus_user`,
    and always a `request_key`.

    nameko turns every header into context data, so a header of that name (with or without
    the `nameko.` prefix) is dropped first: only the broker-checked property counts. A
    request without a request key gets its correlation ID as one: a redelivery of the same
    message repeats it, so the ledger (common/idempotency.py) knows it. Every `@rpc` of a
    service must be this one (they share one consumer of `rpc-<service>`).
    """

    rpc_consumer = VerifiedRpcConsumer()

    def handle_message(self, body: Any, message: Message) -> None:
        headers = {
            key: value
            for key, value in (message.headers or {}).items()
            if key.removeprefix(f"{HEADER_PREFIX}.") != CALLER_KEY
        }
        user = message.properties.get("user_id")
        if user:
            headers[f"{HEADER_PREFIX}.{CALLER_KEY}"] = user
        key_header = f"{HEADER_PREFIX}.{REQUEST_KEY}"
        correlation_id = message.properties.get("correlation_id")
        if not headers.get(key_header) and correlation_id:
            headers[key_header] = f"rpc:{correlation_id}"
        message.headers = headers
        super().handle_message(body, message)


rpc = VerifiedRpc.decorator


class Caller:
    """Who sent this RPC: `user` as RabbitMQ verified it, `kind` (gateway, staff, …) or None.

    When this service itself runs without a per-kind user (plain `guest`, no `portalctl bus
    grant`), nobody has a kind and every caller is trusted: a developer's quick start. With
    per-kind users, a request without a verified user is treated like the gateway's.
    """

    def __init__(self, user: str | None, own_user: str | None) -> None:
        self.user = user
        self.kind = kind_of(user)
        self.enforced = kind_of(own_user) is not None

    @property
    def may_see_every_company(self) -> bool:
        """Staff paths (no customer ID): anyone but the internet-facing gateway."""
        if not self.enforced:
            return True
        return self.user is not None and self.kind != "gateway"

    def check_scope(self, customer_id: str | None) -> None:
        """Refuse a staff path (`customer_id` None: any company) to the gateway: `forbidden`."""
        if customer_id is None and not self.may_see_every_company:
            raise Forbidden(
                "This call needs a customer ID from this caller.",
                details={"caller": self.kind or "unverified"},
            )

    def check_kind(self, *kinds: str) -> None:
        """Refuse every caller but the `kinds` named (e.g. notify and staff): `forbidden`.

        An administrator's own user (no kind) is refused too while the rules are enforced;
        the broker's topic permissions already keep the other kinds out (common/bus.py), this
        is the same rule once more inside the service.
        """
        if self.enforced and self.kind not in kinds:
            raise Forbidden(
                "This method is not for this caller.",
                details={"caller": self.kind or "unverified"},
            )


class BusCaller(DependencyProvider):
    """Dependency: `caller = BusCaller()`, then `self.caller.check_scope(customer_id)` or
    `self.caller.check_kind("notify", "staff")`."""

    def get_dependency(self, worker_ctx: WorkerContext) -> Caller:
        return Caller(worker_ctx.context_data.get(CALLER_KEY), user_of(settings.amqp_uri()))
