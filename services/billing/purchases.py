"""Billing use cases: plans, purchases, offline payments, receipts and their views.

A charge spans three steps, each its own transaction, so that a crash or a lost answer
leaves a record to re-check instead of a doubt:

1. a `Charge` row is written (`pending`); its ID gives the provider's idempotency key;
2. the provider is called, outside any transaction;
3. `complete_charge` records the answer: for a success the receipt, the payment method and
   the recurring payment, and the `payment_succeeded` event; for a decline only the charge
   row's status (nothing is listed anywhere). A lost answer marks the charge `unknown`; the
   renewal pass asks the provider (`retrieve`) and completes it then.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from common import outbox
from common.db import Db
from common.errors import PortalError
from common.timeutil import as_utc, iso
from services.billing import domain
from services.billing.exceptions import (
    PaymentNotFound,
    PaymentUnconfirmed,
    PlanExists,
    RecurringPaymentNotFound,
    declined,
    invalid_field,
)
from services.billing.models import (
    Charge,
    EventOutbox,
    Payment,
    PaymentMethod,
    Plan,
    RecurringPayment,
)
from services.billing.providers import (
    Card,
    ChargeResult,
    InvalidCard,
    PaymentProvider,
    ProviderUnavailable,
)
from services.billing.repository import BillingRepository

Event = tuple[str, dict[str, Any]]
# licensing's `get_license(license_id, customer_id)`, or a fake; raises for unknown licenses
LicenseLookup = Callable[[str, str], dict[str, Any]]


@dataclass
class Outcome:
    """What a use case returns: its result and the events to publish once committed."""

    result: Any = None
    events: list[Event] = field(default_factory=list)


def staged(session: Session, outcome: Outcome) -> Outcome:
    """Store the outcome's events in the outbox in the caller's transaction (stamped)."""
    outcome.events = outbox.stage(session, EventOutbox, outcome.events)
    return outcome


# --- views ---------------------------------------------------------------------------------


def plan_view(plan: Plan) -> dict[str, Any]:
    return {
        "code": plan.code,
        "product_code": plan.product_code,
        "amount": plan.amount,
        "currency": plan.currency,
        "price": domain.format_money(plan.amount, plan.currency),
        "interval": plan.interval,
        "active": plan.active,
    }


def payment_view(payment: Payment) -> dict[str, Any]:
    """A receipt as listed: `{receipt_number, paid_at, amount, currency, description, …}`."""
    return {
        "receipt_number": payment.receipt_number,
        "paid_at": iso(payment.paid_at),
        "amount": payment.amount,
        "currency": payment.currency,
        "amount_formatted": domain.format_money(payment.amount, payment.currency),
        "description": payment.description,
        "status": payment.status,
        "channel": payment.channel,
        "kind": payment.kind,
        "license_id": payment.license_id,
        "plan": payment.plan_code,
        "product_code": payment.product_code,
        "seats": payment.seats,
        "period_start": iso(payment.period_start),
        "period_end": iso(payment.period_end),
        "card_brand": payment.card_brand,
        "card_last4": payment.card_last4,
    }


def receipt_view(payment: Payment, vendor: dict[str, str]) -> dict[str, Any]:
    """Everything a printable receipt shows, money already formatted from minor units."""
    unit = payment.unit_amount
    line = {
        "description": payment.description,
        "seats": payment.seats,
        "unit_amount": unit,
        "unit_amount_formatted": None
        if unit is None
        else domain.format_money(unit, payment.currency),
        "amount": payment.amount,
        "amount_formatted": domain.format_money(payment.amount, payment.currency),
        "period_start": iso(payment.period_start),
        "period_end": iso(payment.period_end),
    }
    return {**payment_view(payment), "vendor": vendor, "lines": [line]}


def recurring_view(recurring: RecurringPayment, method: PaymentMethod | None) -> dict[str, Any]:
    return {
        "id": recurring.reference,
        "customer_id": recurring.customer_id,
        "license_id": recurring.license_id,
        "product": {"code": recurring.product_code},
        "plan": recurring.plan_code,
        "seats": recurring.seats,
        "amount": recurring.amount,
        "currency": recurring.currency,
        "amount_formatted": domain.format_money(recurring.amount, recurring.currency),
        "interval": recurring.interval,
        "next_charge_at": iso(recurring.next_charge_at),
        "status": recurring.status,
        "failures": recurring.failures,
        "card_brand": method.brand if method else None,
        "card_last4": method.last4 if method else None,
    }


def _event_payment(payment: Payment) -> dict[str, Any]:
    return {
        "receipt_number": payment.receipt_number,
        "amount": payment.amount,
        "currency": payment.currency,
        "amount_formatted": domain.format_money(payment.amount, payment.currency),
        "description": payment.description,
        "paid_at": iso(payment.paid_at),
        "card_brand": payment.card_brand,
        "card_last4": payment.card_last4,
    }


def payment_succeeded(payment: Payment, interval: str | None = None) -> Event:
    """`payment_succeeded`: licensing issues (`new`) or extends (`renewal`) the license."""
    purchase = {
        "kind": payment.kind,
        "plan": payment.plan_code,
        "product_code": payment.product_code,
        "seats": payment.seats,
        "interval": interval,
        "period_start": iso(payment.period_start),
        "period_end": iso(payment.period_end),
        "license_id": payment.license_id,
    }
    return (
        "payment_succeeded",
        {
            "customer_id": payment.customer_id,
            "payment": _event_payment(payment),
            "purchase": purchase,
        },
    )


# --- plans ---------------------------------------------------------------------------------


def create_plan(repo: BillingRepository, data: dict[str, Any], now: datetime) -> dict[str, Any]:
    if repo.plan_by_code(data["code"]) is not None:
        raise PlanExists(details={"code": data["code"]})
    plan = Plan(**data, created_at=now)
    try:
        with repo.session.begin_nested():
            repo.add(plan)
    except IntegrityError as exc:  # a concurrent create won
        raise PlanExists(details={"code": data["code"]}) from exc
    return plan_view(plan)


# --- receipts ------------------------------------------------------------------------------


def new_payment(repo: BillingRepository, paid_at: datetime, **values: Any) -> Payment:
    """A receipt with the next number of its year (UTC), e.g. `R-2026-000123`."""
    sequence = repo.next_receipt_sequence(paid_at.year)
    payment = Payment(
        receipt_number=domain.receipt_number(paid_at.year, sequence),
        status="paid",
        paid_at=paid_at,
        **values,
    )
    repo.add(payment)
    return payment


def record_offline(repo: BillingRepository, data: dict[str, Any], now: datetime) -> Outcome:
    """An offline or phone sale: a receipt that is emailed, never listed in the portal."""
    payment = new_payment(
        repo,
        now,
        customer_id=data["customer_id"],
        amount=data["amount"],
        currency=data["currency"],
        description=data["description"],
        channel="offline",
        kind="offline",
    )
    event = {"customer_id": payment.customer_id, "payment": _event_payment(payment)}
    return Outcome(payment_view(payment), [("offline_payment_recorded", event)])


# --- purchases -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Order:
    """What a purchase buys; kept with its charge until the charge is settled."""

    kind: str  # new | renewal
    customer_id: str
    plan: str
    product_code: str
    interval: str
    seats: int
    unit_amount: int
    amount: int
    currency: str
    period_start: str
    period_end: str
    license_id: str | None
    card: dict[str, Any]  # token, brand, last4, exp_month, exp_year (never the number)

    def to_json(self) -> str:
        return json.dumps(self.__dict__)

    @classmethod
    def from_json(cls, raw: str) -> Order:
        return cls(**json.loads(raw))


def prepare_purchase(
    db: Db,
    provider: PaymentProvider,
    now: datetime,
    customer_id: str,
    data: dict[str, Any],
    get_license: LicenseLookup,
) -> Order:
    """Check the plan, the license (for a renewal) and the card; tokenize the card."""
    card = data["card"]
    if domain.card_expired(card["exp_month"], card["exp_year"], now):
        raise invalid_field(["card", "exp_year"], "The card has expired.")
    with db.transaction() as session:
        plan = BillingRepository(session).plan_by_code(data["plan"])
        if plan is None or not plan.active:
            raise invalid_field(["plan"], "No plan with this code is on sale.")
        plan_data = plan_view(plan)
    expiry = None
    license_id = data.get("license_id")
    if license_id:
        license = get_license(license_id, customer_id)  # another company's: not found
        product = license.get("product") or {}
        if product.get("code") != plan_data["product_code"]:
            raise invalid_field(["plan"], "This plan is for another product than the license.")
        if license.get("seats") is not None and license["seats"] != data["seats"]:
            raise invalid_field(
                ["seats"], f"A renewal keeps the license's {license['seats']} seats."
            )
        expiry = _parse_time(license.get("expires_at"))
    period = domain.purchase_period(now, plan_data["interval"], expiry)
    try:
        method = provider.tokenize(
            Card(
                number=domain.normalize_card_number(card["number"]),
                exp_month=card["exp_month"],
                exp_year=card["exp_year"],
                cvc=card["cvc"],
            )
        )
    except InvalidCard as exc:
        raise invalid_field(["card", exc.field], exc.message) from exc
    unit = plan_data["amount"]
    return Order(
        kind="renewal" if license_id else "new",
        customer_id=customer_id,
        plan=plan_data["code"],
        product_code=plan_data["product_code"],
        interval=plan_data["interval"],
        seats=data["seats"],
        unit_amount=unit,
        amount=domain.line_total(unit, data["seats"]),
        currency=plan_data["currency"],
        period_start=iso(period.start),
        period_end=iso(period.end),
        license_id=license_id,
        card={
            "provider": provider.name,
            "token": method.token,
            "brand": method.brand,
            "last4": method.last4,
            "exp_month": method.exp_month,
            "exp_year": method.exp_year,
        },
    )


def _parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    return as_utc(datetime.fromisoformat(str(value)))


def purchase(
    db: Db,
    provider: PaymentProvider,
    now: datetime,
    customer_id: str,
    data: dict[str, Any],
    get_license: LicenseLookup,
) -> Outcome:
    """Charge the card for a plan and seats; a receipt, a recurring payment, an event.

    Declined: `card_declined` / `insufficient_funds`, and nothing but the charge row exists.
    """
    request_key = data.get("request_key")
    if request_key:
        earlier = replay(db, customer_id, request_key)
        if earlier is not None:
            return earlier
    order = prepare_purchase(db, provider, now, customer_id, data, get_license)
    try:
        with db.transaction() as session:
            charge = Charge(
                kind=order.kind,
                customer_id=customer_id,
                request_key=request_key,
                amount=order.amount,
                currency=order.currency,
                order_json=order.to_json(),
                status="pending",
                created_at=now,
            )
            BillingRepository(session).add(charge)
            charge.idempotency_key = charge_key(charge.id)
            charge_id, key = charge.id, charge.idempotency_key
    except IntegrityError:  # the same request, sent twice at once: the other one charges
        earlier = replay(db, customer_id, request_key) if request_key else None
        if earlier is None:
            raise
        return earlier
    try:
        result = provider.charge(order.amount, order.currency, order.card["token"], key)
    except ProviderUnavailable as exc:
        mark_unknown(db, charge_id)
        raise PaymentUnconfirmed(details={"reference": key}) from exc
    outcome = complete_charge(db, charge_id, result, now)
    if not result.succeeded:
        raise declined(result.decline_code)
    return outcome


def replay(db: Db, customer_id: str, request_key: str) -> Outcome | None:
    """The answer already given to a purchase with this `Idempotency-Key`, if any.

    A client that lost our answer (a timeout) and asks again gets the same receipt, the
    same decline, or `payment_unconfirmed`, never a second charge.
    """
    with db.transaction() as session:
        repo = BillingRepository(session)
        charge = repo.charge_by_request_key(customer_id, request_key)
        if charge is None:
            return None
        if charge.status == "succeeded" and charge.payment_id is not None:
            payment = repo.payment(charge.payment_id)
            recurring = repo.recurring(payment.recurring_payment_id)
            method = repo.payment_method(recurring.payment_method_id) if recurring else None
            return Outcome(
                {
                    "payment": payment_view(payment),
                    "recurring_payment": recurring_view(recurring, method) if recurring else None,
                }
            )
        status, decline_code = charge.status, charge.decline_code
    if status == "declined":
        raise declined(decline_code)
    raise PaymentUnconfirmed(details={"reference": charge_key(charge.id)})


def charge_key(charge_id: int) -> str:
    """The provider's idempotency key of a charge row: one row, one possible charge."""
    return f"billing-charge-{charge_id}"


