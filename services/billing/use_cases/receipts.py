"""Receipts: numbered payments, offline sales, the receipts a company (or staff) reads, and
the billing details a receipt names as the buyer. Each receipt is a `purchase` in the
company's audit trail (`purchase_fact`), and a change of billing details is
`billing_details_changed`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from common import audit
from common.audit import Actor
from common.unit_of_work import Outcome
from services.billing import domain, views
from services.billing.exceptions import PaymentNotFound, invalid_field
from services.billing.models import Payment
from services.billing.repository import BillingRepository


def new_payment(repo: BillingRepository, paid_at: datetime, **values: Any) -> Payment:
    """A receipt with the next number of its year (UTC), e.g. `R-2026-000123`, naming the
    seller and the buyer (the company's billing details) as they are now."""
    sequence = repo.next_receipt_sequence(paid_at.year)
    buyer = repo.billing_details(values["customer_id"])
    payment = Payment(
        receipt_number=domain.receipt_number(paid_at.year, sequence),
        status="paid",
        paid_at=paid_at,
        vendor_name=repo.vendor.get("name"),
        vendor_address=repo.vendor.get("address"),
        vendor_vat_id=repo.vendor.get("vat_id"),
        buyer_company_name=buyer.company_name if buyer else None,
        buyer_address=buyer.address if buyer else None,
        buyer_vat_id=buyer.vat_id if buyer else None,
        **values,
    )
    repo.add(payment)
    return payment


def purchase_fact(
    payment: Payment, actor: Actor, now: datetime, automatic: bool
) -> audit.AuditEntry:
    """The audit trail's `purchase` of a receipt (its target): what was bought, for how
    much, `kind` new, renewal or offline; never the card."""
    return audit.entry(
        payment.customer_id,
        actor,
        "purchase",
        ("payment", payment.receipt_number),
        now,
        receipt_number=payment.receipt_number,
        plan=payment.plan_code,
        seats=payment.seats,
        amount=payment.amount,
        currency=payment.currency,
        kind=payment.kind,
        automatic=automatic,
    )


def record_offline(
    repo: BillingRepository, data: dict[str, Any], actor: Actor, now: datetime
) -> Outcome:
    """An offline or phone sale: a receipt that is emailed, never listed in the portal; a
    `purchase` of kind `offline` in the audit trail (by staff, who record them)."""
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
    return Outcome(
        views.payment_view(payment),
        [views.offline_payment_recorded(payment)],
        audit=[purchase_fact(payment, actor, now, automatic=False)],
    )


def portal_payments(
    repo: BillingRepository, customer_id: str, limit: int, before: str | None
) -> list[dict[str, Any]]:
    """A page of the company's portal receipts, newest first, after the receipt `before`;
    renewals show their subscription's license."""
    after = _page_start(repo, before, customer_id)
    payments = repo.portal_payments(customer_id, limit, after)
    return _listed(repo, payments)


def all_payments(
    repo: BillingRepository,
    limit: int,
    before: str | None,
    status: str | None,
    customer_id: str | None,
) -> list[dict[str, Any]]:
    """A page of every payment (portal and offline), newest first, for staff."""
    after = _page_start(repo, before, None)
    return _listed(repo, repo.all_payments(limit, after, status, customer_id))


def _page_start(
    repo: BillingRepository, before: str | None, customer_id: str | None
) -> Payment | None:
    if before is None:
        return None
    payment = repo.payment_by_receipt(before, customer_id)
    if payment is None:
        raise invalid_field(["before"], "No payment with this receipt number.")
    return payment


def _listed(repo: BillingRepository, payments: list[Payment]) -> list[dict[str, Any]]:
    licenses: dict[int, str | None] = {}
    for payment in payments:
        recurring_id = payment.recurring_payment_id
        if payment.license_id is None and recurring_id is not None and recurring_id not in licenses:
            recurring = repo.recurring(recurring_id)
            licenses[recurring_id] = recurring.license_id if recurring else None
    return [
        views.payment_view(payment, licenses.get(payment.recurring_payment_id))
        for payment in payments
    ]


def get_receipt(
    repo: BillingRepository, receipt_number: str, customer_id: str | None, vendor: dict[str, Any]
) -> dict[str, Any]:
    """One receipt (any company's without `customer_id`); `payment_not_found` otherwise."""
    payment = repo.payment_by_receipt(receipt_number, customer_id)
    if payment is None:
        raise PaymentNotFound(details={"receipt_number": receipt_number})
    recurring = None
    if payment.license_id is None and payment.recurring_payment_id is not None:
        recurring = repo.recurring(payment.recurring_payment_id)
    return views.receipt_view(payment, vendor, recurring.license_id if recurring else None)


def get_billing_details(repo: BillingRepository, customer_id: str) -> dict[str, Any]:
    return views.billing_details_view(repo.billing_details(customer_id))


def update_billing_details(
    repo: BillingRepository,
    customer_id: str,
    data: dict[str, Any],
    actor: Actor,
    now: datetime,
) -> Outcome:
    """Replace the company's billing details; receipts paid from now on name them (earlier
    receipts keep the details they were paid with). `billing_details_changed` in the audit
    trail names the fields that changed."""
    address = domain.normalize_address(data["address"])
    if not address:
        raise invalid_field(["address"], "Must not be blank.")
    company_name = data["company_name"].strip()
    if not company_name:
        raise invalid_field(["company_name"], "Must not be blank.")
    before = views.billing_details_view(repo.billing_details(customer_id))
    details = repo.save_billing_details(
        {
            "customer_id": customer_id,
            "company_name": company_name,
            "address": address,
            "vat_id": domain.normalize_vat_id(data.get("vat_id")),
            "updated_at": now,
        }
    )
    view = views.billing_details_view(details)
    changed = [key for key in ("company_name", "address", "vat_id") if before[key] != view[key]]
    if not changed:  # the same details saved again: nothing happened to record
        return Outcome(view)
    fact = audit.entry(
        customer_id,
        actor,
        "billing_details_changed",
        ("billing_details", customer_id),
        now,
        fields=changed,
        company_name=view["company_name"],
        vat_id=view["vat_id"],
    )
    return Outcome(view, audit=[fact])
