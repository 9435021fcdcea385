"""The billing service: plans, purchases by card, receipts, refunds, recurring payments and
renewals, and the billing details receipts name.

Entrypoints only: each loads its arguments with a schema (identifiers in their canonical
form, common/identifiers.py), runs one use case of `services.billing.use_cases` through the
unit of work (which publishes the events after the transaction committed), and returns its
view. State-changing methods pass their request's `Once` (common/idempotency.py), so that a
redelivered request changes nothing twice. A change names who acted
(`self.actor.current(default)`, common/audit.py): its use case records the fact in the
company's audit trail in the change's own transaction.
"""

from __future__ import annotations

import functools
import logging
from datetime import datetime
from pathlib import Path
from typing import Any

from marshmallow import ValidationError
from nameko.timer import timer

from common import audit, settings
from common.audit import STAFF, SYSTEM, AuditActor, query_from
from common.clock import Clock
from common.db import Database
from common.errors import PortalError, ServiceUnavailable
from common.events import EventBus
from common.handlers import Poison, reliable_handler
from common.idempotency import Requests
from common.metrics import PURCHASE_OUTCOME, RENEWAL_OUTCOMES_OF_PASS, Metrics
from common.rpc import BusCaller, RpcClient, rpc
from common.schemas import (
    code_arg,
    customer_id_arg,
    load,
    optional_customer_id_arg,
    receipt_number_arg,
    text_arg,
)
from common.timers import configured_timer
from common.unit_of_work import UnitOfWork
from services.billing import schemas
from services.billing.dependencies import Provider
from services.billing.models import AuditEvent, EventOutbox, HandledRequest
from services.billing.repository import BillingRepository
from services.billing.use_cases import (
    demo,
    licenses,
    plans,
    purchases,
    receipts,
    recurring,
    refunds,
    renewals,
    webhooks,
)

MIGRATIONS = Path(__file__).parent / "migrations"
DEFAULT_RENEWAL_SCAN_SECONDS = 300.0

log = logging.getLogger(__name__)