def mark_unknown(db: Db, charge_id: int) -> None:
    with db.transaction() as session:
        charge = BillingRepository(session).charge(charge_id, lock=True)
        if charge is not None and charge.status == "pending":
            charge.status = "unknown"


def complete_charge(db: Db, charge_id: int, result: ChargeResult, now: datetime) -> Outcome:
    """Record the provider's answer for a charge, once: a second call changes nothing."""
    with db.transaction() as session:
        repo = BillingRepository(session)
        charge = repo.charge(charge_id, lock=True)
        if charge is None or charge.status not in ("pending", "unknown"):
            payment = repo.payment(charge.payment_id) if charge and charge.payment_id else None
            return Outcome(None if payment is None else {"payment": payment_view(payment)})
        charge.provider_charge_id = result.charge_id
        charge.completed_at = now
        if charge.invoice_id is not None:
            from services.billing import renewals

            return staged(session, renewals.settle_invoice(repo, charge, result, now))
        if not result.succeeded:
            charge.status = "declined"
            charge.decline_code = result.decline_code or "card_declined"
            return Outcome()
        charge.status = "succeeded"
        order = Order.from_json(charge.order_json)
        return staged(session, _fulfil(repo, charge, order, now))


def _fulfil(repo: BillingRepository, charge: Charge, order: Order, now: datetime) -> Outcome:
    """A paid purchase: its payment method, receipt and recurring payment."""
    card = order.card
    method = PaymentMethod(
        customer_id=order.customer_id,
        provider=card.get("provider", "sandbox"),
        token=card["token"],
        brand=card["brand"],
        last4=card["last4"],
        exp_month=card["exp_month"],
        exp_year=card["exp_year"],
        created_at=now,
    )
    repo.add(method)
    period_end = _parse_time(order.period_end)
    recurring = None
    if order.license_id:
        recurring = repo.recurring_for_license(order.customer_id, order.license_id)
    payment = new_payment(
        repo,
        now,
        customer_id=order.customer_id,
        amount=order.amount,
        currency=order.currency,
        description=domain.describe_purchase(
            order.product_code, order.plan, order.seats, order.interval, order.kind
        ),
        channel="portal",
        kind=order.kind,
        plan_code=order.plan,
        product_code=order.product_code,
        seats=order.seats,
        unit_amount=order.unit_amount,
        period_start=_parse_time(order.period_start),
        period_end=period_end,
        license_id=order.license_id,
        card_brand=card["brand"],
        card_last4=card["last4"],
        provider_charge_id=charge.provider_charge_id,
    )
    if recurring is None:
        recurring = RecurringPayment(
            reference=new_reference(),
            customer_id=order.customer_id,
            license_id=order.license_id,
            origin_receipt=payment.receipt_number,
            created_at=now,
        )
    else:  # a renewal bought by hand: it replaces whatever dunning was under way
        for invoice in repo.invoices_of(recurring.id, ("open", "failed")):
            invoice.status = "cancelled"
            invoice.next_attempt_at = None
    recurring.plan_code = order.plan
    recurring.product_code = order.product_code
    recurring.seats = order.seats
    recurring.amount = order.amount
    recurring.currency = order.currency
    recurring.interval = order.interval
    recurring.payment_method_id = method.id
    recurring.next_charge_at = period_end
    recurring.status = "active"
    recurring.failures = 0
    recurring.cancelled_at = None
    repo.add(recurring)
    payment.recurring_payment_id = recurring.id
    charge.payment_id = payment.id
    result = {
        "payment": payment_view(payment),
        "recurring_payment": recurring_view(recurring, method),
    }
    return Outcome(result, [payment_succeeded(payment, order.interval)])


