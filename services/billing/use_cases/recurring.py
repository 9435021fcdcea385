"""Recurring payments a customer controls: listing, cancelling, resuming, changing the card.

Replacing the card is a flow around the provider (like a purchase): the card is tokenized (or
the provider's payment method attached to the company) and checked with a zero-amount
authorization outside any transaction, then `apply_new_card` records it. A declined card
changes nothing; one the bank wants confirmed (3-D Secure) is declined with a word on where
to confirm it (a purchase or renewal in the portal).

Each change is a fact of the company's audit trail (`recurring_payment_cancelled`,
`recurring_payment_resumed`, `recurring_payment_card_changed`, target the recurring
payment), by the actor the entrypoint names; a call that changes nothing records nothing.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from common import audit
from common.audit import Actor
from common.errors import ServiceUnavailable
from common.idempotency import IdempotencyKeyReused, Once
from common.timeutil import iso
from common.unit_of_work import Outcome, UnitOfWork
from services.billing import domain, views
from services.billing.exceptions import (
    RecurringPaymentEnded,
    RecurringPaymentNotFound,
    declined,
)
from services.billing.models import PaymentMethod, RecurringPayment
from services.billing.providers import PaymentProvider, ProviderUnavailable
from services.billing.repository import BillingRepository
from services.billing.use_cases import cards


def list_recurring(repo: BillingRepository, customer_id: str) -> list[dict[str, Any]]:
    return [
        views.recurring_view(recurring, repo.payment_method(recurring.payment_method_id))
        for recurring in repo.recurring_payments(customer_id)
    ]


def _find(
    repo: BillingRepository, reference: str, customer_id: str | None
) -> tuple[RecurringPayment, PaymentMethod | None]:
    recurring = repo.recurring_by_reference(reference, customer_id, lock=True)
    if recurring is None:
        raise RecurringPaymentNotFound(details={"id": reference})
    return recurring, repo.payment_method(recurring.payment_method_id)


def _fact(
    recurring: RecurringPayment, actor: Actor, action: str, now: datetime, **details: Any
) -> audit.AuditEntry:
    """The audit trail's entry of `action` on `recurring` (its license and plan named)."""
    return audit.entry(
        recurring.customer_id,
        actor,
        action,
        ("recurring_payment", recurring.reference),
        now,
        license_id=recurring.license_id,
        plan=recurring.plan_code,
        **details,
    )


def cancel_recurring(
    repo: BillingRepository,
    reference: str,
    customer_id: str | None,
    actor: Actor,
    now: datetime,
) -> Outcome:
    """No more charges; the license runs to its end. Cancelling twice changes nothing.

    A customer's cancellation (`customer_id` given) can be resumed until the period ends;
    staff's (no `customer_id`) cannot by the customer.
    """
    recurring, method = _find(repo, reference, customer_id)
    if recurring.status == "cancelled":
        return Outcome(views.recurring_view(recurring, method))
    by = domain.CANCELLED_BY_CUSTOMER if customer_id else domain.CANCELLED_BY_STAFF
    end_recurring(repo, recurring, by, now)
    return Outcome(
        views.recurring_view(recurring, method),
        [views.recurring_payment_cancelled(recurring, method, now)],
        audit=[_fact(recurring, actor, "recurring_payment_cancelled", now)],
    )


def end_recurring(
    repo: BillingRepository, recurring: RecurringPayment, by: str, now: datetime
) -> None:
    """Cancel `recurring` (`by` whom) and the invoices it has open."""
    recurring.status = "cancelled"
    recurring.cancelled_at = now
    recurring.cancelled_by = by
    for invoice in repo.invoices_of(recurring.id, ("open",)):
        invoice.status = "cancelled"
        invoice.next_attempt_at = None


def resume_recurring(
    repo: BillingRepository,
    reference: str,
    customer_id: str | None,
    actor: Actor,
    now: datetime,
) -> Outcome:
    """Charge automatically again: a recurring payment the customer cancelled, while the
    period it paid for runs. One that is not cancelled is answered unchanged; an ended one
    (period over, or cancelled by staff or a refund) is `recurring_payment_ended`.

    It goes back to where the cancellation found it: an invoice in dunning is due again
    (its attempts so far still count), and one whose last attempt failed leaves it past due
    (a new card tries it again).
    """
    recurring, method = _find(repo, reference, customer_id)
    if recurring.status != "cancelled":
        return Outcome(views.recurring_view(recurring, method))
    if not domain.resumable(
        recurring.status, recurring.cancelled_by, recurring.next_charge_at, now
    ):
        raise RecurringPaymentEnded(
            details={
                "id": reference,
                "cancelled_by": recurring.cancelled_by,
                "next_charge_at": iso(recurring.next_charge_at),
            }
        )
    recurring.status = "past_due" if repo.invoices_of(recurring.id, ("failed",)) else "active"
    recurring.cancelled_at = None
    recurring.cancelled_by = None
    # the invoice of the coming period, if a pass opened it early, was cancelled with it
    for invoice in repo.invoices_of(recurring.id, ("cancelled",)):
        if (
            invoice.period_start == recurring.next_charge_at
            and invoice.payment_id is None
            and invoice.period_end > now
        ):
            invoice.status = "open"
            invoice.next_attempt_at = max(invoice.period_start, now)
    return Outcome(
        views.recurring_view(recurring, method),
        [views.recurring_payment_resumed(recurring, method, now)],
        audit=[_fact(recurring, actor, "recurring_payment_resumed", now)],
    )