def vendor() -> dict[str, str | None]:
    """Who sells, printed on every receipt: `{name, address, vat_id, email}` from
    BILLING_VENDOR_NAME, BILLING_VENDOR_ADDRESS, BILLING_VENDOR_VAT_ID and MAIL_FROM; each
    receipt keeps the name, address and VAT ID of its payment time. The address's lines are
    separated by newlines, or by `\\n` as an environment variable writes them."""
    return {
        "name": settings.get("BILLING_VENDOR_NAME", "License Portal Software"),
        "address": (settings.get("BILLING_VENDOR_ADDRESS") or "").replace("\\n", "\n"),
        "vat_id": settings.get("BILLING_VENDOR_VAT_ID"),
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
    request = Requests()
    actor = AuditActor()
    metrics = Metrics(
        outbox=True,
        business={
            "purchase": PURCHASE_OUTCOME,
            "run_renewals": RENEWAL_OUTCOMES_OF_PASS,
            "renewal_scan": RENEWAL_OUTCOMES_OF_PASS,
        },
    )

    @property
    def _uow(self) -> UnitOfWork[BillingRepository]:
        repository = functools.partial(BillingRepository, vendor=vendor())
        return UnitOfWork(
            self.db,
            repository,
            EventOutbox,
            self.events,
            ledger=HandledRequest,
            audit_table=AuditEvent,
        )

    @rpc
    def ping(self) -> dict[str, str]:
        """Readiness: `{"service": "billing", "status": "ok"}` once the database answers."""
        self.db.ping()
        return {"service": self.name, "status": "ok"}

    # --- plans ----------------------------------------------------------------------------

    @rpc(expected_exceptions=PortalError)
    def create_plan(self, payload: dict[str, Any]) -> dict[str, Any]:
        """A price for a product licensing sells, per seat and interval, in minor units.

        `{"code": "CADPRO-Yearly", "product_code": "CAD-PRO", "amount": 49000,
        "currency": "EUR", "interval": "year", "features": ["steel"], "model": "floating",
        "lease_seconds": 900, "max_borrow_days": 7}` → the plan, codes in lower case, with
        the product's name and the feature codes it grants (of the product's `features` in
        licensing; none by default): `{"code": "cadpro-yearly", "product_code": "cad-pro",
        "product": {"code": "cad-pro", "name": "CAD Pro"}, "price": "€490.00", "active":
        true, "features": ["steel"], "model": "floating", "lease_seconds": 900,
        "max_borrow_days": 7, …}`. `model` node_locked (default) or floating; only a
        floating plan takes `lease_seconds` (60 to 86400, default 900) and
        `max_borrow_days` (0 to 90, 0: no borrowing; default 7): its licenses are issued so.
        `validation_error` naming the field, `product_not_found` (licensing does not know
        it), `product_archived` (off sale), `unknown_feature` (422, naming a code the
        product lacks), `plan_exists` if the code is taken.
        """
        data = load(schemas.CreatePlan(), payload)
        product = self.licensing.get_product(data["product_code"])
        once = self.request.once(None, data)
        return self._uow.run(plans.create_plan, data, product, self.clock.now(), once=once)

    @rpc(expected_exceptions=PortalError)
    def archive_plan(self, code: str) -> dict[str, Any]:
        """Staff: take a plan off sale at once: `"CADPRO-Yearly"` → the plan with
        `"active": false`. Its recurring payments go on. `plan_not_found`."""
        code = code_arg(code)
        once = self.request.once(None, code)
        return self._uow.run(plans.set_on_sale, code, False, self.clock.now(), once=once)

    @rpc(expected_exceptions=PortalError)
    def unarchive_plan(self, code: str) -> dict[str, Any]:
        """Staff: put an archived plan on sale again: `"cadpro-yearly"` → the plan with
        `"active": true` (listed while licensing sells its product). `plan_not_found`."""
        code = code_arg(code)
        once = self.request.once(None, code)
        return self._uow.run(plans.set_on_sale, code, True, self.clock.now(), once=once)

    @rpc(expected_exceptions=PortalError)
    def list_plans(self, include_inactive: bool = False) -> list[dict[str, Any]]:
        """Plans on sale: active, of a product licensing sells (asked of licensing's
        `list_products` each time, so a product archived there is off sale here at once),
        by product then price. `include_inactive` (staff): every plan, without asking.
        While licensing does not answer, every active plan with its stored product name
        (a purchase still checks the product before charging).

        → `[{"code", "product_code", "product": {"code", "name"}, "amount", "currency",
        "price", "amount_formatted", "interval", "active", "archived_at", "features",
        "model", "lease_seconds", "max_borrow_days"}]` (`features`: the feature codes the
        plan grants; `model` node_locked or floating, the numbers null for node-locked)
        """
        if include_inactive is not True:
            try:
                products = self.licensing.list_products()
            except ServiceUnavailable as exc:
                # billing's list stands: active plans, their stored product names
                log.info("catalog without licensing's products (%s): active plans listed", exc)
                return self._uow.read(plans.list_plans, False, None)
            on_sale = {product["code"]: product for product in products}
            return self._uow.read(plans.list_plans, False, on_sale)
        return self._uow.read(plans.list_plans, True, None)

    # --- purchases ------------------------------------------------------------------------

    @rpc(expected_exceptions=PortalError)
    def purchase(self, customer_id: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Buy `seats` of a plan by card, or renew `license_id` with it.

        `purchase("C1234567", {"plan": "cadpro-yearly", "seats": 5, "card": {"number":
        "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}})` →
        `{"payment": {"receipt_number": "R-2026-000123", "amount": 245000, …},
        "recurring_payment": {"id": "rp_…", "next_charge_at": …}}`. Licensing issues (or
        extends) the license when it receives `payment_succeeded`. A renewal of a license
        that already renews automatically moves that recurring payment's `next_charge_at`.
        The request key (payload `request_key`, else the RPC request's) makes a repeat
        answer the first answer, never charge twice.
        With Stripe (`PAYMENT_PROVIDER=stripe`) the payload names the payment method the
        portal's Stripe.js made instead of a card: `{"plan": "cadpro-yearly", "seats": 5,
        "payment_method": "pm_…"}`; when the bank wants 3-D Secure the answer is
        `{"status": "requires_action", "purchase_id": "pur_<24 hex>", "client_secret":
        "pi_…_secret_…"}` (the gateway's 202): the browser authenticates, then
        `confirm_purchase`. The same request key while it waits answers the same.
        Errors: `card_declined` / `insufficient_funds` (nothing created), `validation_error`
        naming the field (expired card, plan not on sale, bad number, a renewal with a plan
        of the other license model than the license's, a payment method the sandbox cannot
        take, neither or both of `card` and `payment_method`), `card_not_accepted` (422, a
        card number while the provider is Stripe), `product_not_found`,
        `product_archived`, `license_not_found`, `license_suspended` (403),
        `idempotency_key_reused` (the key with another request), `payment_unconfirmed`.
        """
        customer_id = customer_id_arg(customer_id)
        data = load(schemas.Purchase(), payload)
        data["request_key"] = data.get("request_key") or self.request.key
        return purchases.purchase(
            self._uow,
            self.provider,
            self.clock.now(),
            customer_id,
            data,
            self.licensing,
            self.actor.current(SYSTEM),
        )

    @rpc(expected_exceptions=PortalError)
    def confirm_purchase(self, customer_id: str, purchase_id: str) -> dict[str, Any]:
        """Finish a purchase whose customer authenticated its charge (3-D Secure).

        `confirm_purchase("C1234567", "pur_0123456789abcdef01234567")` → the purchase's
        answer, `{"payment": {…}, "recurring_payment": {…}}` (settled once; confirming
        again answers the same), or `{"status": "requires_action", "purchase_id",
        "client_secret"}` while the bank still waits. `authentication_failed` (402,
        nothing charged) when the bank refused, `purchase_not_found` for another company's
        or an unknown one, `payment_unconfirmed` when the provider does not answer.
        """
        customer_id = customer_id_arg(customer_id)
        purchase_id = text_arg(purchase_id, "purchase_id")
        return purchases.confirm_purchase(
            self._uow, self.provider, self.clock.now(), customer_id, purchase_id
        )

    @rpc(expected_exceptions=PortalError)
    def handle_stripe_webhook(self, payload: str, signature: str | None) -> dict[str, Any]:
        """A Stripe webhook, as the gateway received it: the raw body and its
        `Stripe-Signature` header.

        `('{"id": "evt_…", "type": "charge.refunded", "data": {"object": {…}}}',
        "t=1764750000,v1=…")` → `{"received": true, "duplicate": false, "type":
        "charge.refunded"}` (`duplicate`: delivered before, nothing changed again).
        Settles charges still in flight (`payment_intent.succeeded` / `payment_failed`),
        records refunds made at Stripe (`payment_refunded`) and disputes
        (`payment_disputed`, `payment_dispute_closed`); other types are recorded and
        ignored. `invalid_signature` (400, nothing recorded), `not_found` when the
        provider is not Stripe.
        """
        data = load(schemas.StripeWebhook(), {"payload": payload, "signature": signature})
        return webhooks.handle(
            self._uow, self.provider, data["payload"], data["signature"], self.clock.now()
        )

    @rpc(expected_exceptions=PortalError)
    def record_offline_payment(self, payload: dict[str, Any]) -> dict[str, Any]:
        """An offline or phone sale: a receipt, emailed to the contact, not listed in the portal.

        `{"customer_id": "C1234567", "amount": 120000, "currency": "EUR",
        "description": "CADPRO 10 seats, by phone"}` → the payment (`channel: "offline"`).
        The amount is minor units (`portalctl` converts `120.00`). `company_not_found` for
        an unknown customer.
        """
        data = load(schemas.RecordOffline(), payload)
        self.auth.get_company(data["customer_id"])  # company_not_found before any receipt
        once = self.request.once(None, data)
        return self._uow.run(
            receipts.record_offline, data, self.actor.current(STAFF), self.clock.now(), once=once
        )

    # --- reads ----------------------------------------------------------------------------

    @rpc(expected_exceptions=PortalError)
    def list_payments(
        self, customer_id: str, limit: int = 50, before: str | None = None
    ) -> list[dict[str, Any]]:
        """A page of the company's portal receipts (purchases and renewals), newest first.

        `list_payments("C1234567", limit=50, before="R-2026-000123")` → up to `limit`
        (1 to 200) payments older than `before` (the last receipt number of the page seen):
        `[{"receipt_number", "paid_at", "amount", "currency", "amount_formatted",
        "description", "status": "paid" | "refunded", "refunded_at", "refund_reason",
        "license_id", "plan", "product": {"code", "name"}, "seats", "period_start",
        "period_end", "card_brand", "card_last4", …}]`. Fewer than `limit`: the last page.
        Offline payments are not listed. `license_id` is null until licensing has issued
        the license.
        """
        customer_id = customer_id_arg(customer_id)
        page = load(schemas.Page(), {"limit": limit, "before": before})
        return self._uow.read(
            receipts.portal_payments, customer_id, page["limit"], self._receipt(page["before"])
        )

    @rpc(expected_exceptions=PortalError)
    def list_all_payments(
        self,
        status: str | None = None,
        customer_id: str | None = None,
        limit: int = 50,
        before: str | None = None,
    ) -> list[dict[str, Any]]:
        """Staff only: every payment (portal and offline), newest first, for `portalctl
        payment list`.

        `list_all_payments(status="refunded", customer_id="c1234567", limit=50,
        before="R-2026-000123")` → a page of payments as `list_payments` shows them (with
        `customer_id` and `channel`); `status` "paid" or "refunded".
        """
        self.caller.check_kind("staff")
        page = load(
            schemas.StaffPage(),
            {"status": status, "customer_id": customer_id, "limit": limit, "before": before},
        )
        return self._uow.read(
            receipts.all_payments,
            page["limit"],
            self._receipt(page["before"]),
            page["status"],
            page["customer_id"],
        )

    @staticmethod
    def _receipt(value: str | None) -> str | None:
        return None if value is None else receipt_number_arg(value, "before")

    @rpc(expected_exceptions=PortalError)
    def get_receipt(self, receipt_number: str, customer_id: str | None = None) -> dict[str, Any]:
        """One receipt with vendor, buyer and line items; `payment_not_found` for another
        company's.

        `get_receipt("r-2026-000123", "C1234567")` → the payment plus `{"vendor": {"name",
        "address", "vat_id", "email"}, "buyer": {"company_name", "address", "vat_id"} (the
        company's billing details when it paid; nulls if it had none), "lines":
        [{"description", "seats", "unit_amount", "unit_amount_formatted", "amount",
        "amount_formatted", "period_start", "period_end"}]}`. Without `customer_id`
        (staff), any receipt.
        """
        receipt_number = receipt_number_arg(receipt_number)
        customer_id = optional_customer_id_arg(customer_id)
        self.caller.check_scope(customer_id)
        return self._uow.read(receipts.get_receipt, receipt_number, customer_id, vendor())

    # --- billing details ------------------------------------------------------------------

    @rpc(expected_exceptions=PortalError)
    def get_billing_details(self, customer_id: str) -> dict[str, Any]:
        """What the company's receipts name as the buyer: `"C1234567"` →
        `{"company_name", "address", "vat_id", "updated_at"}` (nulls until first saved)."""
        customer_id = customer_id_arg(customer_id)
        return self._uow.read(receipts.get_billing_details, customer_id)

    @rpc(expected_exceptions=PortalError)
    def update_billing_details(self, customer_id: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Replace the company's billing details; receipts paid from now on name them.

        `("C1234567", {"company_name": "Acme GmbH", "address": "Main St 1\n1010 Vienna",
        "vat_id": "ATU12345678"})` → the details. `company_name` 1-200 characters (one
        line), `address` 1-500 (several lines), `vat_id` up to 32, optional.
        """
        customer_id = customer_id_arg(customer_id)
        data = load(schemas.BillingDetailsIn(), payload)
        once = self.request.once(customer_id, data)
        return self._uow.run(
            receipts.update_billing_details,
            customer_id,
            data,
            self.actor.current(SYSTEM),
            self.clock.now(),
            once=once,
        )

    # --- recurring payments ---------------------------------------------------------------

    @rpc(expected_exceptions=PortalError)
    def list_recurring_payments(self, customer_id: str) -> list[dict[str, Any]]:
        """What will be charged automatically, and when, soonest first.

        → `[{"id": "rp_…", "license_id", "product": {"code", "name"}, "plan", "seats",
        "amount", "currency", "amount_formatted", "interval", "next_charge_at", "status":
        "active" | "past_due" | "cancelled", "cancelled_by", "failures", "card_brand",
        "card_last4"}]`
        """
        customer_id = customer_id_arg(customer_id)
        return self._uow.read(recurring.list_recurring, customer_id)

    @rpc(expected_exceptions=PortalError)
    def cancel_recurring_payment(
        self, recurring_payment_id: str, customer_id: str | None = None
    ) -> dict[str, Any]:
        """No more automatic charges; the license runs to its end. Idempotent.

        `("rp_…", "C1234567")` → the recurring payment with `"status": "cancelled"`;
        `recurring_payment_not_found` for another company's. The customer can resume it
        until `next_charge_at`.
        """
        reference = text_arg(recurring_payment_id, "id")
        customer_id = optional_customer_id_arg(customer_id)
        self.caller.check_scope(customer_id)
        once = self.request.once(customer_id, reference)
        return self._uow.run(
            recurring.cancel_recurring,
            reference,
            customer_id,
            self.actor.current(SYSTEM),
            self.clock.now(),
            once=once,
        )

    @rpc(expected_exceptions=PortalError)
    def resume_recurring_payment(
        self, recurring_payment_id: str, customer_id: str | None = None
    ) -> dict[str, Any]:
        """Charge automatically again, while the period paid for runs.

        `("rp_…", "C1234567")` → the recurring payment with `"status": "active"` (one that
        is active already: unchanged). `recurring_payment_ended` (409) once its period is
        over, or when it was not cancelled by the customer (staff, a refund);
        `recurring_payment_not_found`.
        """
        reference = text_arg(recurring_payment_id, "id")
        customer_id = optional_customer_id_arg(customer_id)
        self.caller.check_scope(customer_id)
        once = self.request.once(customer_id, reference)
        return self._uow.run(
            recurring.resume_recurring,
            reference,
            customer_id,
            self.actor.current(SYSTEM),
            self.clock.now(),
            once=once,
        )

    @rpc(expected_exceptions=PortalError)
    def replace_card(
        self,
        recurring_payment_id: str,
        customer_id: str | None,
        card: dict[str, Any] | None = None,
        payment_method: str | None = None,
    ) -> dict[str, Any]:
        """Pay a recurring payment with another card, checked by a zero-amount authorization.

        `("rp_…", "C1234567", {"number": "5555555555554444", "exp_month": 12,
        "exp_year": 2031, "cvc": "123"})`, or with Stripe `("rp_…", "C1234567",
        payment_method="pm_…")` → the recurring payment with the new `card_brand` /
        `card_last4`. A past-due one has its failed charge tried again at the next renewal
        pass. `card_declined` / `insufficient_funds` (402, nothing changed; also a card
        whose bank wants 3-D Secure, with a word on where to confirm it),
        `validation_error` naming the card field, `card_not_accepted` (a card number while
        the provider is Stripe), `recurring_payment_ended`, `recurring_payment_not_found`.
        """
        reference = text_arg(recurring_payment_id, "id")
        customer_id = optional_customer_id_arg(customer_id)
        self.caller.check_scope(customer_id)
        data = load(schemas.ReplaceCard(), {"card": card, "payment_method": payment_method})
        if data["card"] is not None:
            # the card's number never reaches the ledger: its last digits and expiry tell
            # apart
            last4 = data["card"]["number"].replace(" ", "").replace("-", "")[-4:]
            body = [reference, last4, data["card"]["exp_month"], data["card"]["exp_year"]]
        else:
            body = [reference, data["payment_method"]]
        return recurring.replace_card(
            self._uow,
            self.provider,
            self.clock.now(),
            reference,
            customer_id,
            data["card"],
            self.request.key,
            self.request.once(customer_id, *body),
            self.actor.current(SYSTEM),
            payment_method=data["payment_method"],
        )

    # --- the audit trail -------------------------------------------------------------------

    @rpc(expected_exceptions=PortalError)
    def list_audit_events(
        self, customer_id: str, query: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """A page of the company's audit trail of billing, newest first.

        `("C1234567", {"limit": 50, "before": "<next_before>", "user_id": "U-7KQX-M2PD",
        "action": "purchase", "since": "2026-12-01", "until": "2026-12-02T12:00:00+00:00"})`
        (every key optional) → `[{"event_id", "at", "actor": {"type": "user", "user_id",
        "email"}, "action": "purchase", "target": {"type": "payment", "id":
        "R-2026-000123"}, "details": {"receipt_number", "plan", "seats", "amount",
        "currency", "kind", "automatic"}}]`. The gateway merges it with auth's and
        licensing's pages (`common.audit.merge`). `validation_error` naming a bad key.
        """
        customer_id = customer_id_arg(customer_id)
        audit_query = query_from(customer_id, query if isinstance(query, dict) else {})
        return self._uow.read(audit.list_events, audit_query)

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

    # --- refunds ----------------------------------------------------------------------------

    @reliable_handler("licensing", "payment_not_applied")
    def on_payment_not_applied(self, payload: Any) -> None:
        """A paid payment licensing cannot turn into a license: refund it through the
        provider, mark it refunded, end its recurring payment, publish `payment_refunded`.

        `{"event_id", "receipt_number": "R-2026-000123", "customer_id": "C1234567",
        "reason": "product_archived", "message": "…"}`. A redelivered event refunds nothing
        twice; a payment that cannot be refunded here is parked for staff.
        """
        try:
            event = schemas.payment_not_applied(payload)
        except ValidationError as exc:
            raise Poison(f"invalid payload: {exc.messages}") from exc
        try:
            refunded = refunds.refund_not_applied(self._uow, self.provider, event, self.clock.now())
        except refunds.NotRefundable as exc:
            raise Poison(str(exc)) from exc
        if refunded is not None:
            log.info(
                "refunded %s of %s: %s",
                event["receipt_number"],
                event["customer_id"],
                event["reason"],
            )

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
    def renewal_scan(self) -> dict[str, int]:
        """Charge due recurring payments; a retried or concurrent pass charges nothing twice.
        The report (`run_renewals`'s) is what `portal_payments_total` counts."""
        report = renewals.run_pass(self._uow, self.provider, self.clock.now())
        if any(report.values()):
            log.info("renewal pass: %s", report)
        return report

    @timer(interval=5)
    def relay_outbox(self) -> None:
        """Publish events that a crash or a broker outage left in the outbox."""
        self._uow.relay()

    @timer(interval=3600)
    def prune_outbox(self) -> None:
        """Forget events published, and requests handled, a week ago."""
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