def new_reference() -> str:
    """The public ID of a recurring payment: opaque, unguessable."""
    return "rp_" + secrets.token_hex(10)


# --- reads ---------------------------------------------------------------------------------


def get_receipt(
    repo: BillingRepository, receipt_number: str, customer_id: str | None, vendor: dict[str, str]
) -> dict[str, Any]:
    payment = repo.payment_by_receipt(receipt_number, customer_id)
    if payment is None:
        raise PaymentNotFound(details={"receipt_number": receipt_number})
    if payment.license_id is None and payment.recurring_payment_id is not None:
        recurring = repo.recurring(payment.recurring_payment_id)
        payment.license_id = recurring.license_id if recurring else None
    return receipt_view(payment, vendor)


def cancel_recurring(
    repo: BillingRepository, reference: str, customer_id: str | None, now: datetime
) -> Outcome:
    """No more charges; the license runs to its end. Cancelling twice changes nothing."""
    recurring = repo.recurring_by_reference(reference, customer_id, lock=True)
    if recurring is None:
        raise RecurringPaymentNotFound(details={"id": reference})
    method = repo.payment_method(recurring.payment_method_id)
    if recurring.status == "cancelled":
        return Outcome(recurring_view(recurring, method))
    recurring.status = "cancelled"
    recurring.cancelled_at = now
    for invoice in repo.invoices_of(recurring.id, ("open",)):
        invoice.status = "cancelled"
        invoice.next_attempt_at = None
    view = recurring_view(recurring, method)
    event = {
        "customer_id": recurring.customer_id,
        "recurring_payment": view,
        "cancelled_at": iso(now),
    }
    return Outcome(view, [("recurring_payment_cancelled", event)])


