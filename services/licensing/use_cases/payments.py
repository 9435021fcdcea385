"""Licensing reacting to billing: a paid purchase issues a license, a paid renewal extends one,
and a payment disputed at the customer's bank suspends the license it paid for until the
dispute is won.

nameko acks an event even when its handler raised (docs/events.md), so the effect and a
`payment_events` row keyed by `event_id` commit in one transaction before the message is
acked; a redelivered event finds the row and changes nothing. A well-formed payment that can
never be applied (its product unknown or archived; its license unknown, suspended, of
another company, or perpetual for a renewal) is recorded `not_applied` and answered with
`payment_not_applied` in the same transaction, once per event: billing refunds it, so no
charge leads nowhere. A malformed payload is parked (`park`); anything else is transient and
goes back to the queue. A dispute is kept in `payment_disputes`, one row per receipt, in the
transaction of its suspension or resumption: each is applied once, whatever the redeliveries
and their order.

The license it issues, extends, suspends or resumes is the system's doing in the company's
audit trail (with the payment's `receipt_number`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from common.audit import SYSTEM
from common.parking import event_id_of
from common.timeutil import as_utc
from common.unit_of_work import Outcome
from services.licensing import domain, views
from services.licensing.crypto import PasswordBox
from services.licensing.exceptions import (
    NOT_APPLICABLE,
    LicenseIsPerpetual,
    LicenseNotFound,
    LicenseSuspended,
    PaymentNotApplicable,
)
from services.licensing.models import License, Product
from services.licensing.repository import LicensingRepository
from services.licensing.use_cases.licenses import (
    change_features,
    find_license,
    hold,
    move_expiry,
    new_license,
    release,
    seats_in_use,
)
from services.licensing.use_cases.products import product_on_sale

PERPETUAL_RENEWAL = "This license is perpetual: a renewal extends nothing."


def apply_payment(
    repo: LicensingRepository, box: PasswordBox, event: dict[str, Any], now: datetime
) -> Outcome:
    """A loaded `payment_succeeded` → `{"status": "applied", "license_id"}`, or
    `{"status": "not_applied", "reason", "message"}` with `payment_not_applied`; once (a
    redelivered event, or another event of the same receipt: `{"status": "seen"}`).

    The `license_issued` / `license_extended` it causes carry the payment's
    `receipt_number`, so billing learns the license of each receipt from the events.
    """
    receipt = event["payment"]["receipt_number"]
    customer_id = event["customer_id"]
    purchase = event["purchase"]
    if not repo.record_payment(event["event_id"], receipt, customer_id, purchase["kind"], now):
        return Outcome({"status": "seen", "receipt_number": receipt})
    try:
        outcome, license_id = _issue_or_extend(repo, box, customer_id, purchase, now)
    except PaymentNotApplicable as refusal:
        repo.set_payment_not_applied(event["event_id"], str(refusal))
        notice = views.payment_not_applied(receipt, customer_id, refusal.code, refusal.message)
        result = {"status": domain.PAYMENT_NOT_APPLIED, **notice}
        return Outcome(result, [("payment_not_applied", notice)])
    repo.set_payment_license(event["event_id"], license_id)
    events = [(kind, {**body, "receipt_number": receipt}) for kind, body in outcome.events]
    for fact in outcome.audit:
        fact.details["receipt_number"] = receipt
    result = {"status": domain.PAYMENT_APPLIED, "receipt_number": receipt, "license_id": license_id}
    return Outcome(result, events, audit=outcome.audit)


def _issue_or_extend(
    repo: LicensingRepository,
    box: PasswordBox,
    customer_id: str,
    purchase: dict[str, Any],
    now: datetime,
) -> tuple[Outcome, str]:
    """Issue (`new`: a product on sale) or extend (`renewal`: a license of this company that
    is not suspended, whatever became of its product); a renewal never shortens a license.
    A perpetual license stays perpetual, and a renewal of one (it extends nothing) is not
    applicable (`license_is_perpetual`): billing refunds it. Staff's guardrails do not
    apply otherwise: paid is paid.

    The plan's features (`purchase.features`) go to a new license, and are added to a
    renewed one (`license_features_changed` when that adds any)."""
    period_end = as_utc(purchase["period_end"])
    try:
        if purchase["kind"] == "new":
            product = product_on_sale(repo, purchase["product_code"])
            data = {
                "customer_id": customer_id,
                "seats": purchase["seats"],
                "expires_at": period_end,
                "features": _granted(product, purchase),
                # the plan's model and lease terms (schemas._Purchase: node-locked when
                # billing sends none); a renewal leaves the license's model alone
                "model": purchase.get("model"),
                "lease_seconds": purchase.get("lease_seconds"),
                "max_borrow_days": purchase.get("max_borrow_days"),
            }
            outcome = new_license(repo, box, product, data, SYSTEM, now)
            return outcome, outcome.result["license_id"]
        if not purchase.get("license_id"):
            raise LicenseNotFound("The renewal names no license.")
        license = find_license(repo, purchase["license_id"], customer_id, lock=True)
        if license.suspended_at is not None:
            raise LicenseSuspended(details={"license_id": license.license_id})
        if license.expires_at is None:  # a renewal would extend nothing: refunded
            raise PaymentNotApplicable(LicenseIsPerpetual.code, PERPETUAL_RENEWAL)
        granted = change_features(license, _granted(license.product, purchase), (), SYSTEM, now)
        if not domain.renewal_extends(license.expires_at, period_end):
            return granted, license.license_id
        moved = move_expiry(repo, license, period_end, SYSTEM, now)
        outcome = Outcome(
            moved.result, moved.events + granted.events, audit=moved.audit + granted.audit
        )
        return outcome, license.license_id
    except NOT_APPLICABLE as exc:
        raise PaymentNotApplicable(exc.code, exc.message) from exc


def _granted(product: Product, purchase: dict[str, Any]) -> list[str]:
    """The purchase's features that its product has. billing checked them against the
    product when the plan was made, and features are never deleted: one missing is a plan
    older than that check, and paid is paid, so the rest is granted rather than refunded."""
    known = {item.code for item in product.features}
    return [code for code in domain.feature_codes(purchase.get("features", ())) if code in known]


def dispute_payment(repo: LicensingRepository, event: dict[str, Any], now: datetime) -> Outcome:
    """A loaded `payment_disputed` → `{"status": "suspended" | "unchanged", "receipt_number",
    "license_id"}`: the company's active license it names is suspended (cause
    `payment_disputed`, `license_suspended` as for staff's suspension); one suspended or
    expired already, none named, or another company's: unchanged. Once per receipt
    (`{"status": "seen"}`), also when its closing came first."""
    receipt = event["receipt_number"]
    license = _company_license(repo, event)
    license_id = None if license is None else license.license_id
    if not repo.open_dispute(receipt, event["customer_id"], license_id, now):
        return Outcome({"status": "seen", "receipt_number": receipt, "license_id": license_id})
    result = {"status": "unchanged", "receipt_number": receipt, "license_id": license_id}
    if license is None:
        return Outcome(result)
    status = domain.license_status(license.expires_at, license.suspended_at, now)
    if not domain.dispute_suspends(status):
        return Outcome(result)
    reason = domain.dispute_reason(receipt)
    held = hold(license, reason, domain.PAYMENT_DISPUTED, SYSTEM, now, receipt_number=receipt)
    return Outcome({**result, "status": "suspended"}, held.events, audit=held.audit)


def close_dispute(repo: LicensingRepository, event: dict[str, Any], now: datetime) -> Outcome:
    """A loaded `payment_dispute_closed` → `{"status": "resumed" | "unchanged", …}`: won,
    the license it names is resumed if disputes suspended it and none of them is still open;
    lost, it stays suspended (staff may resume it). Once per receipt (`{"status": "seen"}`)."""
    receipt = event["receipt_number"]
    outcome = event["status"]
    license = _company_license(repo, event)
    license_id = None if license is None else license.license_id
    if not repo.close_dispute(receipt, event["customer_id"], license_id, outcome, now):
        return Outcome({"status": "seen", "receipt_number": receipt, "license_id": license_id})
    result = {"status": "unchanged", "receipt_number": receipt, "license_id": license_id}
    if license is None or not domain.dispute_resumes(
        outcome, license.suspension_cause, repo.open_disputes(license.license_id)
    ):
        return Outcome(result)
    released = release(license, SYSTEM, now, receipt_number=receipt, dispute=outcome)
    return Outcome({**result, "status": "resumed"}, released.events, audit=released.audit)


def _company_license(repo: LicensingRepository, event: dict[str, Any]) -> License | None:
    """The license a dispute's event names, locked, if it is the company's; else None.

    Locked before its dispute row is touched: the opening and the closing of one dispute
    (redelivered, out of order, on two instances) take their turns on the license."""
    if not event["license_id"]:
        return None
    try:
        return find_license(repo, event["license_id"], event["customer_id"], lock=True)
    except LicenseNotFound:
        return None


def park(repo: LicensingRepository, payload: Any, reason: str, now: datetime) -> Outcome:
    """Keep an event that can never be applied, for staff to look at (once per event_id)."""
    repo.park_payment(event_id_of(payload), reason, payload, now)
    return Outcome()


def license_for_payment(
    repo: LicensingRepository, receipt_number: str, customer_id: str, now: datetime
) -> dict[str, Any] | None:
    """The license a paid purchase or renewal of this company issued or extended, or None
    while the payment has not been applied (or belongs to another company)."""
    license_id = repo.license_paid_by(receipt_number, customer_id)
    license = None if license_id is None else repo.license(license_id)
    if license is None:
        return None
    return views.license_view(license, now, seats_in_use(repo, license, now))
