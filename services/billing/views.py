"""What leaves the billing service: the dicts its RPC methods return and its events carry.

Money leaves as integer minor units with the formatted amount beside it (`common.money`, the
one format of the portal, receipts and emails); times as ISO 8601 in UTC. Products are named
by licensing's name (the code stands in for records older than names).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from common.money import format_money
from common.timeutil import iso
from services.billing import domain
from services.billing.models import (
    BillingDetails,
    Invoice,
    Payment,
    PaymentMethod,
    Plan,
    RecurringPayment,
)

Event = tuple[str, dict[str, Any]]


def product_ref(code: str | None, name: str | None) -> dict[str, Any] | None:
    """`{code, name}` of a product; its code stands in for a name billing never learnt."""
    return None if code is None else {"code": code, "name": name or code}


def plan_view(plan: Plan) -> dict[str, Any]:
    """`{code, product_code, product: {code, name}, amount, currency, price, interval,
    active, archived_at, features, model, lease_seconds, max_borrow_days}`; `active` false:
    archived, off sale; `features` the product's feature codes the plan grants, sorted;
    `model` node_locked or floating (with its lease period and borrowing limit, else null)."""
    return {
        "code": plan.code,
        "product_code": plan.product_code,
        "product": product_ref(plan.product_code, plan.product_name),
        "amount": plan.amount,
        "currency": plan.currency,
        "price": format_money(plan.amount, plan.currency),
        "amount_formatted": format_money(plan.amount, plan.currency),
        "interval": plan.interval,
        "active": plan.active,
        "archived_at": iso(plan.archived_at),
        "features": domain.feature_codes(plan.features),
        **license_terms(plan).to_dict(),
    }


def license_terms(record: Plan | Payment) -> domain.LicenseTerms:
    """The license model of a plan, or the one a payment bought (older ones: node-locked)."""
    return domain.license_terms(record.model, record.lease_seconds, record.max_borrow_days)


def payment_view(payment: Payment, license_id: str | None = None) -> dict[str, Any]:
    """A receipt as listed: `{receipt_number, paid_at, amount, currency, description, …}`.

    `license_id` stands in while the payment names none (its recurring payment's license).
    """
    return {
        "receipt_number": payment.receipt_number,
        "paid_at": iso(payment.paid_at),
        "amount": payment.amount,
        "currency": payment.currency,
        "amount_formatted": format_money(payment.amount, payment.currency),
        "description": payment.description,
        "status": payment.status,  # paid | refunded | disputed
        "channel": payment.channel,
        "kind": payment.kind,
        "customer_id": payment.customer_id,
        "license_id": payment.license_id or license_id,
        "plan": payment.plan_code,
        "product_code": payment.product_code,
        "product": product_ref(payment.product_code, payment.product_name),
        "seats": payment.seats,
        "period_start": iso(payment.period_start),
        "period_end": iso(payment.period_end),
        "card_brand": payment.card_brand,
        "card_last4": payment.card_last4,
        "refunded_at": iso(payment.refunded_at),
        "refund_reason": payment.refund_reason,
        # a part refunded at the provider (the payment stays paid); null when none
        "refunded_amount": payment.refunded_amount or None,
        # a chargeback: needs_response while open, then won or lost
        "dispute_status": payment.dispute_status,
        "disputed_at": iso(payment.disputed_at),
    }


def vendor_view(payment: Payment, current: Mapping[str, Any]) -> dict[str, Any]:
    """The seller on the receipt: `{name, address, vat_id, email}` as recorded when paid."""
    if payment.vendor_name is None:
        return dict(current)
    return {
        **current,
        "name": payment.vendor_name,
        "address": payment.vendor_address,
        "vat_id": payment.vendor_vat_id,
    }


def buyer_view(payment: Payment) -> dict[str, Any]:
    """The buyer as the receipt names it: the company's billing details when it paid."""
    return {
        "company_name": payment.buyer_company_name,
        "address": payment.buyer_address,
        "vat_id": payment.buyer_vat_id,
    }


def billing_details_view(details: BillingDetails | None) -> dict[str, Any]:
    """`{company_name, address, vat_id, updated_at}`; nulls until the company saves them."""
    if details is None:
        return {"company_name": None, "address": None, "vat_id": None, "updated_at": None}
    return {
        "company_name": details.company_name,
        "address": details.address,
        "vat_id": details.vat_id,
        "updated_at": iso(details.updated_at),
    }


def receipt_view(
    payment: Payment, vendor: dict[str, Any], license_id: str | None = None
) -> dict[str, Any]:
    """Everything a printable receipt shows, money already formatted from minor units: the
    payment, `vendor` (who sold, as the payment recorded it; `vendor` as configured now for
    receipts older than that), `buyer` (its details when it paid) and the line."""
    unit = payment.unit_amount
    line = {
        "description": payment.description,
        "seats": payment.seats,
        "unit_amount": unit,
        "unit_amount_formatted": None if unit is None else format_money(unit, payment.currency),
        "amount": payment.amount,
        "amount_formatted": format_money(payment.amount, payment.currency),
        "period_start": iso(payment.period_start),
        "period_end": iso(payment.period_end),
    }
    return {
        **payment_view(payment, license_id),
        "vendor": vendor_view(payment, vendor),
        "buyer": buyer_view(payment),
        "lines": [line],
    }


def recurring_view(recurring: RecurringPayment, method: PaymentMethod | None) -> dict[str, Any]:
    """`{id, customer_id, license_id, product: {code, name}, plan, seats, amount, currency,
    amount_formatted, interval, next_charge_at, status, cancelled_by, failures, card_brand,
    card_last4}`; `cancelled_by` "customer" (resumable while `next_charge_at` is ahead),
    "staff", "refund" or "duplicate", null unless cancelled."""
    return {
        "id": recurring.reference,
        "customer_id": recurring.customer_id,
        "license_id": recurring.license_id,
        "product": product_ref(recurring.product_code, recurring.product_name),
        "plan": recurring.plan_code,
        "seats": recurring.seats,
        "amount": recurring.amount,
        "currency": recurring.currency,
        "amount_formatted": format_money(recurring.amount, recurring.currency),
        "interval": recurring.interval,
        "next_charge_at": iso(recurring.next_charge_at),
        "status": recurring.status,
        "cancelled_by": recurring.cancelled_by if recurring.status == "cancelled" else None,
        "failures": recurring.failures,
        "card_brand": method.brand if method else None,
        "card_last4": method.last4 if method else None,
    }


# --- events ---------------------------------------------------------------------------------


def _event_payment(payment: Payment) -> dict[str, Any]:
    """The receipt as events carry it; its period is the receipt's own (as its page shows)."""
    return {
        "receipt_number": payment.receipt_number,
        "amount": payment.amount,
        "currency": payment.currency,
        "amount_formatted": format_money(payment.amount, payment.currency),
        "description": payment.description,
        "product": product_ref(payment.product_code, payment.product_name),
        "paid_at": iso(payment.paid_at),
        "period_start": iso(payment.period_start),
        "period_end": iso(payment.period_end),
        "card_brand": payment.card_brand,
        "card_last4": payment.card_last4,
    }


def payment_succeeded(
    payment: Payment, interval: str | None, period_end: datetime | None = None
) -> Event:
    """`payment_succeeded`: licensing issues (`new`) or extends (`renewal`) the license until
    `purchase.period_end`, with `purchase.features` (the plan's feature codes when paid:
    a new license holds them, a renewed one gains them) and `purchase.model`,
    `lease_seconds`, `max_borrow_days` (the plan's license model when paid: a new license
    is issued so, a renewal leaves the license's own); `payment` is the receipt (with its
    own period, for the email).

    `period_end` overrides the license's end (the demo's one event covers two periods, its
    receipt only the first).
    """
    purchase = {
        "kind": payment.kind,
        "plan": payment.plan_code,
        "product_code": payment.product_code,
        "product": product_ref(payment.product_code, payment.product_name),
        "seats": payment.seats,
        "interval": interval,
        "period_start": iso(payment.period_start),
        "period_end": iso(period_end or payment.period_end),
        "license_id": payment.license_id,
        "features": domain.feature_codes(payment.features),
        **license_terms(payment).to_dict(),
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
            "amount_formatted": format_money(invoice.amount, invoice.currency),
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


def payment_refunded(payment: Payment, message: str | None) -> Event:
    """`payment_refunded`: notify emails "We refunded …" with the reason."""
    return (
        "payment_refunded",
        {
            "customer_id": payment.customer_id,
            "receipt_number": payment.receipt_number,
            "amount": payment.amount,
            "currency": payment.currency,
            "amount_formatted": format_money(payment.amount, payment.currency),
            "description": payment.description,
            "product": product_ref(payment.product_code, payment.product_name),
            "license_id": payment.license_id,
            "reason": payment.refund_reason,
            "message": message,
            "refunded_at": iso(payment.refunded_at),
            "payment": _event_payment(payment),
        },
    )


def recurring_payment_resumed(
    recurring: RecurringPayment, method: PaymentMethod | None, now: datetime
) -> Event:
    """`recurring_payment_resumed`: emailed."""
    return (
        "recurring_payment_resumed",
        {
            "customer_id": recurring.customer_id,
            "recurring_payment": recurring_view(recurring, method),
            "resumed_at": iso(now),
        },
    )


def recurring_payment_card_changed(
    recurring: RecurringPayment,
    method: PaymentMethod,
    previous: PaymentMethod | None,
    now: datetime,
) -> Event:
    """`recurring_payment_card_changed`: emailed (the new card's brand and last digits)."""
    return (
        "recurring_payment_card_changed",
        {
            "customer_id": recurring.customer_id,
            "recurring_payment": recurring_view(recurring, method),
            "card_brand": method.brand,
            "card_last4": method.last4,
            "previous_card_brand": previous.brand if previous else None,
            "previous_card_last4": previous.last4 if previous else None,
            "changed_at": iso(now),
        },
    )