def link_licenses(
    db: Db, customer_id: str, license_for_payment: Callable[[str, str], dict | None]
) -> None:
    """Learn the license of new purchases from licensing, which issues it asynchronously.

    Best effort: when licensing does not know yet (or is down), the links wait for the next
    read; nothing else depends on them but the renewal pass, which asks again itself.
    """
    with db.transaction() as session:
        pending = [
            (recurring.id, recurring.origin_receipt)
            for recurring in BillingRepository(session).recurring_payments(customer_id)
            if recurring.license_id is None and recurring.origin_receipt
        ]
    for recurring_id, receipt in pending:
        try:
            found = license_for_payment(receipt, customer_id)
        except PortalError:
            return
        if found and found.get("license_id"):
            attach_license(db, recurring_id, found["license_id"])


def attach_license(db: Db, recurring_id: int, license_id: str) -> None:
    with db.transaction() as session:
        repo = BillingRepository(session)
        recurring = repo.recurring(recurring_id, lock=True)
        if recurring is None or recurring.license_id is not None:
            return
        recurring.license_id = license_id
        payment = repo.payment_by_receipt(recurring.origin_receipt, recurring.customer_id)
        if payment is not None and payment.license_id is None:
            payment.license_id = license_id


def portal_payments(repo: BillingRepository, customer_id: str) -> list[dict[str, Any]]:
    payments = repo.portal_payments(customer_id)
    licenses = {
        recurring.id: recurring.license_id for recurring in repo.recurring_payments(customer_id)
    }
    views = []
    for payment in payments:
        view = payment_view(payment)
        if view["license_id"] is None and payment.recurring_payment_id is not None:
            view["license_id"] = licenses.get(payment.recurring_payment_id)
        views.append(view)
    return views


def recurring_payments(repo: BillingRepository, customer_id: str) -> list[dict[str, Any]]:
    return [
        recurring_view(recurring, repo.payment_method(recurring.payment_method_id))
        for recurring in repo.recurring_payments(customer_id)
    ]
