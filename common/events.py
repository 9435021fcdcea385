"""Events: past-tense facts with an `event_id`, and queues that exist before anyone publishes.

nameko publishes events with `mandatory=False`, so an event whose consumer queue was never
declared (its consumer has never started) is dropped silently. `SUBSCRIPTIONS` lists every
SERVICE_POOL handler in the suite; each producer declares its consumers' queues when it
starts (and `portalctl bus declare` does it for ops), so a cold start in any order loses
nothing. A test checks this table against the real `@event_handler` declarations.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from kombu import Connection, Queue
from nameko.containers import WorkerContext
from nameko.events import EventDispatcher
from nameko.messaging import encode_to_headers
from nameko.standalone.events import get_event_exchange

from common import settings
from common.context import ACTOR, REQUEST_ID, current_request_id
from common.idempotency import REQUEST_KEY

# what stays with the request that made a fact: its key and who acted
PRIVATE_CONTEXT = frozenset({REQUEST_KEY, ACTOR})

# (source service, event type, consuming service, handler method)
SUBSCRIPTIONS: list[tuple[str, str, str, str]] = [
    ("auth", "company_created", "notify", "on_company_created"),
    ("auth", "password_reset_requested", "notify", "on_password_reset_requested"),
    ("auth", "password_changed", "notify", "on_password_changed"),
    ("auth", "company_invited", "notify", "on_company_invited"),
    ("auth", "user_invited", "notify", "on_user_invited"),
    ("auth", "user_role_changed", "notify", "on_user_role_changed"),
    ("auth", "user_disabled", "notify", "on_user_disabled"),
    ("billing", "payment_succeeded", "licensing", "on_payment_succeeded"),
    ("billing", "payment_succeeded", "notify", "on_payment_succeeded"),
    ("billing", "payment_failed", "notify", "on_payment_failed"),
    ("billing", "recurring_payment_cancelled", "notify", "on_recurring_payment_cancelled"),
    ("billing", "offline_payment_recorded", "notify", "on_offline_payment_recorded"),
    ("billing", "payment_refunded", "notify", "on_payment_refunded"),
    ("billing", "recurring_payment_resumed", "notify", "on_recurring_payment_resumed"),
    ("billing", "recurring_payment_card_changed", "notify", "on_recurring_payment_card_changed"),
    ("billing", "payment_disputed", "licensing", "on_payment_disputed"),
    ("billing", "payment_disputed", "notify", "on_payment_disputed"),
    ("billing", "payment_dispute_closed", "licensing", "on_payment_dispute_closed"),
    ("billing", "payment_dispute_closed", "notify", "on_payment_dispute_closed"),
    ("licensing", "license_issued", "billing", "on_license_issued"),
    ("licensing", "license_issued", "notify", "on_license_issued"),
    ("licensing", "license_extended", "billing", "on_license_extended"),
    ("licensing", "license_extended", "notify", "on_license_extended"),
    ("licensing", "installation_activated", "notify", "on_installation_activated"),
    ("licensing", "license_expiring", "notify", "on_license_expiring"),
    ("licensing", "license_suspended", "notify", "on_license_suspended"),
    ("licensing", "license_resumed", "notify", "on_license_resumed"),
    ("licensing", "license_features_changed", "notify", "on_license_features_changed"),
    ("licensing", "seats_exhausted", "notify", "on_seats_exhausted"),
    ("licensing", "payment_not_applied", "billing", "on_payment_not_applied"),
]


def queue_for(source: str, event_type: str, consumer: str, method: str) -> Queue:
    """The queue nameko's SERVICE_POOL `@event_handler` declares, with identical arguments."""
    return Queue(
        f"evt-{source}-{event_type}--{consumer}.{method}",
        exchange=get_event_exchange(source),
        routing_key=event_type,
        durable=True,
        auto_delete=False,
        exclusive=False,
        queue_arguments=settings.durable_queue_arguments() or None,
    )


def subscription_queues(source: str | None = None) -> list[Queue]:
    return [queue_for(*row) for row in SUBSCRIPTIONS if source is None or row[0] == source]


def declare_subscriptions(amqp_uri: str | None = None, source: str | None = None) -> int:
    """Declare the exchanges and consumer queues (of `source`, or all); returns the count."""
    queues = subscription_queues(source)
    with Connection(amqp_uri or settings.amqp_uri()) as connection:
        channel = connection.channel()
        for queue in queues:
            queue.bind(channel).declare()
    return len(queues)


def new_event(payload: dict[str, Any]) -> dict[str, Any]:
    """The payload with a fresh `event_id` and `occurred_at` (UTC, ISO 8601), and the
    `request_id` of the request that caused it (the current worker's), when there is one.

    The outbox stores the stamped payload, so an event the relay publishes later still names
    its request. A payload that already names a request keeps it.
    """
    event = {
        **payload,
        "event_id": uuid.uuid4().hex,
        "occurred_at": datetime.now(UTC).isoformat(),
    }
    request_id = current_request_id()
    if request_id and not event.get(REQUEST_ID):
        event[REQUEST_ID] = request_id
    return event


class EventBus(EventDispatcher):
    """Dependency: `events = EventBus()`, then `self.events("company_created", {...})`.

    Declares this service's consumer queues at start-up, and stamps every payload with an
    `event_id` and `occurred_at`. Call it after the transaction that made the fact true.
    """

    def setup(self) -> None:
        # the parent declares everything in `self.declare` when the container starts
        self.declare.extend(subscription_queues(self.container.service_name))
        super().setup()

    def get_dependency(self, worker_ctx: WorkerContext) -> Callable[[str, dict[str, Any]], dict]:
        def dispatch(event_type: str, payload: dict[str, Any]) -> None:
            # the request key is the request's own: a handler is idempotent by event_id; a
            # handler acts as the system, not as the user whose request made the fact
            context = {k: v for k, v in worker_ctx.context_data.items() if k not in PRIVATE_CONTEXT}
            self.publisher.publish(
                payload,
                exchange=self.exchange,
                routing_key=event_type,
                extra_headers=encode_to_headers(context),
            )

        def publish(event_type: str, payload: dict[str, Any]) -> dict[str, Any]:
            # an event staged in an outbox is already stamped: republish it as it is
            event = payload if "event_id" in payload else new_event(payload)
            dispatch(event_type, event)
            return event

        return publish
