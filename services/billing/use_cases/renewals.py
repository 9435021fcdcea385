"""The renewal pass: charge due recurring payments exactly once per period, with dunning.

Safe with any number of billing instances running it at the same time:

- each due (recurring payment, period) gets one invoice: `UNIQUE (recurring_payment_id,
  period_start)` and `INSERT … ON CONFLICT DO NOTHING`;
- an invoice is claimed with `FOR UPDATE SKIP LOCKED` and leaves `open` in the transaction
  that writes its charge row, so no other instance sees it due; a partial unique index
  allows at most one in-flight charge per invoice even if that logic were wrong;
- the provider's idempotency key comes from the charge row's ID;
- a charge whose answer was lost is re-checked with `provider.retrieve`, never re-sent, and
  given up as never made only once the provider's lookup has had time to find it
  (`STALE_PENDING` plus the provider's `lookup_lag`);
- a renewal is charged off-session (its customer is not there to authenticate) with the
  saved method's provider customer;
- a purchase still waiting for its customer's authentication a day later is given up: its
  charge is cancelled at the provider; one the provider will not cancel (the customer
  authenticated meanwhile) is asked about again and settled.

A recurring payment whose license billing has not learnt yet (licensing issues it
asynchronously, see `licenses`) waits for a later pass.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime, timedelta

from common.unit_of_work import Outcome, UnitOfWork
from services.billing import domain
from services.billing.models import Charge
from services.billing.providers import (
    DECLINED,
    REQUIRES_ACTION,
    ChargeResult,
    PaymentProvider,
    ProviderUnavailable,
)
from services.billing.repository import BillingRepository
from services.billing.use_cases.settlement import PendingCharge, abandon, mark_unknown, settle

log = logging.getLogger(__name__)

# A `pending` charge older than this was left by a crash (a live call takes seconds).
STALE_PENDING = timedelta(minutes=10)
REPORT_KEYS = (
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
# what `claim_due_invoice` answers besides a charge to make
NOTHING_DUE, SKIPPED, ALREADY_CHARGING = "nothing_due", "skipped", "already_charging"

Uow = UnitOfWork[BillingRepository]


def run_pass(
    uow: Uow,
    provider: PaymentProvider,
    now: datetime,
    horizon: datetime | None = None,
    limit: int = 500,
) -> dict[str, int]:
    """Settle lost answers, open the invoices due by `horizon` (default `now`), charge them.

    Returns counts: `{"invoices_opened", "charged", "succeeded", "declined", "past_due",
    "unknown", "reconciled", "abandoned", "waiting_for_license"}`.
    """
    horizon = horizon or now
    report: Counter[str] = Counter()
    reconcile(uow, provider, now, report)
    drop_stale_actions(uow, provider, now, report)
    open_invoices(uow, now, horizon, limit, report)
    charge_due(uow, provider, now, horizon, limit, report)
    return {key: report[key] for key in REPORT_KEYS}


def reconcile(uow: Uow, provider: PaymentProvider, now: datetime, report: Counter) -> None:
    """Ask the provider what became of charges whose answer was lost, and record it."""
    seen: set[int] = set()
    while True:
        claimed = uow.read(unsettled_charge, now - STALE_PENDING, seen)
        if claimed is None:
            return
        charge_id, key, created_at = claimed
        seen.add(charge_id)
        try:
            result = provider.retrieve(key) if key else None
        except ProviderUnavailable:
            log.warning("provider cannot say what became of charge %s; asking again later", key)
            continue
        if result is None:
            if key and now - created_at <= STALE_PENDING + provider.lookup_lag:
                continue  # the provider's lookup may not show it yet
            uow.run(abandon, charge_id, now)
            report["abandoned"] += 1
            continue
        uow.run(settle, charge_id, result, now)
        report["reconciled"] += 1


def drop_stale_actions(uow: Uow, provider: PaymentProvider, now: datetime, report: Counter) -> None:
    """Purchases whose customer never authenticated within `domain.ACTION_EXPIRES_AFTER`:
    settled if the provider charged after all, else cancelled there and abandoned here (the
    purchase then answers `authentication_failed`). One the provider will not cancel (the
    customer authenticated in between) is asked about again and settled: never abandoned
    while the provider may have taken the money."""
    seen: set[int] = set()
    while True:
        claimed = uow.read(stale_action, now - domain.ACTION_EXPIRES_AFTER, seen)
        if claimed is None:
            return
        charge_id, intent_id = claimed
        seen.add(charge_id)
        if intent_id is None:  # cannot happen (the intent ID is what made it wait)
            log.error("charge %s waits for authentication of no intent", charge_id)
            continue
        try:
            result = provider.confirm(intent_id)
            if result.status == REQUIRES_ACTION:
                if provider.cancel(intent_id):
                    uow.run(abandon, charge_id, now, "authentication_failed")
                    report["abandoned"] += 1
                    continue
                result = provider.confirm(intent_id)  # not cancelled: what is it then?
        except ProviderUnavailable:
            log.warning("provider cannot say what became of %s; asking again later", intent_id)
            continue
        if result.status == REQUIRES_ACTION:
            log.warning("provider neither cancels nor settles %s; asking again later", intent_id)
            continue
        uow.run(settle, charge_id, result, now)
        report["reconciled"] += 1


def stale_action(
    repo: BillingRepository, created_before: datetime, seen: set[int]
) -> tuple[int, str | None] | None:
    """`(charge ID, provider's intent ID)` of a purchase waiting too long, not in `seen`."""
    charge = repo.charges_awaiting_action(created_before, seen)
    return None if charge is None else (charge.id, charge.provider_charge_id)


def unsettled_charge(
    repo: BillingRepository, stale_before: datetime, seen: set[int]
) -> tuple[int, str | None, datetime] | None:
    """`(charge ID, idempotency key, created at)` of a charge whose answer was lost, not in
    `seen`."""
    charge = repo.claim_unsettled_charge(stale_before, seen)
    return None if charge is None else (charge.id, charge.idempotency_key, charge.created_at)


def open_invoices(uow: Uow, now: datetime, horizon: datetime, limit: int, report: Counter) -> None:
    """One invoice per due (recurring payment, period); running this twice adds nothing."""
    for recurring_id in uow.read(due_recurring, horizon, limit):
        opened = uow.run(open_invoice, recurring_id, horizon, now)
        if opened is None:
            report["waiting_for_license"] += 1
        else:
            report["invoices_opened"] += int(opened)


def due_recurring(repo: BillingRepository, horizon: datetime, limit: int) -> list[int]:
    return [recurring.id for recurring in repo.due_recurring(horizon, limit)]


def open_invoice(
    repo: BillingRepository, recurring_id: int, horizon: datetime, now: datetime
) -> Outcome:
    """Whether this pass opened the due invoice; None while the license is not known yet."""
    recurring = repo.recurring(recurring_id, lock=True)
    if recurring.license_id is None:
        return Outcome(None)
    if recurring.status != "active" or recurring.next_charge_at > horizon:
        return Outcome(False)
    # a period already over is never charged: one left for months starts now instead
    start = domain.renewal_start(recurring.next_charge_at, recurring.interval, now)
    recurring.next_charge_at = start
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
    return Outcome(created)


def charge_due(
    uow: Uow,
    provider: PaymentProvider,
    now: datetime,
    horizon: datetime,
    limit: int,
    report: Counter,
) -> None:
    """Charge every due invoice once: claim it, write its charge row, call the provider."""
    for _ in range(limit):
        claimed = uow.run(claim_due_invoice, now, horizon)
        if claimed == SKIPPED:
            continue
        if claimed == ALREADY_CHARGING:  # another in-flight charge for the invoice: not ours
            log.warning("an invoice already has a charge in flight; ending this pass")
        if not isinstance(claimed, PendingCharge):
            return
        report["charged"] += 1
        if claimed.method_provider not in (None, provider.name):
            # saved with another provider (the sandbox, before switching to Stripe): this
            # provider cannot charge it, and the customer is asked for a new card
            result = ChargeResult(
                "",  # nothing was sent: no provider charge
                DECLINED,
                claimed.amount,
                claimed.currency,
                domain.PAYMENT_METHOD_UNAVAILABLE,
            )
        else:
            try:
                result = provider.charge(
                    claimed.amount,
                    claimed.currency,
                    claimed.token,
                    claimed.key,
                    customer=claimed.customer,
                    off_session=True,
                    description=claimed.description,
                )
            except ProviderUnavailable:
                uow.run(mark_unknown, claimed.charge_id)
                report["unknown"] += 1
                continue
        outcome = uow.run_outcome(settle, claimed.charge_id, result, now)
        if result.succeeded:
            report["succeeded"] += 1
        else:
            report["declined"] += 1
            if any(event[1].get("next_retry_at") is None for event in outcome.events):
                report["past_due"] += 1


def claim_due_invoice(repo: BillingRepository, now: datetime, horizon: datetime) -> Outcome:
    """The charge to make for one due invoice, or `NOTHING_DUE`, `SKIPPED` (cancelled),
    `ALREADY_CHARGING`."""
    invoice = repo.claim_due_invoice(horizon)
    if invoice is None:
        return Outcome(NOTHING_DUE)
    recurring = repo.recurring(invoice.recurring_payment_id)
    if recurring.status == "cancelled":
        invoice.status = "cancelled"
        invoice.next_attempt_at = None
        return Outcome(SKIPPED)
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
    if not repo.add_unique(charge):
        return Outcome(ALREADY_CHARGING)
    charge.idempotency_key = domain.charge_key(charge.id)
    invoice.status = "charging"
    return Outcome(
        PendingCharge(
            charge.id,
            charge.idempotency_key,
            charge.amount,
            charge.currency,
            method.token,
            customer=method.provider_customer_id,
            method_provider=method.provider,
            description=domain.charge_description(
                domain.describe_purchase(
                    recurring.product_name or recurring.product_code,
                    recurring.plan_code,
                    recurring.seats,
                    recurring.interval,
                    "renewal",
                ),
                invoice.customer_id,
            ),
        )
    )
