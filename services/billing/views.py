"""What leaves the billing service: the dicts its RPC methods return and its events carry.

Money leaves as integer minor units with the formatted amount beside it; times as ISO 8601
in UTC.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from common.timeutil import iso
from services.billing import domain
from services.billing.models import Invoice, Payment, PaymentMethod, Plan, RecurringPayment

Event = tuple[str, dict[str, Any]]


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


def payment_view(payment: Payment, license_id: str | None = None) -> dict[str, Any]:
    """A receipt as listed: `{receipt_number, paid_at, amount, currency, description, …}`.

    `license_id` stands in while the payment names none (its recurring payment's license).
    """
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
        "license_id": payment.license_id or license_id,
        "plan": payment.plan_code,
        "product_code": payment.product_code,
        "seats": payment.seats,
        "period_start": iso(payment.period_start),
        "period_end": iso(payment.period_end),
        "card_brand": payment.card_brand,
        "card_last4": payment.card_last4,
    }


def receipt_view(
    payment: Payment, vendor: dict[str, str], license_id: str | None = None
) -> dict[str, Any]:
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
    return {**payment_view(payment, license_id), "vendor": vendor, "lines": [line]}


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


# --- events ---------------------------------------------------------------------------------


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


def payment_succeeded(
    payment: Payment, interval: str | None, period_end: datetime | None = None
) -> Event:
    """`payment_succeeded`: licensing issues (`new`) or extends (`renewal`) the license.

    `period_end` overrides the payment's own (the demo's one event covers two periods).
    """
    purchase = {
        "kind": payment.kind,
        "plan": payment.plan_code,
        "product_code": payment.product_code,
        "seats": payment.seats,
        "interval": interval,
        "period_start": iso(payment.period_start),
        "period_end": iso(period_end or payment.period_end),
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


def offline_payment_recorded(payment: Payment) -> Event:
    """`offline_payment_recorded`: notify emails the receipt."""
    return (
        "offline_payment_recorded",
        {"customer_id": payment.customer_id, "payment": _event_payment(payment)},
    )


def payment_failed(
    recurring: RecurringPayment,
    method: PaymentMethod | None,
    invoice: Invoice,
    retry_at: datetime | None,
) -> Event:
    """`payment_failed`: emailed; `next_retry_at` null means the last attempt failed."""
    return (
        "payment_failed",
        {
            "customer_id": recurring.customer_id,
            "recurring_payment": recurring_view(recurring, method),
            "attempt": invoice.attempts,
            "max_attempts": domain.max_attempts(),
            "next_retry_at": iso(retry_at),
            "reason": invoice.last_error,
            "amount": invoice.amount,
            "currency": invoice.currency,
            "amount_formatted": domain.format_money(invoice.amount, invoice.currency),
            "period_start": iso(invoice.period_start),
            "period_end": iso(invoice.period_end),
        },
    )


def recurring_payment_cancelled(
    recurring: RecurringPayment, method: PaymentMethod | None, now: datetime
) -> Event:
    """`recurring_payment_cancelled`: emailed."""
    return (
        "recurring_payment_cancelled",
        {
            "customer_id": recurring.customer_id,
            "recurring_payment": recurring_view(recurring, method),
            "cancelled_at": iso(now),
        },
    )
