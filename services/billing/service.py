"""The billing service: plans, purchases by card, receipts, recurring payments and renewals.

Entrypoints only: each loads its payload with a schema, runs a use case from `purchases`
or `renewals`, and publishes the resulting events after the transaction committed.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import eventlet
from nameko.rpc import rpc
from nameko.timer import timer

from common import outbox, settings
from common.db import Database
from common.errors import PortalError, ServiceUnavailable
from common.events import EventBus
from common.rpc import RpcClient
from common.schemas import load
from common.timers import configured_timer
from services.billing import demo, purchases, renewals, schemas
from services.billing.dependencies import Clock, Provider
from services.billing.models import EventOutbox
from services.billing.repository import BillingRepository

MIGRATIONS = Path(__file__).parent / "migrations"
DEFAULT_RENEWAL_SCAN_SECONDS = 300.0
# reads learn license IDs from licensing on the way; they wait for it this long at most
LINK_TIMEOUT_SECONDS = 1.0

log = logging.getLogger(__name__)


def vendor() -> dict[str, str]:
    """Who sells: printed on every receipt."""
    return {
        "name": settings.get("BILLING_VENDOR_NAME", "License Portal Software"),
        "address": settings.get("BILLING_VENDOR_ADDRESS", ""),
        "email": settings.get("MAIL_FROM", "portal@localhost"),
    }


def _key(value: Any, field: str) -> str:
    """A short identifier argument (customer ID, receipt number, …) or a 422 naming it."""
    if not isinstance(value, str) or not value.strip() or len(value) > 64 or "\x00" in value:
        raise PortalError(
            f"Invalid value for: {field}.",
            code="validation_error",
            details={"fields": {field: ["Expected a short non-empty string."]}},
        )
    return value.strip()


class BillingService:
    name = "billing"

    db = Database("billing", MIGRATIONS)
    events = EventBus()
    clock = Clock()
    provider = Provider()
    auth = RpcClient("auth")
    licensing = RpcClient("licensing")

    def _publish(self, outcome: purchases.Outcome) -> purchases.Outcome:
        """Publish the events the outcome's committed transaction staged in the outbox."""
        self._flush(outcome.events)
        return outcome

    def _flush(self, events: list) -> None:
        outbox.flush(self.db, EventOutbox, self.events, events)

    def _license_for_payment(self, receipt_number: str, customer_id: str) -> dict | None:
        return self.licensing.license_for_payment(receipt_number, customer_id)

    def _quick_license_for_payment(self, receipt_number: str, customer_id: str) -> dict | None:
        """The same, for reads: a slow or absent licensing must not make a list answer late."""
        with eventlet.Timeout(LINK_TIMEOUT_SECONDS, False):
            return self._license_for_payment(receipt_number, customer_id)
        raise ServiceUnavailable(details={"service": "licensing"})

    @rpc
    def ping(self) -> dict[str, str]:
        """Readiness: `{"service": "billing", "status": "ok"}` once the database answers."""
        self.db.ping()
        return {"service": self.name, "status": "ok"}

    # --- plans ----------------------------------------------------------------------------

    @rpc(expected_exceptions=PortalError)
    def create_plan(self, payload: dict[str, Any]) -> dict[str, Any]:
        """A price for a product, per seat and interval, in minor units.

        `{"code": "cadpro-yearly", "product_code": "CADPRO", "amount": 49000,
        "currency": "EUR", "interval": "year"}` → the plan with `"price": "EUR 490.00"`;
        `plan_exists` if the code is taken.
        """
        data = load(schemas.CreatePlan(), payload)
        with self.db.transaction() as session:
            return purchases.create_plan(BillingRepository(session), data, self.clock.now())

    @rpc(expected_exceptions=PortalError)
    def list_plans(self, include_inactive: bool = False) -> list[dict[str, Any]]:
        """Plans on sale (all with `include_inactive`), by product then price.

        → `[{"code", "product_code", "amount", "currency", "price", "interval", "active"}]`
        """
        with self.db.transaction() as session:
            plans = BillingRepository(session).plans(active_only=not include_inactive)
            return [purchases.plan_view(plan) for plan in plans]

    # --- purchases ------------------------------------------------------------------------

    @rpc(expected_exceptions=PortalError)
    def purchase(self, customer_id: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Buy `seats` of a plan by card, or renew `license_id` with it.

        `purchase("C1234567", {"plan": "cadpro-yearly", "seats": 5, "card": {"number":
        "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}})` →
        `{"payment": {"receipt_number": "R-2026-000123", "amount": 245000, …},
        "recurring_payment": {"id": "rp_…", "next_charge_at": …}}`. Licensing issues (or
        extends) the license when it receives `payment_succeeded`.
        Errors: `card_declined` / `insufficient_funds` (nothing created), `validation_error`
        naming the field (expired card, unknown plan, bad number), `payment_unconfirmed`.
        """
        customer_id = _key(customer_id, "customer_id")
        data = load(schemas.Purchase(), payload)
        outcome = purchases.purchase(
            self.db,
            self.provider,
            self.clock.now(),
            customer_id,
            data,
            lambda license_id, customer: self.licensing.get_license(
                license_id, customer_id=customer
            ),
        )
        return self._publish(outcome).result

    @rpc(expected_exceptions=PortalError)
    def record_offline_payment(self, payload: dict[str, Any]) -> dict[str, Any]:
        """An offline or phone sale: a receipt, emailed to the contact, not listed in the portal.

        `{"customer_id": "C1234567", "amount": 120000, "currency": "EUR",
        "description": "CADPRO 10 seats, by phone"}` → the payment (`channel: "offline"`).
        `company_not_found` for an unknown customer.
        """
        data = load(schemas.RecordOffline(), payload)
        self.auth.get_company(data["customer_id"])  # company_not_found before any receipt
        with self.db.transaction() as session:
            repo = BillingRepository(session)
            outcome = purchases.staged(
                session, purchases.record_offline(repo, data, self.clock.now())
            )
        return self._publish(outcome).result

    # --- reads ----------------------------------------------------------------------------

    @rpc(expected_exceptions=PortalError)
    def list_payments(self, customer_id: str) -> list[dict[str, Any]]:
        """Receipts of portal purchases and renewals of the company, newest first.

        → `[{"receipt_number", "paid_at", "amount", "currency", "description", "status",
        "license_id", "plan", "seats", "period_start", "period_end", "card_brand",
        "card_last4", …}]`. Offline payments are not listed.
        """
        customer_id = _key(customer_id, "customer_id")
        purchases.link_licenses(self.db, customer_id, self._quick_license_for_payment)
        with self.db.transaction() as session:
            return purchases.portal_payments(BillingRepository(session), customer_id)

    @rpc(expected_exceptions=PortalError)
    def get_receipt(self, receipt_number: str, customer_id: str | None = None) -> dict[str, Any]:
        """One receipt with vendor and line items; `payment_not_found` for another company's.

        → the payment plus `{"vendor": {"name", "address", "email"}, "lines": [{"description",
        "seats", "unit_amount", "unit_amount_formatted", "amount", "amount_formatted",
        "period_start", "period_end"}]}`. Without `customer_id` (staff), any receipt.
        """
        receipt_number = _key(receipt_number, "receipt_number")
        if customer_id is not None:
            customer_id = _key(customer_id, "customer_id")
            purchases.link_licenses(self.db, customer_id, self._quick_license_for_payment)
        with self.db.transaction() as session:
            return purchases.get_receipt(
                BillingRepository(session), receipt_number, customer_id, vendor()
            )

    @rpc(expected_exceptions=PortalError)
    def list_recurring_payments(self, customer_id: str) -> list[dict[str, Any]]:
        """What will be charged automatically, and when, soonest first.

        → `[{"id": "rp_…", "license_id", "product": {"code"}, "plan", "seats", "amount",
        "currency", "interval", "next_charge_at", "status": "active" | "past_due" |
        "cancelled", "failures", "card_brand", "card_last4"}]`
        """
        customer_id = _key(customer_id, "customer_id")
        purchases.link_licenses(self.db, customer_id, self._quick_license_for_payment)
        with self.db.transaction() as session:
            return purchases.recurring_payments(BillingRepository(session), customer_id)

    @rpc(expected_exceptions=PortalError)
    def cancel_recurring_payment(
        self, recurring_payment_id: str, customer_id: str | None = None
    ) -> dict[str, Any]:
        """No more automatic charges; the license runs to its end. Idempotent.

        → the recurring payment with `"status": "cancelled"`;
        `recurring_payment_not_found` for another company's.
        """
        reference = _key(recurring_payment_id, "id")
        if customer_id is not None:
            customer_id = _key(customer_id, "customer_id")
        with self.db.transaction() as session:
            outcome = purchases.staged(
                session,
                purchases.cancel_recurring(
                    BillingRepository(session), reference, customer_id, self.clock.now()
                ),
            )
        return self._publish(outcome).result

    # --- renewals -------------------------------------------------------------------------

    @rpc(expected_exceptions=PortalError)
    def run_renewals(self, as_of: str | None = None) -> dict[str, int]:
        """Run a renewal pass now (the timer runs one every BILLING_RENEWAL_SCAN_SECONDS).

        `as_of` (ISO 8601 with zone, staff only) also charges what falls due until then.
        → `{"invoices_opened": 1, "charged": 1, "succeeded": 1, "declined": 0,
        "past_due": 0, "unknown": 0, "reconciled": 0, "abandoned": 0,
        "waiting_for_license": 0}`. Running it twice charges nothing twice.
        """
        data = load(schemas.RunRenewals(), {"as_of": as_of})
        return self._renewal_pass(data["as_of"])

    @configured_timer("BILLING_RENEWAL_SCAN_SECONDS", default=DEFAULT_RENEWAL_SCAN_SECONDS)
    def renewal_scan(self) -> None:
        """Charge due recurring payments; a retried or concurrent pass charges nothing twice."""
        report = self._renewal_pass(None)
        if any(report.values()):
            log.info("renewal pass: %s", report)

    def _renewal_pass(self, horizon) -> dict[str, int]:
        return renewals.run_pass(
            self.db,
            self.provider,
            self.clock.now(),
            self._flush,
            self._license_for_payment,
            horizon=horizon,
        )

    @timer(interval=5)
    def relay_outbox(self) -> None:
        """Publish events that a crash or a broker outage left in the outbox."""
        outbox.relay(self.db, EventOutbox, self.events)

    @timer(interval=3600)
    def prune_outbox(self) -> None:
        """Forget events published a week ago."""
        outbox.prune(self.db, EventOutbox)

    # --- demo -----------------------------------------------------------------------------

    @rpc(expected_exceptions=PortalError)
    def seed_demo_history(self, customer_id: str, plan_code: str, seats: int = 5) -> dict:
        """For `portalctl demo`: two past payments and a recurring payment; idempotent.

        → `{"created": true, "payments": [...], "recurring_payment": {...}}`, or
        `{"created": false}` when the company already has payments.
        """
        customer_id = _key(customer_id, "customer_id")
        with self.db.transaction() as session:
            outcome = purchases.staged(
                session,
                demo.seed_history(
                    BillingRepository(session),
                    self.clock.now(),
                    customer_id,
                    _key(plan_code, "plan_code"),
                    max(1, min(int(seats), 100)),
                ),
            )
        return self._publish(outcome).result
