"""Buying a plan by card: a new license's first period, or a renewal of a license bought.

The card is typed (the sandbox), or a payment method the portal's Stripe.js made (Stripe,
which takes no card numbers: `card_not_accepted`). A charge the customer's bank wants
authenticated (3-D Secure) answers `{"status": "requires_action", "purchase_id",
"client_secret"}`; the browser authenticates, then `confirm_purchase` settles it and answers
as the purchase would have.

`purchase` is a flow of three transactions around the provider call (see `settlement`):
check and price the order, write the charge row, charge, settle. The same request sent
again (its request key: the client's `Idempotency-Key`, or the key of the RPC request that
a redelivery repeats) gets the first answer, never a second charge; the same key with
another request is `idempotency_key_reused`. Nothing is charged unless the plan is on sale,
licensing sells its product, and a renewed license is the company's, not suspended and not
perpetual (a perpetual license needs no renewal). The order keeps who bought: the audit
trail's `purchase` names them when the charge settles (`settlement`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from common import identifiers
from common.audit import Actor
from common.idempotency import IdempotencyKeyReused
from common.timeutil import as_utc, iso
from common.unit_of_work import Outcome, UnitOfWork
from services.billing import domain, views
from services.billing.exceptions import (
    CardNotAccepted,
    LicenseSuspended,
    PaymentUnconfirmed,
    ProductArchived,
    PurchaseNotFound,
    declined,
    invalid_field,
)
from services.billing.models import Charge
from services.billing.providers import REQUIRES_ACTION, PaymentProvider, ProviderUnavailable
from services.billing.repository import BillingRepository
from services.billing.use_cases import cards
from services.billing.use_cases.settlement import PendingCharge, mark_unknown, settle

# a redelivered purchase waits this long for its twin's charge (a provider answers within
# seconds; callers wait RPC_TIMEOUT, 5 s by default, for the answer)
IN_FLIGHT_WAIT_SECONDS = 3.0
IN_FLIGHT_POLL_SECONDS = 0.1
IN_FLIGHT = "in_flight"


@dataclass(frozen=True)
class AwaitingAction:
    """A purchase whose charge waits for the customer's authentication."""

    charge_id: int
    purchase_id: str
    intent_id: str
    # the charge's key: what `payment_unconfirmed` names
    reference: str = ""


def action_required(purchase_id: str, client_secret: str | None) -> dict[str, Any]:
    """The answer while the customer must authenticate: the gateway's 202."""
    return {"status": "requires_action", "purchase_id": purchase_id, "client_secret": client_secret}


class Licensing(Protocol):
    """licensing over RPC, or a fake.

    `get_license` raises `license_not_found` for an unknown license or another company's;
    `get_product` → `{code, name, active}` or `product_not_found`.
    """

    def get_license(
        self, license_id: str, customer_id: str | None = None, reveal_password: bool = True
    ) -> dict[str, Any]: ...

    def get_product(self, code: str) -> dict[str, Any]: ...


def product_for_sale(licensing: Licensing, code: str) -> dict[str, Any]:
    """licensing's `{code, name, active}` of a product it sells: `product_not_found` (asked
    of licensing) or `product_archived`."""
    product = licensing.get_product(code)
    if not product.get("active", True):
        raise ProductArchived(details={"product_code": code})
    return product


def purchase(
    uow: UnitOfWork[BillingRepository],
    provider: PaymentProvider,
    now: datetime,
    customer_id: str,
    data: dict[str, Any],
    licensing: Licensing,
    actor: Actor,
) -> dict[str, Any]:
    """Charge the card for a plan and seats: `{"payment", "recurring_payment"}`, or
    `action_required(...)` while the customer must authenticate.

    Declined: `card_declined` / `insufficient_funds`, and nothing but the charge row exists.
    `payment_succeeded` is published once the receipt is committed. `request_key`: the
    request's key (payload `request_key`, else the RPC request's own), per company.
    """
    request_key = data.get("request_key")
    fingerprint = domain.purchase_fingerprint(
        data["plan"],
        data["seats"],
        data.get("license_id"),
        data.get("card"),
        data.get("payment_method"),
    )
    if request_key:
        earlier = replayed(uow, customer_id, request_key, fingerprint)
        if earlier is not None:
            return answer_of(uow, provider, now, earlier)
    order = prepare(uow, provider, now, customer_id, data, licensing, actor)
    pending = uow.run(open_charge, order, request_key, fingerprint, now)
    if pending is None:  # the same request, sent twice at once: the other one charges
        earlier = replayed(uow, customer_id, request_key, fingerprint)
        return answer_of(uow, provider, now, earlier)
    try:
        result = provider.charge(
            pending.amount,
            pending.currency,
            pending.token,
            pending.key,
            customer=pending.customer,
            description=pending.description,
        )
    except ProviderUnavailable as exc:
        uow.run(mark_unknown, pending.charge_id)
        raise PaymentUnconfirmed(details={"reference": pending.key}) from exc
    answer = uow.run(settle, pending.charge_id, result, now)
    if result.status == REQUIRES_ACTION:
        return action_required(pending.purchase_id, result.client_secret)
    if not result.succeeded:
        raise declined(result.decline_code)
    if answer is None or "recurring_payment" not in answer:  # a webhook settled it first
        return uow.read(settled_answer, pending.charge_id)
    return answer


