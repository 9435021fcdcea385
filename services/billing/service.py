"""The billing service: plans, purchases by card, receipts, recurring payments and renewals.

Entrypoints only: each loads its arguments with a schema, runs one use case of
`services.billing.use_cases` through the unit of work (which publishes the events after the
transaction committed), and returns its view.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import Any

from marshmallow import ValidationError
from nameko.timer import timer

from common import settings
from common.clock import Clock
from common.db import Database
from common.errors import PortalError
from common.events import EventBus
from common.handlers import Poison, reliable_handler
from common.rpc import BusCaller, RpcClient, rpc
from common.schemas import load, optional_text_arg, text_arg
from common.timers import configured_timer
from common.unit_of_work import UnitOfWork
from services.billing import schemas
from services.billing.dependencies import Provider
from services.billing.models import EventOutbox
from services.billing.repository import BillingRepository
from services.billing.use_cases import (
    demo,
    licenses,
    plans,
    purchases,
    receipts,
    recurring,
    renewals,
)

MIGRATIONS = Path(__file__).parent / "migrations"
DEFAULT_RENEWAL_SCAN_SECONDS = 300.0

log = logging.getLogger(__name__)


def vendor() -> dict[str, str]:
    """Who sells: printed on every receipt."""
    return {
        "name": settings.get("BILLING_VENDOR_NAME", "License Portal Software"),
        "address": settings.get("BILLING_VENDOR_ADDRESS", ""),
        "email": settings.get("MAIL_FROM", "portal@localhost"),
    }


class BillingService:
    name = "billing"

    db = Database("billing", MIGRATIONS)
    events = EventBus()
    clock = Clock("BILLING_CLOCK_OFFSET_SECONDS")
    provider = Provider()
    auth = RpcClient("auth")
    licensing = RpcClient("licensing")
    caller = BusCaller()

    @property
    def _uow(self) -> UnitOfWork[BillingRepository]:
        return UnitOfWork(self.db, BillingRepository, EventOutbox, self.events)

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
        return self._uow.run(plans.create_plan, data, self.clock.now())

    @rpc(expected_exceptions=PortalError)
    def list_plans(self, include_inactive: bool = False) -> list[dict[str, Any]]:
        """Plans on sale (all with `include_inactive`), by product then price.

        → `[{"code", "product_code", "amount", "currency", "price", "interval", "active"}]`
        """
        return self._uow.read(plans.list_plans, include_inactive)

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
        customer_id = text_arg(customer_id, "customer_id")
        data = load(schemas.Purchase(), payload)
        return purchases.purchase(
            self._uow, self.provider, self.clock.now(), customer_id, data, self.licensing
        )

    @rpc(expected_exceptions=PortalError)
    def record_offline_payment(self, payload: dict[str, Any]) -> dict[str, Any]:
        """An offline or phone sale: a receipt, emailed to the contact, not listed in the portal.

        `{"customer_id": "C1234567", "amount": 120000, "currency": "EUR",
        "description": "CADPRO 10 seats, by phone"}` → the payment (`channel: "offline"`).
        `company_not_found` for an unknown customer.
        """
        data = load(schemas.RecordOffline(), payload)
        self.auth.get_company(data["customer_id"])  # company_not_found before any receipt
        return self._uow.run(receipts.record_offline, data, self.clock.now())

    # --- reads ----------------------------------------------------------------------------

    @rpc(expected_exceptions=PortalError)
    def list_payments(self, customer_id: str) -> list[dict[str, Any]]:
        """Receipts of portal purchases and renewals of the company, newest first.

        → `[{"receipt_number", "paid_at", "amount", "currency", "description", "status",
        "license_id", "plan", "seats", "period_start", "period_end", "card_brand",
        "card_last4", …}]`. Offline payments are not listed. `license_id` is null until
        licensing has issued the license.
        """
        customer_id = text_arg(customer_id, "customer_id")
        return self._uow.read(receipts.portal_payments, customer_id)

    @rpc(expected_exceptions=PortalError)
    def get_receipt(self, receipt_number: str, customer_id: str | None = None) -> dict[str, Any]:
        """One receipt with vendor and line items; `payment_not_found` for another company's.

        → the payment plus `{"vendor": {"name", "address", "email"}, "lines": [{"description",
        "seats", "unit_amount", "unit_amount_formatted", "amount", "amount_formatted",
        "period_start", "period_end"}]}`. Without `customer_id` (staff), any receipt.
        """
        receipt_number = text_arg(receipt_number, "receipt_number")
        customer_id = optional_text_arg(customer_id, "customer_id")
        self.caller.check_scope(customer_id)
        return self._uow.read(receipts.get_receipt, receipt_number, customer_id, vendor())

    @rpc(expected_exceptions=PortalError)
    def list_recurring_payments(self, customer_id: str) -> list[dict[str, Any]]:
        """What will be charged automatically, and when, soonest first.

        → `[{"id": "rp_…", "license_id", "product": {"code"}, "plan", "seats", "amount",
        "currency", "interval", "next_charge_at", "status": "active" | "past_due" |
        "cancelled", "failures", "card_brand", "card_last4"}]`
        """
        customer_id = text_arg(customer_id, "customer_id")
        return self._uow.read(recurring.list_recurring, customer_id)

    @rpc(expected_exceptions=PortalError)
    def cancel_recurring_payment(
        self, recurring_payment_id: str, customer_id: str | None = None
    ) -> dict[str, Any]:
        """No more automatic charges; the license runs to its end. Idempotent.

        → the recurring payment with `"status": "cancelled"`;
        `recurring_payment_not_found` for another company's.
        """
        reference = text_arg(recurring_payment_id, "id")
        customer_id = optional_text_arg(customer_id, "customer_id")
        self.caller.check_scope(customer_id)
        return self._uow.run(recurring.cancel_recurring, reference, customer_id, self.clock.now())

    # --- licenses, learnt from licensing's events -----------------------------------------

    @reliable_handler("licensing", "license_issued")
    def on_license_issued(self, payload: Any) -> None:
        """The license a purchase paid for: recorded on its payment and recurring payment."""
        self._learn_license("license_issued", payload)

    @reliable_handler("licensing", "license_extended")
    def on_license_extended(self, payload: Any) -> None:
        """The license a renewal paid for (already known, unless the purchase's event is late)."""
        self._learn_license("license_extended", payload)

    def _learn_license(self, event_type: str, payload: Any) -> None:
        try:
            event = schemas.license_event(payload)
        except ValidationError as exc:
            raise Poison(f"invalid payload: {exc.messages}") from exc
        if event is not None:
            self._uow.run(licenses.learn_license, event_type, event, self.clock.now())

    def park(self, source: str, event_type: str, payload: Any, reason: str) -> None:
        """Keep an event that can never be applied (`reliable_handler` calls this)."""
        self._uow.run(licenses.park, source, event_type, payload, reason, self.clock.now())

    # --- renewals -------------------------------------------------------------------------

    @rpc(expected_exceptions=PortalError)
    def run_renewals(self, as_of: str | None = None) -> dict[str, int]:
        """Run a renewal pass now (the timer runs one every BILLING_RENEWAL_SCAN_SECONDS).

        `as_of` (ISO 8601 with zone, staff only) also charges what falls due until then.
        → `{"invoices_opened": 1, "charged": 1, "succeeded": 1, "declined": 0,
        "past_due": 0, "unknown": 0, "reconciled": 0, "abandoned": 0,
        "waiting_for_license": 0}`. Running it twice charges nothing twice.
        """
        horizon: datetime | None = load(schemas.RunRenewals(), {"as_of": as_of})["as_of"]
        return renewals.run_pass(self._uow, self.provider, self.clock.now(), horizon)

    @configured_timer("BILLING_RENEWAL_SCAN_SECONDS", default=DEFAULT_RENEWAL_SCAN_SECONDS)
    def renewal_scan(self) -> None:
        """Charge due recurring payments; a retried or concurrent pass charges nothing twice."""
        report = renewals.run_pass(self._uow, self.provider, self.clock.now())
        if any(report.values()):
            log.info("renewal pass: %s", report)

    @timer(interval=5)
    def relay_outbox(self) -> None:
        """Publish events that a crash or a broker outage left in the outbox."""
        self._uow.relay()

    @timer(interval=3600)
    def prune_outbox(self) -> None:
        """Forget events published a week ago."""
        self._uow.prune()

    # --- demo -----------------------------------------------------------------------------

    @rpc(expected_exceptions=PortalError)
    def seed_demo_history(self, customer_id: str, plan_code: str, seats: int = 5) -> dict:
        """For `portalctl demo`: two past payments and a recurring payment; idempotent.

        → `{"created": true, "payments": [...], "recurring_payment": {...}}`, or
        `{"created": false}` when the company already has payments.
        """
        data = load(
            schemas.SeedDemo(), {"customer_id": customer_id, "plan_code": plan_code, "seats": seats}
        )
        return self._uow.run(
            demo.seed_history,
            self.clock.now(),
            data["customer_id"],
            data["plan_code"],
            data["seats"],
        )
