"""Receipts: numbered payments, offline sales, and the receipts a company reads."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from common.unit_of_work import Outcome
from services.billing import domain, views
from services.billing.exceptions import PaymentNotFound
from services.billing.models import Payment
from services.billing.repository import BillingRepository


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
    return Outcome(views.payment_view(payment), [views.offline_payment_recorded(payment)])


def portal_payments(repo: BillingRepository, customer_id: str) -> list[dict[str, Any]]:
    """The company's portal receipts, newest first; renewals show their subscription's license."""
    licenses = {
        recurring.id: recurring.license_id for recurring in repo.recurring_payments(customer_id)
    }
    return [
        views.payment_view(payment, licenses.get(payment.recurring_payment_id))
        for payment in repo.portal_payments(customer_id)
    ]


def get_receipt(
    repo: BillingRepository, receipt_number: str, customer_id: str | None, vendor: dict[str, str]
) -> dict[str, Any]:
    """One receipt (any company's without `customer_id`); `payment_not_found` otherwise."""
    payment = repo.payment_by_receipt(receipt_number, customer_id)
    if payment is None:
        raise PaymentNotFound(details={"receipt_number": receipt_number})
    recurring = None
    if payment.license_id is None and payment.recurring_payment_id is not None:
        recurring = repo.recurring(payment.recurring_payment_id)
    return views.receipt_view(payment, vendor, recurring.license_id if recurring else None)