def confirm_purchase(
    uow: UnitOfWork[BillingRepository],
    provider: PaymentProvider,
    now: datetime,
    customer_id: str,
    purchase_id: str,
) -> dict[str, Any]:
    """The purchase `purchase_id` once its customer authenticated: the purchase's answer
    (settled once, however often confirmed), `action_required(...)` while the bank still
    waits, `authentication_failed` when it refused. `purchase_not_found` for another
    company's."""
    earlier = uow.read(purchase_state, customer_id, purchase_id)
    return answer_of(uow, provider, now, earlier)


def answer_of(
    uow: UnitOfWork[BillingRepository],
    provider: PaymentProvider,
    now: datetime,
    earlier: dict[str, Any] | AwaitingAction,
) -> dict[str, Any]:
    """A purchase's answer; one awaiting authentication asks the provider where it stands."""
    if not isinstance(earlier, AwaitingAction):
        return earlier
    try:
        result = provider.confirm(earlier.intent_id)
    except ProviderUnavailable as exc:
        raise PaymentUnconfirmed(details={"reference": earlier.reference}) from exc
    uow.run(settle, earlier.charge_id, result, now)
    if result.status == REQUIRES_ACTION:
        return action_required(earlier.purchase_id, result.client_secret)
    return uow.read(settled_answer, earlier.charge_id)


def purchase_state(
    repo: BillingRepository, customer_id: str, purchase_id: str
) -> dict[str, Any] | AwaitingAction:
    charge = repo.charge_by_purchase_id(purchase_id, customer_id)
    if charge is None or charge.invoice_id is not None:
        raise PurchaseNotFound(details={"purchase_id": purchase_id})
    return charge_answer(repo, charge, in_flight=False)


def settled_answer(repo: BillingRepository, charge_id: int) -> dict[str, Any]:
    answer = charge_answer(repo, repo.charge(charge_id), in_flight=False)
    if isinstance(answer, AwaitingAction):  # settled as still waiting by a twin just now
        raise PaymentUnconfirmed(details={"reference": answer.reference})
    return answer


def prepare(
    uow: UnitOfWork[BillingRepository],
    provider: PaymentProvider,
    now: datetime,
    customer_id: str,
    data: dict[str, Any],
    licensing: Licensing,
    actor: Actor,
) -> domain.Order:
    """Check the plan and its product (on sale), the license (for a renewal) and the card;
    tokenize the card (or attach the payment method to the company's provider customer)."""
    card = data.get("card")
    if card is not None:
        if not provider.accepts_cards:
            raise CardNotAccepted()
        if domain.card_expired(card["exp_month"], card["exp_year"], now):
            raise invalid_field(["card", "exp_year"], "The card has expired.")
    plan = uow.read(plan_on_sale, data["plan"])
    product = product_for_sale(licensing, plan["product_code"])
    expiry = None
    license_id = data.get("license_id")
    if license_id:
        # another company's license: license_not_found. Billing needs no activation
        # password (nor should a purchase read as the buyer viewing it in the trail)
        license = licensing.get_license(license_id, customer_id=customer_id, reveal_password=False)
        if license.get("status") == "suspended":
            raise LicenseSuspended(details={"license_id": license_id})
        if "expires_at" in license and not license["expires_at"]:
            raise invalid_field(["license_id"], "A perpetual license needs no renewal.")
        licensed = license.get("product") or {}
        if identifiers.code(str(licensed.get("code", ""))) != plan["product_code"]:
            raise invalid_field(["plan"], "This plan is for another product than the license.")
        if license.get("seats") is not None and license["seats"] != data["seats"]:
            raise invalid_field(
                ["seats"], f"A renewal keeps the license's {license['seats']} seats."
            )
        if license.get("expires_at"):
            expiry = as_utc(datetime.fromisoformat(str(license["expires_at"])))
        # a renewal keeps the license's model: a plan of the other model would sell what
        # the license does not become (no `model`: an older licensing, all node-locked)
        model = license.get("model") or domain.NODE_LOCKED
        if model != plan["model"]:
            raise invalid_field(["plan"], f"This plan is not for {_model_label(model)} licenses.")
    period = domain.purchase_period(now, plan["interval"], expiry)
    if card is not None:
        method = cards.tokenize(provider, card, now)
    else:
        method = cards.attach(uow, provider, data["payment_method"], customer_id)
    return domain.Order(
        kind="renewal" if license_id else "new",
        customer_id=customer_id,
        plan=plan["code"],
        product_code=plan["product_code"],
        product_name=product.get("name") or plan["product"]["name"],
        interval=plan["interval"],
        seats=data["seats"],
        unit_amount=plan["amount"],
        amount=domain.line_total(plan["amount"], data["seats"]),
        currency=plan["currency"],
        period_start=iso(period.start),
        period_end=iso(period.end),
        license_id=license_id,
        card={
            "provider": provider.name,
            "token": method.token,
            "brand": method.brand,
            "last4": method.last4,
            "exp_month": method.exp_month,
            "exp_year": method.exp_year,
            "customer": method.customer,
        },
        actor=actor.to_dict(),
        features=list(plan["features"]),
        model=plan["model"],
        lease_seconds=plan["lease_seconds"],
        max_borrow_days=plan["max_borrow_days"],
    )


