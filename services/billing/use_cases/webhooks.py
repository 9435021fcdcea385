"""The payment provider's webhooks (Stripe's): what happened on its side, recorded here.

The event is verified with the endpoint's signing secret first (`invalid_signature`, and
nothing recorded, otherwise), then applied in one transaction with its ID in
`webhook_events`: a redelivery (Stripe retries until it hears 2xx) answers `duplicate` and
changes nothing. What is applied:

- `payment_intent.succeeded` / `payment_intent.payment_failed`: the answer of a charge still
  in flight here (a lost answer, a purchase whose customer authenticated and closed the
  page) is settled, exactly as the caller would have (`settlement.settle`);
- `charge.refunded`: a refund made on the provider's side (its dashboard): the whole amount
  refunds the payment as billing's own refunds do (`payment_refunded`, reason
  `refunded_by_provider`), less is only noted (`payments.refunded_amount`);
- `charge.dispute.created` / `charge.dispute.closed`: a chargeback: the payment is
  `disputed` and its recurring payment ended (`payment_disputed`: licensing suspends the
  license), then won (paid again) or lost (`payment_dispute_closed`).

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
from services.billing.exceptions import InvalidSignature
from services.billing.models import Payment
from services.billing.providers import (
    DECLINED,
    SUCCEEDED,
    ChargeResult,
    PaymentProvider,
    RefundResult,
    WebhooksUnsupported,
)
from services.billing.providers import InvalidSignature as BadSignature
from services.billing.repository import BillingRepository
from services.billing.stripe_provider import normalize_decline
from services.billing.use_cases.recurring import end_recurring
from services.billing.use_cases.refunds import record_refund
from services.billing.use_cases.settlement import SETTLEABLE, settle

log = logging.getLogger(__name__)

REFUNDED_BY_PROVIDER = "refunded_by_provider"
ABANDONED = "abandoned"
NEEDS_RESPONSE = "needs_response"
DISPUTE_OUTCOMES = ("won", "lost")


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
    except BadSignature as exc:
        raise InvalidSignature() from exc
    return uow.run(apply_event, event, now)


def apply_event(repo: BillingRepository, event: Mapping[str, Any], now: datetime) -> Outcome:
    """Apply a verified event once (its ID recorded in the same transaction)."""
    event_type = str(event["type"])
    answer = {"received": True, "duplicate": False, "type": event_type}
    if not repo.record_webhook_event(str(event["id"]), event_type, now):
        return Outcome({**answer, "duplicate": True})
    obj = (event.get("data") or {}).get("object") or {}
    handler = HANDLERS.get(event_type)
    outcome = handler(repo, obj, now) if handler is not None else Outcome()
    return Outcome(answer, outcome.events, audit=outcome.audit)


# --- payment intents ----------------------------------------------------------------------


def intent_succeeded(repo: BillingRepository, intent: Mapping[str, Any], now: datetime) -> Outcome:
    """A charge still in flight here went through: settled as the caller would have. One we
    gave up (`abandoned`: the provider's search did not find it in time) was paid all the
    same: the customer's money is taken, so it is settled too, unless what it paid for was
    paid by another charge since (then staff refund it: an ERROR in the log says which)."""
    charge = _charge_of(repo, intent)
    if charge is None:
        return Outcome()
    if charge.status == ABANDONED and charge.decline_code is None:
        if not _revivable(repo, charge):
            log.error(
                "charge %s was paid at the provider (%s) after billing gave it up, and what "
                "it paid for is paid: refund it in the provider's dashboard",
                charge.idempotency_key,
                intent.get("id"),
            )
            return Outcome()
        charge.status = "unknown"
    if charge.status not in SETTLEABLE:
        return Outcome()
    result = ChargeResult(intent["id"], SUCCEEDED, charge.amount, charge.currency)
    return settle(repo, charge.id, result, now)


def _revivable(repo: BillingRepository, charge: Any) -> bool:
    """Whether an abandoned charge paid late may still be settled: a purchase always (its
    request answered `payment_unconfirmed`; nothing else bought it), a renewal while its
    invoice is neither paid nor being charged again."""
    if charge.invoice_id is None:
        return True
    invoice = repo.invoice(charge.invoice_id, lock=True)
    return invoice is not None and invoice.status in ("open", "failed")


def intent_failed(repo: BillingRepository, intent: Mapping[str, Any], now: datetime) -> Outcome:
    """A charge still in flight here was declined: a purchase's is declined, a renewal's
    goes on to its next dunning step."""
    charge = _charge_of(repo, intent)
    if charge is None or charge.status not in SETTLEABLE:
        return Outcome()
    error = intent.get("last_payment_error") or {}
    code = normalize_decline(error.get("code"), error.get("decline_code"))
    result = ChargeResult(intent["id"], DECLINED, charge.amount, charge.currency, code)
    return settle(repo, charge.id, result, now)


def _charge_of(repo: BillingRepository, intent: Mapping[str, Any]) -> Any:
    metadata = intent.get("metadata") or {}
    return repo.charge_of_provider(intent.get("id"), metadata.get("charge_key"))


# --- refunds ------------------------------------------------------------------------------


def charge_refunded(repo: BillingRepository, charge: Mapping[str, Any], now: datetime) -> Outcome:
    """A refund made at the provider: the whole amount refunds the payment (once), less is
    noted. One billing made itself (`payment_not_applied`) is recorded by that flow."""
    payment = _payment_of(repo, charge.get("payment_intent"))
    if payment is None or payment.status == "refunded":
        return Outcome()
    refunds = ((charge.get("refunds") or {}).get("data")) or []
    ours = domain.refund_key(payment.id)
    if any((refund.get("metadata") or {}).get("refund_key") == ours for refund in refunds):
        return Outcome()
    refunded = int(charge.get("amount_refunded") or 0)
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


def dispute_created(repo: BillingRepository, dispute: Mapping[str, Any], now: datetime) -> Outcome:
    """A chargeback opened: the payment is disputed, nothing more is charged for it, and
    licensing suspends its license until the dispute is resolved."""
    payment = _payment_of(repo, dispute.get("payment_intent"))
    if payment is None or payment.dispute_status == NEEDS_RESPONSE:
        return Outcome()
    payment.dispute_status = NEEDS_RESPONSE
    payment.disputed_at = now
    if payment.status != "paid":  # refunded already: there is nothing to take back
        return Outcome()
    payment.status = "disputed"
    if payment.recurring_payment_id is not None:
        recurring = repo.recurring(payment.recurring_payment_id, lock=True)
        if recurring is not None and recurring.status != "cancelled":
            end_recurring(repo, recurring, domain.CANCELLED_BY_DISPUTE, now)
    return Outcome(None, [_dispute_event("payment_disputed", payment, dispute)])


def dispute_closed(repo: BillingRepository, dispute: Mapping[str, Any], now: datetime) -> Outcome:
    """A chargeback decided: won, the payment is paid again (licensing resumes the license);
    lost, it stays disputed."""
    payment = _payment_of(repo, dispute.get("payment_intent"))
    status = str(dispute.get("status") or "")
    if payment is None or payment.dispute_status == status:
        return Outcome()
    payment.dispute_status = status[:32]
    if status not in DISPUTE_OUTCOMES or payment.status != "disputed":
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


HANDLERS: dict[str, Callable[[BillingRepository, Mapping[str, Any], datetime], Outcome]] = {
    "payment_intent.succeeded": intent_succeeded,
    "payment_intent.payment_failed": intent_failed,
    "charge.refunded": charge_refunded,
    "charge.dispute.created": dispute_created,
    "charge.dispute.closed": dispute_closed,
}
