"""Recurring payments: what will be charged automatically, and cancelling it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from common.unit_of_work import Outcome
from services.billing import views
from services.billing.exceptions import RecurringPaymentNotFound
from services.billing.repository import BillingRepository


def list_recurring(repo: BillingRepository, customer_id: str) -> list[dict[str, Any]]:
    return [
        views.recurring_view(recurring, repo.payment_method(recurring.payment_method_id))
        for recurring in repo.recurring_payments(customer_id)
    ]


def cancel_recurring(
    repo: BillingRepository, reference: str, customer_id: str | None, now: datetime
) -> Outcome:
    """No more charges; the license runs to its end. Cancelling twice changes nothing."""
    recurring = repo.recurring_by_reference(reference, customer_id, lock=True)
    if recurring is None:
        raise RecurringPaymentNotFound(details={"id": reference})
    method = repo.payment_method(recurring.payment_method_id)
    if recurring.status == "cancelled":
        return Outcome(views.recurring_view(recurring, method))
    recurring.status = "cancelled"
    recurring.cancelled_at = now
    for invoice in repo.invoices_of(recurring.id, ("open",)):
        invoice.status = "cancelled"
        invoice.next_attempt_at = None
    return Outcome(
        views.recurring_view(recurring, method),
        [views.recurring_payment_cancelled(recurring, method, now)],
    )
