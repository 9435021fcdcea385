"""The payment provider's webhooks (Stripe's): what happened on its side, recorded here.

The event is verified with the endpoint's signing secret first (`invalid_signature`, and
nothing recorded, otherwise), then applied in one transaction with its ID in
`webhook_events`: a redelivery (Stripe retries until it hears 2xx) answers `duplicate` and
changes nothing. What is applied:

- `payment_intent.succeeded` / `payment_intent.payment_failed`: the answer of a charge still
  in flight here (a lost answer, a purchase whose customer authenticated and closed the
  page) is settled, exactly as the caller would have (`settlement.settle`), provided the
  intent's amount, currency and customer are the charge's. A success is never dropped
  silently: a purchase given up here is settled all the same (the money is taken), and
  one that cannot be is an ERROR naming the charge and intent, for staff to refund;
- `charge.refunded`: a refund made on the provider's side (its dashboard): the whole amount
  refunds the payment as billing's own refunds do (`payment_refunded`, reason
  `refunded_by_provider`), less is only noted (`payments.refunded_amount`, which never
  goes down). Billing's own refund (`refund_requested_at`) is left to its flow;
- `charge.dispute.created` / `charge.dispute.closed`: a chargeback: the payment is
  `disputed` and its recurring payment ended (`payment_disputed`: licensing suspends the
  license), then won (paid again) or lost (`payment_dispute_closed`). An inquiry
  (`warning_…`: no money moved) is only noted; a decided dispute never reopens, whatever
  order the events come in.

Anything else is recorded and ignored.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from common.errors import NotFound
from common.unit_of_work import Outcome, UnitOfWork
from services.billing import domain
from services.billing.exceptions import InvalidWebhookSignature
from services.billing.models import Charge, Payment
from services.billing.providers import (
    SUCCEEDED,
    PaymentProvider,
    ProviderUnavailable,
    RefundResult,
    SignatureMismatch,
    WebhooksUnsupported,
)
from services.billing.repository import BillingRepository
from services.billing.use_cases.recurring import end_recurring
from services.billing.use_cases.refunds import record_refund
from services.billing.use_cases.settlement import SETTLEABLE, settle

log = logging.getLogger(__name__)

REFUNDED_BY_PROVIDER = "refunded_by_provider"
ABANDONED = "abandoned"
NEEDS_RESPONSE = "needs_response"
# a dispute decided: it never moves back
DISPUTE_OUTCOMES = ("won", "lost")
# an inquiry (Stripe's "warning"): the bank asks, no money moved; closed, it is over
INQUIRIES = ("warning_needs_response", "warning_under_review")
INQUIRY_CLOSED = "warning_closed"

Handler = Callable[[BillingRepository, PaymentProvider, Mapping[str, Any], datetime], Outcome]


def handle(
    uow: UnitOfWork[BillingRepository],
    provider: PaymentProvider,
    payload: str,
    signature: str | None,
    now: datetime,
) -> dict[str, Any]:
    """`{"received": true, "duplicate": bool, "type": "payment_intent.succeeded"}`;
    `not_found` when the provider sends no webhooks, `invalid_signature` (nothing recorded)
    when the signature does not verify."""
    try:
        event = provider.parse_event(payload, signature)
    except WebhooksUnsupported as exc:
        raise NotFound(f"The {provider.name} provider sends no webhooks.") from exc
    except SignatureMismatch as exc:
        raise InvalidWebhookSignature() from exc
    return uow.run(apply_event, provider, event, now)


def apply_event(
    repo: BillingRepository, provider: PaymentProvider, event: Mapping[str, Any], now: datetime
) -> Outcome:
    """Apply a verified event once (its ID recorded in the same transaction)."""
    event_type = str(event["type"])
    answer = {"received": True, "duplicate": False, "type": event_type}
    if not repo.record_webhook_event(str(event["id"]), event_type, now):
        return Outcome({**answer, "duplicate": True})
    obj = (event.get("data") or {}).get("object") or {}
    handler = HANDLERS.get(event_type)
    outcome = handler(repo, provider, obj, now) if handler is not None else Outcome()
    return Outcome(answer, outcome.events, audit=outcome.audit)


# --- payment intents ----------------------------------------------------------------------


def intent_succeeded(
    repo: BillingRepository, provider: PaymentProvider, intent: Mapping[str, Any], now: datetime
) -> Outcome:
    """A charge still in flight here went through: settled as the caller would have. One we
    gave up (`abandoned`) was paid all the same: the customer's money is taken, so a
    purchase is settled whatever made us give it up; a renewal only while its invoice is
    unpaid (`_revivable`). Any success not settled is an ERROR naming it, for staff."""
    charge = _charge_of(repo, intent)
    if charge is None:
        log.info("payment intent %s is none of billing's charges", intent.get("id"))
        return Outcome()
    if charge.status == ABANDONED:
        if charge.decline_code is not None and charge.invoice_id is not None:
            return _unsettled_success(charge, intent, "billing declined it")
        if not _revivable(repo, charge):
            return _unsettled_success(charge, intent, "what it paid for is paid")
        charge.status = "unknown"
        charge.decline_code = None
    if charge.status == "succeeded":
        return Outcome()
    if charge.status not in SETTLEABLE:
        return _unsettled_success(charge, intent, f"billing recorded it {charge.status}")
    try:
        result = provider.intent_result(intent)
    except ProviderUnavailable:
        result = None
    if result is None or result.status != SUCCEEDED:  # the event says one thing, its intent another
        return _unsettled_success(charge, intent, f"its intent is {intent.get('status')}")
    return settle(repo, charge.id, result, now)


def _unsettled_success(charge: Charge, intent: Mapping[str, Any], why: str) -> Outcome:
    log.error(
        "charge %s was paid at the provider (%s) but is not settled here (%s): refund it in "
        "the provider's dashboard, or settle it by hand",
        charge.idempotency_key,
        intent.get("id"),
        why,
    )
    return Outcome()


def _revivable(repo: BillingRepository, charge: Charge) -> bool:
    """Whether an abandoned charge paid late may still be settled: a purchase always (its
    request answered `payment_unconfirmed` or `authentication_failed`; nothing else bought
    it), a renewal while its invoice is neither paid nor being charged again."""
    if charge.invoice_id is None:
        return True
    invoice = repo.invoice(charge.invoice_id, lock=True)
    return invoice is not None and invoice.status in ("open", "failed")


def intent_failed(
    repo: BillingRepository, provider: PaymentProvider, intent: Mapping[str, Any], now: datetime
) -> Outcome:
    """A charge still in flight here was declined: a purchase's is declined, a renewal's
    goes on to its next dunning step."""
    charge = _charge_of(repo, intent)
    if charge is None or charge.status not in SETTLEABLE:
        return Outcome()
    try:
        result = provider.intent_result(intent)
    except ProviderUnavailable:  # still moving: its end comes in another event
        return Outcome()
    if result.status == SUCCEEDED:
        return Outcome()
    return settle(repo, charge.id, result, now)


def _charge_of(repo: BillingRepository, intent: Mapping[str, Any]) -> Charge | None:
    metadata = intent.get("metadata") or {}
    return repo.charge_of_provider(intent.get("id"), metadata.get("charge_key"))


# --- refunds ------------------------------------------------------------------------------


def charge_refunded(
    repo: BillingRepository, provider: PaymentProvider, charge: Mapping[str, Any], now: datetime
) -> Outcome:
    """A refund made at the provider: the whole amount refunds the payment (once), less is
    noted (the most refunded so far: events may come out of order). One billing asked for
    itself (`refund_requested_at`, or its key among the charge's refunds where the provider
    still lists them) is recorded by that flow, with its reason."""
    payment = _payment_of(repo, charge.get("payment_intent"))
    if payment is None or payment.status == "refunded":
        return Outcome()
    if payment.refund_requested_at is not None:
        return Outcome()
    refunds = ((charge.get("refunds") or {}).get("data")) or []
    ours = domain.refund_key(payment.id)
    if any((refund.get("metadata") or {}).get("refund_key") == ours for refund in refunds):
        return Outcome()
    refunded = max(int(charge.get("amount_refunded") or 0), payment.refunded_amount or 0)
    payment.refunded_amount = refunded
    if refunded < payment.amount:
        return Outcome()
    refund_id = refunds[0].get("id") if refunds else None
    result = RefundResult(
        refund_id=str(refund_id or charge.get("id") or ""),
        charge_id=str(charge.get("payment_intent")),
        status=SUCCEEDED,
        amount=refunded,
        currency=payment.currency,
    )
    return record_refund(repo, payment.id, result, REFUNDED_BY_PROVIDER, None, now)


# --- disputes -----------------------------------------------------------------------------


def dispute_created(
    repo: BillingRepository, provider: PaymentProvider, dispute: Mapping[str, Any], now: datetime
) -> Outcome:
    """A chargeback opened: the payment is disputed, nothing more is charged for it, and
    licensing suspends its license until the dispute is resolved. An inquiry is only noted;
    a dispute decided already (its `closed` came first) is not opened again."""
    payment = _payment_of(repo, dispute.get("payment_intent"))
    if payment is None or payment.dispute_status in (NEEDS_RESPONSE, *DISPUTE_OUTCOMES):
        return Outcome()
    status = str(dispute.get("status") or NEEDS_RESPONSE)
    payment.disputed_at = payment.disputed_at or now
    if status in INQUIRIES:
        payment.dispute_status = status
        return Outcome()
    payment.dispute_status = NEEDS_RESPONSE
    if payment.status != "paid":  # refunded already: there is nothing to take back
        return Outcome()
    payment.status = "disputed"
    if payment.recurring_payment_id is not None:
        recurring = repo.recurring(payment.recurring_payment_id, lock=True)
        if recurring is not None and recurring.status != "cancelled":
            end_recurring(repo, recurring, domain.CANCELLED_BY_DISPUTE, now)
    return Outcome(None, [_dispute_event("payment_disputed", payment, dispute)])


def dispute_closed(
    repo: BillingRepository, provider: PaymentProvider, dispute: Mapping[str, Any], now: datetime
) -> Outcome:
    """A chargeback decided: won, the payment is paid again (licensing resumes the license);
    lost, it stays disputed; `payment_dispute_closed` only if it was disputed here. An
    inquiry closed is only noted. A decision never changes afterwards."""
    payment = _payment_of(repo, dispute.get("payment_intent"))
    status = str(dispute.get("status") or "")
    if payment is None or payment.dispute_status in DISPUTE_OUTCOMES:
        return Outcome()
    if status not in (*DISPUTE_OUTCOMES, INQUIRY_CLOSED):
        log.warning("dispute %s closed as %r: not recorded", dispute.get("id"), status)
        return Outcome()
    payment.dispute_status = status
    payment.disputed_at = payment.disputed_at or now
    if status == INQUIRY_CLOSED or payment.status != "disputed":
        return Outcome()
    if status == "won":
        payment.status = "paid"
    event = _dispute_event("payment_dispute_closed", payment, dispute)
    return Outcome(None, [(event[0], {**event[1], "status": status})])


def _dispute_event(
    event_type: str, payment: Payment, dispute: Mapping[str, Any]
) -> tuple[str, dict[str, Any]]:
    """`payment_disputed` / `payment_dispute_closed` of `payment` (event_id and occurred_at
    are stamped by the outbox)."""
    return (
        event_type,
        {
            "customer_id": payment.customer_id,
            "receipt_number": payment.receipt_number,
            "license_id": payment.license_id,
            "amount": payment.amount,
            "currency": payment.currency,
            "reason": dispute.get("reason"),
            "product_name": payment.product_name or payment.product_code,
        },
    )


def _payment_of(repo: BillingRepository, intent_id: Any) -> Payment | None:
    if isinstance(intent_id, Mapping):  # an expanded object
        intent_id = intent_id.get("id")
    if not intent_id:
        return None
    return repo.payment_by_provider_charge(str(intent_id))


HANDLERS: dict[str, Handler] = {
    "payment_intent.succeeded": intent_succeeded,
    "payment_intent.payment_failed": intent_failed,
    "charge.refunded": charge_refunded,
    "charge.dispute.created": dispute_created,
    "charge.dispute.closed": dispute_closed,
}
