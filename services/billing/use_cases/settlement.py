"""Recording the provider's answer for a charge, for purchases and renewals alike.

A charge spans three steps, each its own transaction, so that a crash or a lost answer
leaves a record to re-check instead of a doubt:

1. a `Charge` row is written (`pending`); its ID gives the provider's idempotency key;
2. the provider is called, outside any transaction;
3. `settle` records the answer: for a purchase's success the receipt, the payment method
   and the recurring payment; for a renewal's success the receipt and the next period; for
   a renewal's decline the next dunning step; for a purchase's decline only the charge
   row's status (nothing is listed anywhere). A lost answer marks the charge `unknown`
   (`mark_unknown`); the renewal pass asks the provider (`retrieve`) and settles it then.
   A purchase whose charge the customer must authenticate (3-D Secure) is
   `requires_action` until `confirm_purchase`, the provider's webhook or the renewal pass
   (which gives it up after a day) settles it.

A paid charge is a `purchase` in the company's audit trail, in the transaction of its
receipt: by who bought (kept on the order), or the system for an automatic renewal.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from common.audit import SYSTEM, Actor
from common.timeutil import as_utc
from common.unit_of_work import Outcome
from services.billing import domain, views
from services.billing.models import Charge, PaymentMethod, RecurringPayment
from services.billing.providers import DECLINED, REQUIRES_ACTION, ChargeResult
from services.billing.repository import BillingRepository
from services.billing.use_cases.receipts import new_payment, purchase_fact

log = logging.getLogger(__name__)

IN_FLIGHT = ("pending", "unknown")
# a charge whose outcome may still be recorded: in flight, or waiting for the customer
SETTLEABLE = (*IN_FLIGHT, "requires_action")


@dataclass(frozen=True)
class PendingCharge:
    """A charge row written and not yet sent: what the provider call needs."""

    charge_id: int
    key: str
    amount: int
    currency: str
    token: str
    # the provider's customer of the payment method (Stripe's `cus_…`), if any
    customer: str | None = None
    # a purchase's public ID (what the customer confirms after authenticating)
    purchase_id: str | None = None
    # the provider the saved payment method belongs to (a renewal's; None: the charging one)
    method_provider: str | None = None
    # what the charge is for, in the provider's dashboard (product, seats, company)
    description: str | None = None


def mark_unknown(repo: BillingRepository, charge_id: int) -> Outcome:
    """The provider did not answer: the charge is re-checked later, never sent again."""
    charge = repo.charge(charge_id, lock=True)
    if charge is not None and charge.status == "pending":
        charge.status = "unknown"
    return Outcome()


def settle(repo: BillingRepository, charge_id: int, result: ChargeResult, now: datetime) -> Outcome:
    """Record the provider's answer for a charge, once: a second call changes nothing."""
    charge = repo.charge(charge_id, lock=True)
    if charge is None or charge.status not in SETTLEABLE:
        payment = repo.payment(charge.payment_id) if charge and charge.payment_id else None
        return Outcome(None if payment is None else {"payment": views.payment_view(payment)})
    mismatch = mismatch_of(repo, charge, result)
    if mismatch is not None:
        log.error(
            "the provider's charge %s does not match charge %s (%s): left as it is; find out "
            "in the provider's dashboard which charge it is",
            result.charge_id,
            charge.idempotency_key,
            mismatch,
        )
        return Outcome()
    charge.provider_charge_id = result.charge_id or None
    if result.status == REQUIRES_ACTION:
        if charge.invoice_id is None:  # the customer authenticates, then confirms
            charge.status = "requires_action"
            return Outcome()
        # nobody is there to authenticate a renewal: a decline, as the provider says it
        result = ChargeResult(
            result.charge_id, DECLINED, result.amount, result.currency, "authentication_required"
        )
    charge.completed_at = now
    if charge.invoice_id is not None:
        return _settle_invoice(repo, charge, result, now)
    if not result.succeeded:
        charge.status = "declined"
        charge.decline_code = result.decline_code or "card_declined"
        return Outcome()
    charge.status = "succeeded"
    return _fulfil(repo, charge, domain.Order.from_json(charge.order_json), now)


def mismatch_of(repo: BillingRepository, charge: Charge, result: ChargeResult) -> str | None:
    """Why the provider's answer cannot be this charge's (another amount, currency or
    customer: a key or an ID matched something else), or None when it can."""
    if result.amount != charge.amount or result.currency.upper() != charge.currency.upper():
        return f"{result.amount} {result.currency} instead of {charge.amount} {charge.currency}"
    expected = expected_customer(repo, charge)
    if result.customer and expected and result.customer != expected:
        return f"customer {result.customer} instead of {expected}"
    return None


def expected_customer(repo: BillingRepository, charge: Charge) -> str | None:
    """The provider's customer of the payment method charged, when known."""
    if charge.invoice_id is not None:
        method = repo.payment_method(charge.payment_method_id) if charge.payment_method_id else None
        return method.provider_customer_id if method is not None else None
    if not charge.order_json:
        return None
    return domain.Order.from_json(charge.order_json).card.get("customer")