def replace_card(
    uow: UnitOfWork[BillingRepository],
    provider: PaymentProvider,
    now: datetime,
    reference: str,
    customer_id: str | None,
    card: dict[str, Any] | None,
    request_key: str | None,
    once: Once | None,
    actor: Actor,
    payment_method: str | None = None,
) -> dict[str, Any]:
    """Check the new card (tokenize, or attach the provider's `payment_method`; zero-amount
    authorization), then put it on the recurring payment. Declined: `card_declined` /
    `insufficient_funds` and nothing changed."""
    owner = uow.read(_replaceable, reference, customer_id, now)
    if once is not None:  # the key of another card: refused before any authorization
        uow.read(_same_request, once)
    if card is not None:
        method = cards.tokenize(provider, card, now)
    else:
        method = cards.attach(uow, provider, payment_method or "", owner)
    key = domain.authorization_key(
        customer_id or "staff",
        request_key or secrets.token_hex(16),
        domain.card_fingerprint(method.brand, method.last4, method.exp_month, method.exp_year)
        + (f"/{method.token}" if card is None else ""),
    )
    try:
        check = provider.authorize(method.token, key, customer=method.customer)
    except ProviderUnavailable as exc:
        raise ServiceUnavailable(
            "The payment provider did not answer; the card was not changed. Try again.",
            details={"service": "payment_provider"},
        ) from exc
    if not check.succeeded:
        raise declined(check.decline_code, card_check=True)
    new_card = {
        "provider": provider.name,
        "token": method.token,
        "brand": method.brand,
        "last4": method.last4,
        "exp_month": method.exp_month,
        "exp_year": method.exp_year,
        "customer": method.customer,
    }
    return uow.run(apply_new_card, reference, customer_id, new_card, actor, now, once=once)


def _replaceable(
    repo: BillingRepository, reference: str, customer_id: str | None, now: datetime
) -> str:
    """The company paying; not found or ended: refused before the card is sent to the
    provider."""
    recurring = repo.recurring_by_reference(reference, customer_id)
    if recurring is None:
        raise RecurringPaymentNotFound(details={"id": reference})
    _check_not_ended(recurring, reference, now)
    return recurring.customer_id


def _same_request(repo: BillingRepository, once: Once) -> None:
    """A key already used with another body (another card) is refused at once, so that a
    retry with card B never gets card A's check nor saves B unchecked."""
    found = repo.handled_fingerprint(once.scope, once.key, once.operation)
    if found is not None and found != once.fingerprint:
        raise IdempotencyKeyReused(details={"operation": once.operation})


def _check_not_ended(recurring: RecurringPayment, reference: str, now: datetime) -> None:
    if recurring.status == "cancelled" and not domain.resumable(
        recurring.status, recurring.cancelled_by, recurring.next_charge_at, now
    ):
        raise RecurringPaymentEnded(details={"id": reference})


def revive_or_drop(repo: BillingRepository, recurring: RecurringPayment, now: datetime) -> None:
    """Invoices in dunning or failed are due again now (fresh dunning) while their period
    runs; those of a period already over are cancelled. The recurring payment then charges
    from `domain.renewal_start`: the end of the last period paid, or now if that period is
    over too, so a payment past due for months is charged once, for a period starting now."""
    revived = False
    for invoice in repo.invoices_of(recurring.id, ("open", "failed")):
        if invoice.period_end > now:
            invoice.status = "open"
            invoice.next_attempt_at = now
            invoice.attempts = 0
            invoice.first_failed_at = None
            revived = True
        else:
            invoice.status = "cancelled"
            invoice.next_attempt_at = None
        recurring.failures = 0
    if not revived:
        recurring.next_charge_at = domain.renewal_start(
            recurring.next_charge_at, recurring.interval, now
        )
        if recurring.status == "past_due":
            recurring.status = "active"
            recurring.failures = 0


def apply_new_card(
    repo: BillingRepository,
    reference: str,
    customer_id: str | None,
    card: dict[str, Any],
    actor: Actor,
    now: datetime,
) -> Outcome:
    """The checked card pays from now on. An invoice in dunning (or one that failed, making
    the recurring payment past due) is tried again at the next renewal pass, with a fresh
    dunning schedule, while its period runs; one whose period is over is cancelled (nobody
    pays for time gone by) and the next charge is for a period starting now, at most one."""
    recurring, previous = _find(repo, reference, customer_id)
    _check_not_ended(recurring, reference, now)
    method = PaymentMethod(
        customer_id=recurring.customer_id,
        provider=card["provider"],
        token=card["token"],
        brand=card["brand"],
        last4=card["last4"],
        exp_month=card["exp_month"],
        exp_year=card["exp_year"],
        provider_customer_id=card.get("customer"),
        created_at=now,
    )
    repo.add(method)
    recurring.payment_method_id = method.id
    revive_or_drop(repo, recurring, now)
    fact = _fact(
        recurring,
        actor,
        "recurring_payment_card_changed",
        now,
        card_brand=method.brand,
        card_last4=method.last4,
    )
    return Outcome(
        views.recurring_view(recurring, method),
        [views.recurring_payment_card_changed(recurring, method, previous, now)],
        audit=[fact],
    )
