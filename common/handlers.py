"""Event handlers that never lose an event (nameko acks a message even when its handler raised).

`@reliable_handler("billing", "payment_succeeded")` is nameko's `@event_handler` with
`requeue_on_error=True`, plus two rules every consumer in the suite follows:

- a transient failure (database down, a bug fixed by the next deploy) goes back to the
  queue after a pause, so an outage is not a busy loop;
- a payload that can never be applied raises `Poison`; the handler then calls the
  service's `park(source, event_type, payload, reason)`, which keeps it for staff to look
  at, and the message is acked.

Handlers record what they applied by `event_id` in their own database, so a redelivered
event changes nothing. Their queues have the configured `QUEUE_TYPE` (the same arguments as
`common.events.queue_for`), and they drain on SIGTERM (`common.rpc.DrainingConsumer`).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

import eventlet
from nameko.events import EventHandler

from common.errors import PortalError
from common.rpc import DurableQueueConsumer

log = logging.getLogger(__name__)

# requeue_on_error hands the message straight back: pause so an outage is not a busy loop
REQUEUE_PAUSE_SECONDS = 1.0


class ReliableEventHandler(DurableQueueConsumer, EventHandler):
    """nameko's SERVICE_POOL `@event_handler`: its queue of the configured `QUEUE_TYPE`, and
    a consumer that drains on stop."""


class Poison(Exception):
    """This event can never be applied (malformed, or naming what does not exist here)."""


Handler = Callable[[Any, Any], None]


def reliable_handler(source: str, event_type: str) -> Callable[[Handler], Handler]:
    """`@reliable_handler(source, event_type)` on a service method `(self, payload)`."""

    def decorate(method: Handler) -> Handler:
        @functools.wraps(method)
        def handle(service: Any, payload: Any) -> None:
            try:
                method(service, payload)
            except Poison as exc:
                log.warning("%s.%s event parked: %s", source, event_type, exc)
                service.park(source, event_type, payload, str(exc))
            except PortalError as exc:
                # an expected, passing refusal (another service or the provider down): one
                # line, the event is retried
                log.warning(
                    "%s.%s event not applied yet (%s: %s); back to the queue",
                    source,
                    event_type,
                    exc.code,
                    exc,
                )
                eventlet.sleep(REQUEUE_PAUSE_SECONDS)
                raise
            except Exception:
                log.exception("%s.%s event not applied; back to the queue", source, event_type)
                eventlet.sleep(REQUEUE_PAUSE_SECONDS)
                raise

        return ReliableEventHandler.decorator(source, event_type, requeue_on_error=True)(handle)

    return decorate