def abandon(
    repo: BillingRepository, charge_id: int, now: datetime, reason: str | None = None
) -> Outcome:
    """The provider never made this charge (or gave it up, `reason` the decline code a
    purchase then answers): drop it; its invoice (if any) is due again."""
    charge = repo.charge(charge_id, lock=True)
    if charge is None or charge.status not in SETTLEABLE:
        return Outcome()
    charge.status = "abandoned"
    charge.decline_code = reason
    charge.completed_at = now
    if charge.invoice_id is not None:
        invoice = repo.invoice(charge.invoice_id, lock=True)
        if invoice is not None and invoice.status == "charging":
            invoice.status = "open"
            invoice.next_attempt_at = now
    return Outcome()


def _parse_time(value: str | None) -> datetime | None:
    return as_utc(datetime.fromisoformat(value)) if value else None


def _fulfil(repo: BillingRepository, charge: Charge, order: domain.Order, now: datetime) -> Outcome:
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
        provider_customer_id=card.get("customer"),
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
            order.product_name or order.product_code,
            order.plan,
            order.seats,
            order.interval,
            order.kind,
        ),
        channel="portal",
        kind=order.kind,
        plan_code=order.plan,
        product_code=order.product_code,
        product_name=order.product_name,
        seats=order.seats,
        features=domain.feature_codes(order.features),
        **domain.license_terms(order.model, order.lease_seconds, order.max_borrow_days).to_dict(),
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
            reference=domain.new_reference(),
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
    recurring.product_name = order.product_name or recurring.product_name
    recurring.seats = order.seats
    recurring.amount = order.amount
    recurring.currency = order.currency
    recurring.interval = order.interval
    recurring.payment_method_id = method.id
    recurring.next_charge_at = period_end
    recurring.status = "active"
    recurring.failures = 0
    recurring.cancelled_at = None
    recurring.cancelled_by = None
    repo.add(recurring)
    payment.recurring_payment_id = recurring.id
    charge.payment_id = payment.id
    result = {
        "payment": views.payment_view(payment),
        "recurring_payment": views.recurring_view(recurring, method),
    }
    buyer = Actor.from_dict(order.actor) or SYSTEM
    fact = purchase_fact(payment, buyer, now, automatic=False)
    return Outcome(result, [views.payment_succeeded(payment, order.interval)], audit=[fact])


def _settle_invoice(
    repo: BillingRepository, charge: Charge, result: ChargeResult, now: datetime
) -> Outcome:
    """The answer for a renewal charge: a receipt and a new period, or the next dunning step."""
    invoice = repo.invoice(charge.invoice_id, lock=True)
    recurring = repo.recurring(invoice.recurring_payment_id, lock=True)
    method = repo.payment_method(charge.payment_method_id)
    if result.succeeded:
        charge.status = "succeeded"
        # a renewal grants what its plan grants now (an archived plan still has its features)
        plan = repo.plan_by_code(recurring.plan_code)
        payment = new_payment(
            repo,
            now,
            customer_id=invoice.customer_id,
            amount=invoice.amount,
            currency=invoice.currency,
            description=domain.describe_purchase(
                recurring.product_name or recurring.product_code,
                recurring.plan_code,
                recurring.seats,
                recurring.interval,
                "renewal",
            ),
            channel="portal",
            kind="renewal",
            plan_code=recurring.plan_code,
            product_code=recurring.product_code,
            product_name=recurring.product_name,
            seats=recurring.seats,
            features=domain.feature_codes(plan.features if plan else None),
            # recorded as its plan sells it; licensing leaves a renewed license's model alone
            **(views.license_terms(plan) if plan else domain.LicenseTerms()).to_dict(),
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
        view = views.recurring_view(recurring, method)
        return Outcome(
            {"payment": payment.receipt_number, "recurring_payment": view},
            [views.payment_succeeded(payment, recurring.interval)],
            audit=[purchase_fact(payment, SYSTEM, now, automatic=True)],
        )
    charge.status = "declined"
    charge.decline_code = result.decline_code or "card_declined"
    invoice.attempts += 1
    invoice.first_failed_at = invoice.first_failed_at or now
    invoice.last_error = charge.decline_code
    if invoice.status == "cancelled":  # cancelled while the charge was under way
        return Outcome()
    # a decline only the customer can undo (their bank wants them present; the saved card is
    # another provider's) is not tried again off-session: past due at once, one email
    retry_at = (
        None
        if charge.decline_code in domain.CUSTOMER_MUST_ACT
        else domain.next_retry_at(invoice.first_failed_at, invoice.attempts)
    )
    recurring.failures = invoice.attempts
    if retry_at is None:
        invoice.status = "failed"
        invoice.next_attempt_at = None
        if recurring.status == "active":
            recurring.status = "past_due"
    else:
        invoice.status = "open"
        invoice.next_attempt_at = retry_at
    return Outcome(None, [views.payment_failed(recurring, method, invoice, retry_at)])
