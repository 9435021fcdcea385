"""The notify service: every email of the suite, from events, through an outbox, with retries.

Event handlers record one outbox row per event (idempotent by `event_id`) and try to send
it at once; the delivery timer works off whatever is due (retries, backlog, other
instances' leftovers). Handlers use `requeue_on_error=True`, so a database outage puts
the event back on the bus instead of losing it, while a bad payload is parked, never raised.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import eventlet
from nameko.events import event_handler
from nameko.rpc import rpc

from common.errors import PortalError
from common.rpc import RpcClient
from common.schemas import load
from common.timers import configured_timer
from common.timeutil import iso, utcnow
from services.notify import outbox, schemas
from services.notify.dependencies import MailerProvider, NotifyDatabase
from services.notify.models import Delivery, ParkedEvent

MIGRATIONS = Path(__file__).parent / "migrations"
DEFAULT_POLL_SECONDS = 1.0
# requeue_on_error hands the message straight back: without a pause, a database outage
# would spin every worker through the same messages as fast as RabbitMQ can deliver them
REQUEUE_PAUSE_SECONDS = 1.0

log = logging.getLogger(__name__)


def delivery_view(delivery: Delivery) -> dict[str, Any]:
    """A delivery for ops: the envelope and its history, never the body or the payload."""
    return {
        "id": delivery.id,
        "event_id": delivery.event_id,
        "source": delivery.source,
        "kind": delivery.kind,
        "customer_id": delivery.customer_id,
        "recipient": delivery.recipient,
        "subject": delivery.subject,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "last_error": delivery.last_error,
        "next_attempt_at": iso(delivery.next_attempt_at),
        "created_at": iso(delivery.created_at),
        "sent_at": iso(delivery.sent_at),
    }


def parked_view(parked: ParkedEvent) -> dict[str, Any]:
    return {
        "id": parked.id,
        "event_id": parked.event_id,
        "source": parked.source,
        "event_type": parked.event_type,
        "error": parked.error,
        "parked_at": iso(parked.parked_at),
    }


class NotifyService:
    name = "notify"

    store = NotifyDatabase("notify", MIGRATIONS)
    mailer = MailerProvider()
    auth = RpcClient("auth")

    # --- RPC ------------------------------------------------------------------------------

    @rpc
    def ping(self) -> dict[str, str]:
        """Readiness: `{"service": "notify", "status": "ok"}` once the database answers."""
        self.store.ping()
        return {"service": self.name, "status": "ok"}

    @rpc(expected_exceptions=PortalError)
    def list_deliveries(self, limit: int = 50, recipient: str | None = None) -> list[dict]:
        """The most recent emails first, for ops; no bodies. `limit` is 1 to 500.

        `list_deliveries(2, recipient="ada@acme.test")` →
        `[{"id": 7, "event_id": "3f0c…", "source": "auth", "kind": "password_reset_requested",
        "customer_id": "C1234567", "recipient": "ada@acme.test",
        "subject": "Reset your License Portal password", "status": "sent", "attempts": 1,
        "last_error": null, "next_attempt_at": null, "created_at": "2026-11-28T09:30:00+00:00",
        "sent_at": "2026-11-28T09:30:01+00:00"}, …]`. `status` is `pending`, `sending`, `sent`
        or `failed`; `last_error` keeps the reason of the latest failed attempt.
        """
        data = load(schemas.ListDeliveries(), {"limit": limit, "recipient": recipient})
        with self.store.repository() as repo:
            found = repo.deliveries(data["limit"], data["recipient"])
            return [delivery_view(delivery) for delivery in found]

    @rpc(expected_exceptions=PortalError)
    def list_parked_events(self, limit: int = 50) -> list[dict]:
        """Events that no email could be made of, most recent first (payloads stay in the DB).

        `list_parked_events(1)` → `[{"id": 3, "event_id": "9a1b…", "source": "auth",
        "event_type": "company_created", "error": "The event payload is invalid.
        company: Missing data for required field.", "parked_at": "2026-11-28T09:30:00+00:00"}]`
        """
        data = load(schemas.ListParked(), {"limit": limit})
        with self.store.repository() as repo:
            return [parked_view(parked) for parked in repo.parked(data["limit"])]

    # --- events (method names are listed in common.events.SUBSCRIPTIONS) -------------------

    @event_handler("auth", "company_created", requeue_on_error=True)
    def on_company_created(self, payload: Any) -> None:
        self._record("auth", "company_created", payload)

    @event_handler("auth", "password_reset_requested", requeue_on_error=True)
    def on_password_reset_requested(self, payload: Any) -> None:
        self._record("auth", "password_reset_requested", payload)

    @event_handler("auth", "password_changed", requeue_on_error=True)
    def on_password_changed(self, payload: Any) -> None:
        self._record("auth", "password_changed", payload)

    @event_handler("licensing", "license_issued", requeue_on_error=True)
    def on_license_issued(self, payload: Any) -> None:
        self._record("licensing", "license_issued", payload)

    @event_handler("licensing", "license_extended", requeue_on_error=True)
    def on_license_extended(self, payload: Any) -> None:
        self._record("licensing", "license_extended", payload)

    @event_handler("licensing", "installation_activated", requeue_on_error=True)
    def on_installation_activated(self, payload: Any) -> None:
        self._record("licensing", "installation_activated", payload)

    @event_handler("licensing", "license_expiring", requeue_on_error=True)
    def on_license_expiring(self, payload: Any) -> None:
        self._record("licensing", "license_expiring", payload)

    @event_handler("billing", "payment_succeeded", requeue_on_error=True)
    def on_payment_succeeded(self, payload: Any) -> None:
        self._record("billing", "payment_succeeded", payload)

    @event_handler("billing", "payment_failed", requeue_on_error=True)
    def on_payment_failed(self, payload: Any) -> None:
        self._record("billing", "payment_failed", payload)

    @event_handler("billing", "recurring_payment_cancelled", requeue_on_error=True)
    def on_recurring_payment_cancelled(self, payload: Any) -> None:
        self._record("billing", "recurring_payment_cancelled", payload)

    @event_handler("billing", "offline_payment_recorded", requeue_on_error=True)
    def on_offline_payment_recorded(self, payload: Any) -> None:
        self._record("billing", "offline_payment_recorded", payload)

    def _record(self, source: str, kind: str, payload: Any) -> None:
        try:
            recorded = outbox.record(self.store, source, kind, payload, utcnow())
        except Exception:
            eventlet.sleep(REQUEUE_PAUSE_SECONDS)
            raise
        if recorded.delivery_id is None:
            return
        # The row is committed, so the event may be acked whatever happens now; sending at
        # once just saves the wait for the next timer tick.
        try:
            outbox.deliver_due(
                self.store,
                self.mailer,
                self.auth,
                outbox.DeliveryOptions.from_settings(),
                only_id=recorded.delivery_id,
            )
        except Exception:
            log.exception("immediate delivery of %s failed; the timer will retry", kind)

    # --- delivery worker ------------------------------------------------------------------

    # eager: work that piled up while the service was down starts at once
    @configured_timer("NOTIFY_POLL_SECONDS", default=DEFAULT_POLL_SECONDS, eager=True)
    def deliver_due(self) -> None:
        """Send what is due: new emails not yet sent, retries, and claims whose lease ran out."""
        outbox.deliver_due(
            self.store, self.mailer, self.auth, outbox.DeliveryOptions.from_settings()
        )
