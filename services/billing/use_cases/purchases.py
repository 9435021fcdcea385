"""Buying a plan by card: a new license's first period, or a renewal of a license bought.

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
from datetime import datetime
from typing import Any, Protocol

from common import identifiers
from common.audit import Actor
from common.idempotency import IdempotencyKeyReused
from common.timeutil import as_utc, iso
from common.unit_of_work import Outcome, UnitOfWork
from services.billing import domain, views
from services.billing.exceptions import (
    LicenseSuspended,
    PaymentUnconfirmed,
    ProductArchived,
    declined,
    invalid_field,
)
from services.billing.models import Charge
from services.billing.providers import PaymentProvider, ProviderUnavailable
from services.billing.repository import BillingRepository
from services.billing.use_cases import cards
from services.billing.use_cases.settlement import PendingCharge, mark_unknown, settle

# a redelivered purchase waits this long for its twin's charge (a provider answers within
# seconds; callers wait RPC_TIMEOUT, 5 s by default, for the answer)
IN_FLIGHT_WAIT_SECONDS = 3.0
IN_FLIGHT_POLL_SECONDS = 0.1
IN_FLIGHT = "in_flight"


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
    """Charge the card for a plan and seats: `{"payment", "recurring_payment"}`.

    Declined: `card_declined` / `insufficient_funds`, and nothing but the charge row exists.
    `payment_succeeded` is published once the receipt is committed. `request_key`: the
    request's key (payload `request_key`, else the RPC request's own), per company.
    """
    request_key = data.get("request_key")
    fingerprint = domain.purchase_fingerprint(
        data["plan"], data["seats"], data.get("license_id"), data["card"]
    )
    if request_key:
        earlier = replayed(uow, customer_id, request_key, fingerprint)
        if earlier is not None:
            return earlier
    order = prepare(uow, provider, now, customer_id, data, licensing, actor)
    pending = uow.run(open_charge, order, request_key, fingerprint, now)
    if pending is None:  # the same request, sent twice at once: the other one charges
        return replayed(uow, customer_id, request_key, fingerprint)
    try:
        result = provider.charge(pending.amount, pending.currency, pending.token, pending.key)
    except ProviderUnavailable as exc:
        uow.run(mark_unknown, pending.charge_id)
        raise PaymentUnconfirmed(details={"reference": pending.key}) from exc
    answer = uow.run(settle, pending.charge_id, result, now)
    if not result.succeeded:
        raise declined(result.decline_code)
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
    tokenize the card."""
    card = data["card"]
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
    method = cards.tokenize(provider, card, now)
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
        created_at=now,
    )
    if not repo.add_unique(charge):
        return Outcome(None)
    charge.idempotency_key = domain.charge_key(charge.id)
    pending = PendingCharge(
        charge.id, charge.idempotency_key, order.amount, order.currency, order.card["token"]
    )
    return Outcome(pending)


def replayed(
    uow: UnitOfWork[BillingRepository],
    customer_id: str,
    request_key: str,
    fingerprint: str,
    wait: float = IN_FLIGHT_WAIT_SECONDS,
    pause: Callable[[float], Any] = time.sleep,
) -> dict[str, Any] | None:
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
) -> dict[str, Any] | str | None:
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
    raise PaymentUnconfirmed(details={"reference": domain.charge_key(charge.id)})
