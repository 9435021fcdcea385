"""The renewal pass: charge due recurring payments exactly once per period, with dunning.

Safe with any number of billing instances running it at the same time:

- each due (recurring payment, period) gets one invoice: `UNIQUE (recurring_payment_id,
  period_start)` and `INSERT … ON CONFLICT DO NOTHING`;
- an invoice is claimed with `FOR UPDATE SKIP LOCKED` and leaves `open` in the transaction
  that writes its charge row, so no other instance sees it due; a partial unique index
  allows at most one in-flight charge per invoice even if that logic were wrong;
- the provider's idempotency key comes from the charge row's ID;
- a charge whose answer was lost is re-checked with `provider.retrieve`, never re-sent.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError

from common.db import Db
from common.errors import PortalError
from common.timeutil import iso
from services.billing import domain
from services.billing.models import Charge
from services.billing.providers import ChargeResult, PaymentProvider, ProviderUnavailable
from services.billing.purchases import (
    Event,
    Outcome,
    attach_license,
    charge_key,
    complete_charge,
    mark_unknown,
    new_payment,
    payment_succeeded,
    recurring_view,
)
from services.billing.repository import BillingRepository

log = logging.getLogger(__name__)

# A `pending` charge older than this was left by a crash (a live call takes seconds).
STALE_PENDING = timedelta(minutes=10)

# publishes events a committed transaction staged in the outbox (and marks them published)
Flush = Callable[[list[Event]], Any]
LicenseForPayment = Callable[[str, str], dict[str, Any] | None]


def run_pass(
    db: Db,
    provider: PaymentProvider,
    now: datetime,
    flush: Flush,
    license_for_payment: LicenseForPayment,
    horizon: datetime | None = None,
    limit: int = 500,
) -> dict[str, int]:
    """Settle lost answers, open the invoices due by `horizon` (default `now`), charge them.

    Returns counts: `{"invoices_opened", "charged", "succeeded", "declined", "past_due",
    "unknown", "reconciled", "abandoned", "waiting_for_license"}`.
    """
    horizon = horizon or now
    report: Counter[str] = Counter()
    reconcile(db, provider, now, flush, report)
    open_invoices(db, now, horizon, license_for_payment, limit, report)
    charge_due(db, provider, now, horizon, flush, limit, report)
    keys = (
        "invoices_opened",
        "charged",
        "succeeded",
        "declined",
        "past_due",
        "unknown",
        "reconciled",
        "abandoned",
        "waiting_for_license",
    )
    return {key: report[key] for key in keys}


def reconcile(
    db: Db, provider: PaymentProvider, now: datetime, flush: Flush, report: Counter
) -> None:
    """Ask the provider what became of charges whose answer was lost, and record it."""
    seen: set[int] = set()
    while True:
        with db.transaction() as session:
            charge = BillingRepository(session).claim_unsettled_charge(now - STALE_PENDING, seen)
            if charge is None:
                return
            seen.add(charge.id)
            charge_id, key = charge.id, charge.idempotency_key
        try:
            result = provider.retrieve(key) if key else None
        except ProviderUnavailable:
            log.warning("provider cannot say what became of charge %s; asking again later", key)
            continue
        if result is None:
            abandon(db, charge_id, now)
            report["abandoned"] += 1
            continue
        flush(complete_charge(db, charge_id, result, now).events)
        report["reconciled"] += 1


def abandon(db: Db, charge_id: int, now: datetime) -> None:
    """The provider never made this charge: drop it; its invoice (if any) is due again."""
    with db.transaction() as session:
        repo = BillingRepository(session)
        charge = repo.charge(charge_id, lock=True)
        if charge is None or charge.status not in ("pending", "unknown"):
            return
        charge.status = "abandoned"
        charge.completed_at = now
        if charge.invoice_id is not None:
            invoice = repo.invoice(charge.invoice_id, lock=True)
            if invoice is not None and invoice.status == "charging":
                invoice.status = "open"
                invoice.next_attempt_at = now


def open_invoices(
    db: Db,
    now: datetime,
    horizon: datetime,
    license_for_payment: LicenseForPayment,
    limit: int,
    report: Counter,
) -> None:
    """One invoice per due (recurring payment, period); running this twice adds nothing."""
    with db.transaction() as session:
        due = [
            (r.id, r.license_id, r.origin_receipt, r.customer_id)
            for r in BillingRepository(session).due_recurring(horizon, limit)
        ]
    for recurring_id, license_id, receipt, customer_id in due:
        if license_id is None:
            # licensing issues licenses asynchronously; a renewal needs to know which one
            try:
                found = license_for_payment(receipt, customer_id) if receipt else None
            except PortalError:
                found = None
            if not found or not found.get("license_id"):
                report["waiting_for_license"] += 1
                continue
            attach_license(db, recurring_id, found["license_id"])
        with db.transaction() as session:
            repo = BillingRepository(session)
            recurring = repo.recurring(recurring_id)
            if recurring.status != "active" or recurring.next_charge_at > horizon:
                continue
            start = recurring.next_charge_at
            created = repo.open_invoice(
                {
                    "recurring_payment_id": recurring.id,
                    "customer_id": recurring.customer_id,
                    "period_start": start,
                    "period_end": domain.add_interval(start, recurring.interval),
                    "amount": recurring.amount,
                    "currency": recurring.currency,
                    "status": "open",
                    "attempts": 0,
                    "next_attempt_at": start,
                    "created_at": now,
                }
            )
            report["invoices_opened"] += int(created)


def charge_due(
    db: Db,
    provider: PaymentProvider,
    now: datetime,
    horizon: datetime,
    flush: Flush,
    limit: int,
    report: Counter,
) -> None:
    """Charge every due invoice once: claim it, write its charge row, call the provider."""
    for _ in range(limit):
        try:
            claimed = _claim(db, now, horizon)
        except IntegrityError:  # another in-flight charge exists for the invoice: not ours
            log.warning("an invoice already has a charge in flight; ending this pass")
            return
        if claimed is None:
            return
        charge_id, key, amount, currency, token = claimed
        if charge_id is None:
            continue
        report["charged"] += 1
        try:
            result = provider.charge(amount, currency, token, key)
        except ProviderUnavailable:
            mark_unknown(db, charge_id)
            report["unknown"] += 1
            continue
        outcome = complete_charge(db, charge_id, result, now)
        flush(outcome.events)
        if result.succeeded:
            report["succeeded"] += 1
        else:
            report["declined"] += 1
            if any(e[1].get("next_retry_at") is None for e in outcome.events):
                report["past_due"] += 1


def _claim(db: Db, now: datetime, horizon: datetime) -> tuple | None:
    """None when nothing is due; a tuple of Nones when the claimed invoice needed no charge."""
    with db.transaction() as session:
        repo = BillingRepository(session)
        invoice = repo.claim_due_invoice(horizon)
        if invoice is None:
            return None
        recurring = repo.recurring(invoice.recurring_payment_id)
        if recurring.status == "cancelled":
            invoice.status = "cancelled"
            invoice.next_attempt_at = None
            return (None,) * 5
        method = repo.payment_method(recurring.payment_method_id)
        charge = Charge(
            kind="invoice",
            customer_id=invoice.customer_id,
            invoice_id=invoice.id,
            amount=invoice.amount,
            currency=invoice.currency,
            payment_method_id=method.id,
            status="pending",
            created_at=now,
        )
        repo.add(charge)
        charge.idempotency_key = charge_key(charge.id)
        invoice.status = "charging"
        return charge.id, charge.idempotency_key, charge.amount, charge.currency, method.token


def settle_invoice(
    repo: BillingRepository, charge: Charge, result: ChargeResult, now: datetime
) -> Outcome:
    """The answer for a renewal charge: a receipt and a new period, or the next dunning step."""
    invoice = repo.invoice(charge.invoice_id, lock=True)
    recurring = repo.recurring(invoice.recurring_payment_id, lock=True)
    method = repo.payment_method(charge.payment_method_id)
    if result.succeeded:
        charge.status = "succeeded"
        payment = new_payment(
            repo,
            now,
            customer_id=invoice.customer_id,
            amount=invoice.amount,
            currency=invoice.currency,
            description=domain.describe_purchase(
                recurring.product_code,
                recurring.plan_code,
                recurring.seats,
                recurring.interval,
                "renewal",
            ),
            channel="portal",
            kind="renewal",
            plan_code=recurring.plan_code,
            product_code=recurring.product_code,
            seats=recurring.seats,
            unit_amount=invoice.amount // max(1, recurring.seats),
            period_start=invoice.period_start,
            period_end=invoice.period_end,
            license_id=recurring.license_id,
            recurring_payment_id=recurring.id,
            card_brand=method.brand if method else None,
            card_last4=method.last4 if method else None,
            provider_charge_id=result.charge_id,
        )
        charge.payment_id = payment.id
        invoice.status = "paid"
        invoice.payment_id = payment.id
        invoice.next_attempt_at = None
        if recurring.next_charge_at == invoice.period_start:
            recurring.next_charge_at = invoice.period_end
        recurring.failures = 0
        if recurring.status == "past_due":
            recurring.status = "active"
        view = recurring_view(recurring, method)
        return Outcome(
            {"payment": payment.receipt_number, "recurring_payment": view},
            [payment_succeeded(payment, recurring.interval)],
        )
    charge.status = "declined"
    charge.decline_code = result.decline_code or "card_declined"
    invoice.attempts += 1
    invoice.first_failed_at = invoice.first_failed_at or now
    invoice.last_error = charge.decline_code
    if invoice.status == "cancelled":  # cancelled while the charge was under way
        return Outcome()
    retry_at = domain.next_retry_at(invoice.first_failed_at, invoice.attempts)
    recurring.failures = invoice.attempts
    if retry_at is None:
        invoice.status = "failed"
        invoice.next_attempt_at = None
        if recurring.status == "active":
            recurring.status = "past_due"
    else:
        invoice.status = "open"
        invoice.next_attempt_at = retry_at
    return Outcome(None, [payment_failed(recurring, method, invoice, retry_at)])


def payment_failed(recurring, method, invoice, retry_at: datetime | None) -> Event:
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
