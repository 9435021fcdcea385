"""The notify service: every email of the suite, from events, through a mail queue, with retries.

Event handlers record one delivery row per event (idempotent by `event_id`) and try to send
it at once; the delivery timer works off whatever is due (retries, backlog, other
instances' leftovers). Handlers are `reliable_handler`s, so a database outage puts the
event back on the bus after a pause instead of losing it, while a bad payload is parked by
the `record` use case, never raised.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from common.clock import Clock
from common.db import Database, Db
from common.errors import PortalError
from common.handlers import reliable_handler
from common.metrics import NOTIFY_EMAILS_PENDING, Metrics
from common.rpc import RpcClient, rpc
from common.schemas import load
from common.timers import configured_timer
from services.notify import schemas, use_cases
from services.notify.dependencies import DeliverySettings, MailerProvider
from services.notify.models import Delivery
from services.notify.repository import Store

MIGRATIONS = Path(__file__).parent / "migrations"
DEFAULT_POLL_SECONDS = 1.0


def emails_pending(db: Db) -> int:
    """Emails not sent yet (pending, or claimed by a sender): `portal_notify_emails_pending`."""
    with db.transaction() as session:
        query = select(func.count()).where(Delivery.status.in_(("pending", "sending")))
        return session.execute(query).scalar_one()


class NotifyService:
    name = "notify"

    db = Database("notify", MIGRATIONS)
    mailer = MailerProvider()
    options = DeliverySettings()
    clock = Clock()
    auth = RpcClient("auth")
    metrics = Metrics(gauges={NOTIFY_EMAILS_PENDING: emails_pending})

    # --- RPC ------------------------------------------------------------------------------

    @rpc
    def ping(self) -> dict[str, str]:
        """Readiness: `{"service": "notify", "status": "ok"}` once the database answers."""
        self.db.ping()
        return {"service": self.name, "status": "ok"}

    @rpc(expected_exceptions=PortalError)
    def list_deliveries(self, limit: int = 50, recipient: str | None = None) -> list[dict]:
        """The most recent emails first, for ops; no bodies. `limit` is 1 to 500.

        `list_deliveries(2, recipient="ada@acme.test")` →
        `[{"id": 7, "event_id": "3f0c…", "source": "auth", "kind": "password_reset_requested",
        "customer_id": "C1234567", "recipient": "ada@acme.test",
        "subject": "Reset your License Portal password", "status": "sent", "attempts": 1,
        "last_error": null, "next_attempt_at": null, "created_at": "2026-11-28T09:30:00+00:00",
        "sent_at": "2026-11-28T09:30:01+00:00", "user_id": null}, …]`. `status` is `pending`,
        `sending`, `sent`, `failed` or `done`; `last_error` keeps the reason of the latest
        failed attempt. A notice (new activation, license expiring, receipts and disputes,
        payment failed, seats all in use) goes to each user who has it on: its event's row
        (`recipient` and `user_id` null) ends `done` once split, and each recipient has a row
        of their own (`user_id`).
        """
        data = load(schemas.ListDeliveries(), {"limit": limit, "recipient": recipient})
        return Store(self.db).read(use_cases.list_deliveries, data["limit"], data["recipient"])

    @rpc(expected_exceptions=PortalError)
    def list_parked_events(self, limit: int = 50) -> list[dict]:
        """Events that no email could be made of, most recent first (payloads stay in the DB).

        `list_parked_events(1)` → `[{"id": 3, "event_id": "9a1b…", "source": "auth",
        "event_type": "company_created", "error": "The event payload is invalid.
        company: Missing data for required field.", "parked_at": "2026-11-28T09:30:00+00:00"}]`
        """
        data = load(schemas.ListParked(), {"limit": limit})
        return Store(self.db).read(use_cases.list_parked, data["limit"])

    # --- events (method names are listed in common.events.SUBSCRIPTIONS) -------------------

    @reliable_handler("auth", "company_created")
    def on_company_created(self, payload: Any) -> None:
        use_cases.accept(self._courier, "auth", "company_created", payload)

    @reliable_handler("auth", "company_invited")
    def on_company_invited(self, payload: Any) -> None:
        use_cases.accept(self._courier, "auth", "company_invited", payload)

    @reliable_handler("auth", "password_reset_requested")
    def on_password_reset_requested(self, payload: Any) -> None:
        use_cases.accept(self._courier, "auth", "password_reset_requested", payload)

    @reliable_handler("auth", "password_changed")
    def on_password_changed(self, payload: Any) -> None:
        use_cases.accept(self._courier, "auth", "password_changed", payload)

    @reliable_handler("auth", "user_invited")
    def on_user_invited(self, payload: Any) -> None:
        use_cases.accept(self._courier, "auth", "user_invited", payload)

    @reliable_handler("auth", "user_role_changed")
    def on_user_role_changed(self, payload: Any) -> None:
        use_cases.accept(self._courier, "auth", "user_role_changed", payload)

    @reliable_handler("auth", "user_disabled")
    def on_user_disabled(self, payload: Any) -> None:
        use_cases.accept(self._courier, "auth", "user_disabled", payload)

    @reliable_handler("licensing", "license_issued")
    def on_license_issued(self, payload: Any) -> None:
        use_cases.accept(self._courier, "licensing", "license_issued", payload)

    @reliable_handler("licensing", "license_extended")
    def on_license_extended(self, payload: Any) -> None:
        use_cases.accept(self._courier, "licensing", "license_extended", payload)

    @reliable_handler("licensing", "installation_activated")
    def on_installation_activated(self, payload: Any) -> None:
        use_cases.accept(self._courier, "licensing", "installation_activated", payload)

    @reliable_handler("licensing", "license_expiring")
    def on_license_expiring(self, payload: Any) -> None:
        use_cases.accept(self._courier, "licensing", "license_expiring", payload)

    @reliable_handler("licensing", "license_suspended")
    def on_license_suspended(self, payload: Any) -> None:
        use_cases.accept(self._courier, "licensing", "license_suspended", payload)

    @reliable_handler("licensing", "license_resumed")
    def on_license_resumed(self, payload: Any) -> None:
        use_cases.accept(self._courier, "licensing", "license_resumed", payload)

    @reliable_handler("licensing", "license_features_changed")
    def on_license_features_changed(self, payload: Any) -> None:
        use_cases.accept(self._courier, "licensing", "license_features_changed", payload)

    @reliable_handler("licensing", "seats_exhausted")
    def on_seats_exhausted(self, payload: Any) -> None:
        use_cases.accept(self._courier, "licensing", "seats_exhausted", payload)

    @reliable_handler("billing", "payment_succeeded")
    def on_payment_succeeded(self, payload: Any) -> None:
        use_cases.accept(self._courier, "billing", "payment_succeeded", payload)

    @reliable_handler("billing", "payment_failed")
    def on_payment_failed(self, payload: Any) -> None:
        use_cases.accept(self._courier, "billing", "payment_failed", payload)

    @reliable_handler("billing", "recurring_payment_cancelled")
    def on_recurring_payment_cancelled(self, payload: Any) -> None:
        use_cases.accept(self._courier, "billing", "recurring_payment_cancelled", payload)

    @reliable_handler("billing", "offline_payment_recorded")
    def on_offline_payment_recorded(self, payload: Any) -> None:
        use_cases.accept(self._courier, "billing", "offline_payment_recorded", payload)

    @reliable_handler("billing", "payment_refunded")
    def on_payment_refunded(self, payload: Any) -> None:
        use_cases.accept(self._courier, "billing", "payment_refunded", payload)

    @reliable_handler("billing", "payment_disputed")
    def on_payment_disputed(self, payload: Any) -> None:
        use_cases.accept(self._courier, "billing", "payment_disputed", payload)

    @reliable_handler("billing", "payment_dispute_closed")
    def on_payment_dispute_closed(self, payload: Any) -> None:
        use_cases.accept(self._courier, "billing", "payment_dispute_closed", payload)

    @reliable_handler("billing", "recurring_payment_resumed")
    def on_recurring_payment_resumed(self, payload: Any) -> None:
        use_cases.accept(self._courier, "billing", "recurring_payment_resumed", payload)

    @reliable_handler("billing", "recurring_payment_card_changed")
    def on_recurring_payment_card_changed(self, payload: Any) -> None:
        use_cases.accept(self._courier, "billing", "recurring_payment_card_changed", payload)

    # --- delivery worker ------------------------------------------------------------------

    # eager: work that piled up while the service was down starts at once
    @configured_timer("NOTIFY_POLL_SECONDS", default=DEFAULT_POLL_SECONDS, eager=True)
    def deliver_due(self) -> None:
        """Send what is due: new emails not yet sent, retries, and claims whose lease ran out."""
        use_cases.deliver_due(self._courier)

    @property
    def _courier(self) -> use_cases.Courier:
        return use_cases.Courier(Store(self.db), self.mailer, self.auth, self.options, self.clock)
