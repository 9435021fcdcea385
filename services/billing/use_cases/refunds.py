"""Refunds: money taken for something licensing could not deliver goes back, automatically.

Licensing publishes `payment_not_applied` when a paid payment cannot become a license (its
product unknown or archived, the license suspended or another company's). Billing then
refunds the payment through the provider, marks it refunded, ends the recurring payment it
paid for (no more charges for what cannot be delivered; but a suspended license's goes on,
see `KEEPS_RECURRING`) and publishes `payment_refunded`,
which notify emails. Three steps, like a charge:

1. `refund_target` reads what to refund (nothing if the payment is refunded already; what
   the provider refunded from its side already is left out) and marks the payment
   `refund_requested_at`, committed before the provider is asked: the provider's
   `charge.refunded` of this refund then knows it is billing's own (Stripe's Charge no
   longer lists its refunds) and leaves it to step 3, which records it with its reason;
2. the provider refunds it, outside any transaction, idempotent by the payment's refund key
   (a retry after a lost answer, or a redelivered event, refunds once);
3. `record_refund` records it, once: a second call changes nothing and publishes nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from common.unit_of_work import Outcome, UnitOfWork
from services.billing import domain, views
from services.billing.models import Payment, RecurringPayment
from services.billing.providers import PaymentProvider, RefundRefused, RefundResult
from services.billing.repository import BillingRepository
from services.billing.use_cases.recurring import end_recurring

log = logging.getLogger(__name__)

# refund reasons (licensing's error codes) that leave the recurring payment running
KEEPS_RECURRING = frozenset({"license_suspended"})


class NotRefundable(Exception):
    """This event names a payment that cannot be refunded here (unknown, offline, never
    charged through the provider, or refused by it): kept for staff, never retried."""


@dataclass(frozen=True)
class RefundOrder:
    payment_id: int
    charge_id: str
    amount: int
    currency: str
    key: str


def refund_not_applied(
    uow: UnitOfWork[BillingRepository],
    provider: PaymentProvider,
    event: dict[str, Any],
    now: datetime,
) -> dict[str, Any] | None:
    """Refund the payment of a `payment_not_applied` event; its payment view once refunded.

    `NotRefundable` for a payment that cannot be; `ProviderUnavailable` (the event is tried
    again) when the provider did not answer.
    """
    order = uow.run(refund_target, event["customer_id"], event["receipt_number"], now)
    if order is None:
        return None  # refunded already (a redelivered event)
    try:
        result = provider.refund(order.charge_id, order.amount, order.currency, order.key)
    except RefundRefused as exc:
        uow.run(refund_not_requested, order.payment_id)
        raise NotRefundable(f"the provider refuses the refund: {exc}") from exc
    return uow.run(record_refund, order.payment_id, result, event["reason"], event["message"], now)


def refund_target(
    repo: BillingRepository, customer_id: str, receipt_number: str, now: datetime
) -> Outcome:
    """What to refund for the receipt (what the provider has not refunded already), or None
    when it is refunded already; the payment is marked as being refunded by billing."""
    payment = repo.payment_by_receipt(receipt_number, customer_id, lock=True)
    if payment is None:
        raise NotRefundable(f"no payment {receipt_number} of {customer_id}")
    if payment.status == "refunded":
        return Outcome(None)
    if payment.channel != "portal" or not payment.provider_charge_id:
        raise NotRefundable(f"payment {receipt_number} was not charged through the provider")
    rest = payment.amount - (payment.refunded_amount or 0)
    if rest <= 0:  # refunded in full at the provider: its webhook records it
        return Outcome(None)
    payment.refund_requested_at = payment.refund_requested_at or now
    key = domain.refund_key(payment.id)
    return Outcome(RefundOrder(payment.id, payment.provider_charge_id, rest, payment.currency, key))


def refund_not_requested(repo: BillingRepository, payment_id: int) -> Outcome:
    """The provider refused billing's refund: its later refunds are its own again."""
    payment = repo.payment(payment_id, lock=True)
    if payment.status != "refunded":
        payment.refund_requested_at = None
    return Outcome()


def record_refund(
    repo: BillingRepository,
    payment_id: int,
    result: RefundResult,
    reason: str,
    message: str | None,
    now: datetime,
) -> Outcome:
    """Mark the payment refunded and end what it paid for, once."""
    payment = repo.payment(payment_id, lock=True)
    if payment.status == "refunded":
        return Outcome(views.payment_view(payment))
    payment.status = "refunded"
    payment.refunded_at = now
    payment.refunded_amount = payment.amount
    payment.refund_reason = reason[:64]
    payment.provider_refund_id = result.refund_id
    ended = _recurring_paid_by(repo, payment)
    # a suspended license is lifted some day: its recurring payment goes on (the next pass
    # charges the next period, refunded again while the suspension lasts); anything else
    # can never be delivered, so nothing more is charged for it
    if ended is not None and ended.status != "cancelled" and reason not in KEEPS_RECURRING:
        end_recurring(repo, ended, domain.CANCELLED_BY_REFUND, now)
    return Outcome(views.payment_view(payment), [views.payment_refunded(payment, message)])


def _recurring_paid_by(repo: BillingRepository, payment: Payment) -> RecurringPayment | None:
    """The recurring payment whose current period this payment paid: the one its purchase
    started (it never had a license, so nothing moved it on), or the one whose period it
    renewed, unless a later payment moved it on. Charging it again would only be refunded
    again."""
    if payment.recurring_payment_id is None or payment.period_end is None:
        return None
    recurring = repo.recurring(payment.recurring_payment_id, lock=True)
    if recurring is None or recurring.next_charge_at != payment.period_end:
        return None
    return recurring
