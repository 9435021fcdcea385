"""Licensing reacting to billing: a paid purchase issues a license, a paid renewal extends one.

nameko acks an event even when its handler raised (docs/events.md), so the effect and a
`payment_events` row keyed by `event_id` commit in one transaction before the message is
acked; a redelivered event finds the row and changes nothing. A payment that can never be
applied raises `PaymentNotApplicable` (the handler parks it with `park`); anything else is
transient and goes back to the queue.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from common.errors import PortalError
from common.parking import event_id_of
from common.timeutil import as_utc
from common.unit_of_work import Outcome
from services.licensing import domain, views
from services.licensing.crypto import PasswordBox
from services.licensing.exceptions import PaymentNotApplicable
from services.licensing.repository import LicensingRepository
from services.licensing.use_cases.licenses import extend, find_license, issue_license


def apply_payment(
    repo: LicensingRepository, box: PasswordBox, event: dict[str, Any], now: datetime
) -> Outcome:
    """A loaded `payment_succeeded` → the license it issued or extended (its ID), once.

    The `license_issued` / `license_extended` it causes carry the payment's
    `receipt_number`, so billing learns the license of each receipt from the events.
    """
    receipt = event["payment"]["receipt_number"]
    purchase = event["purchase"]
    if not repo.record_payment(
        event["event_id"], receipt, event["customer_id"], purchase["kind"], now
    ):
        return Outcome()  # seen before (this event, or this receipt): nothing to do
    outcome, license_id = _issue_or_extend(repo, box, event["customer_id"], purchase, now)
    repo.set_payment_license(event["event_id"], license_id)
    events = [(kind, {**body, "receipt_number": receipt}) for kind, body in outcome.events]
    return Outcome(license_id, events)


def _issue_or_extend(
    repo: LicensingRepository,
    box: PasswordBox,
    customer_id: str,
    purchase: dict[str, Any],
    now: datetime,
) -> tuple[Outcome, str]:
    """Issue (`new`) or extend (`renewal`); a renewal never shortens a license, and a
    perpetual license stays perpetual."""
    period_end = as_utc(purchase["period_end"])
    try:
        if purchase["kind"] == "new":
            data = {
                "customer_id": customer_id,
                "product": purchase["product_code"],
                "seats": purchase["seats"],
                "expires_at": period_end,
            }
            outcome = issue_license(repo, box, data, now)
            return outcome, outcome.result["license_id"]
        if not purchase.get("license_id"):
            raise PaymentNotApplicable("a renewal names no license_id")
        license = find_license(repo, purchase["license_id"], customer_id, lock=True)
        if not domain.renewal_extends(license.expires_at, period_end):
            return Outcome(), license.license_id
        return extend(repo, license.license_id, period_end, now), license.license_id
    except PortalError as exc:  # unknown product, another company's license: never succeeds
        raise PaymentNotApplicable(f"{exc.code}: {exc.message}") from exc


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
    return views.license_view(license, now, repo.seats_in_use_of(license.id))