def _model_label(model: str) -> str:
    """`node_locked` → `node-locked`, as a sentence says it."""
    return model.replace("_", "-")


def plan_on_sale(repo: BillingRepository, code: str) -> dict[str, Any]:
    plan = repo.plan_by_code(code)
    if plan is None or not plan.active:
        raise invalid_field(["plan"], "No plan with this code is on sale.")
    return views.plan_view(plan)


def open_charge(
    repo: BillingRepository,
    order: domain.Order,
    request_key: str | None,
    fingerprint: str,
    now: datetime,
) -> Outcome:
    """The charge row of an order; None if the same request (its key) already has one."""
    charge = Charge(
        kind=order.kind,
        customer_id=order.customer_id,
        request_key=request_key,
        fingerprint=fingerprint,
        amount=order.amount,
        currency=order.currency,
        order_json=order.to_json(),
        status="pending",
        purchase_id=domain.new_purchase_id(),
        created_at=now,
    )
    if not repo.add_unique(charge):
        return Outcome(None)
    charge.idempotency_key = domain.charge_key(charge.id)
    pending = PendingCharge(
        charge.id,
        charge.idempotency_key,
        order.amount,
        order.currency,
        order.card["token"],
        customer=order.card.get("customer"),
        purchase_id=charge.purchase_id,
        description=domain.charge_description(
            domain.describe_purchase(
                order.product_name or order.product_code,
                order.plan,
                order.seats,
                order.interval,
                order.kind,
            ),
            order.customer_id,
        ),
    )
    return Outcome(pending)


def replayed(
    uow: UnitOfWork[BillingRepository],
    customer_id: str,
    request_key: str,
    fingerprint: str,
    wait: float = IN_FLIGHT_WAIT_SECONDS,
    pause: Callable[[float], Any] = time.sleep,
) -> dict[str, Any] | AwaitingAction | None:
    """`replay`, waiting up to `wait` seconds while the same request's charge is in flight
    (a redelivery that arrived while the first delivery was still charging): the twin then
    answers the same receipt or decline, not `payment_unconfirmed`."""
    deadline = time.monotonic() + wait
    while True:
        answer = uow.read(replay, customer_id, request_key, fingerprint)
        if answer is not IN_FLIGHT:
            return answer
        if time.monotonic() >= deadline:
            return uow.read(replay, customer_id, request_key, fingerprint, False)
        pause(IN_FLIGHT_POLL_SECONDS)


def replay(
    repo: BillingRepository,
    customer_id: str,
    request_key: str,
    fingerprint: str,
    in_flight: bool = True,
) -> dict[str, Any] | AwaitingAction | str | None:
    """The answer already given to a purchase with this request key, if any.

    A client that lost our answer (a timeout) and asks again, or a redelivered request, gets
    the same receipt, the same decline, or `payment_unconfirmed`, never a second charge;
    `IN_FLIGHT` (with `in_flight`) while the first one is still charging. The key with
    another request (plan, seats, license, card) is `idempotency_key_reused`.
    """
    charge = repo.charge_by_request_key(customer_id, request_key)
    if charge is None:
        return None
    if charge.fingerprint is not None and charge.fingerprint != fingerprint:
        raise IdempotencyKeyReused(details={"operation": "billing.purchase"})
    return charge_answer(repo, charge, in_flight)


def charge_answer(
    repo: BillingRepository, charge: Charge, in_flight: bool = True
) -> dict[str, Any] | AwaitingAction | str:
    """What a purchase's charge answers now: the receipt, its decline, `AwaitingAction`,
    `IN_FLIGHT` (with `in_flight`, while charging) or `payment_unconfirmed`."""
    if charge.status == "requires_action" and charge.provider_charge_id:
        return AwaitingAction(
            charge.id, charge.purchase_id or "", charge.provider_charge_id, _reference(charge)
        )
    if charge.status == "abandoned" and charge.decline_code:  # given up waiting for the bank
        raise declined(charge.decline_code)
    if charge.status == "succeeded" and charge.payment_id is not None:
        payment = repo.payment(charge.payment_id)
        recurring = repo.recurring(payment.recurring_payment_id)
        method = repo.payment_method(recurring.payment_method_id) if recurring else None
        return {
            "payment": views.payment_view(payment),
            "recurring_payment": views.recurring_view(recurring, method) if recurring else None,
        }
    if charge.status == "declined":
        raise declined(charge.decline_code)
    if in_flight and charge.status == "pending":
        return IN_FLIGHT
    raise PaymentUnconfirmed(details={"reference": _reference(charge)})


def _reference(charge: Charge) -> str:
    """What a customer quotes to support about a charge: its provider key (a row written
    before the key was, by a crash, has none yet: its ID then)."""
    return charge.idempotency_key or f"billing-charge-{charge.id}"
