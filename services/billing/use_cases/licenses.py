"""Which license a payment bought: learnt from licensing's events, never asked for.

Licensing issues the license of a purchase (or extends it for a renewal) when it receives
`payment_succeeded`, and its `license_issued` / `license_extended` events then carry the
`receipt_number` of the payment. Billing records the license on that payment and on its
recurring payment, which a renewal needs; until then reads show `license_id: null` and the
renewal pass waits (`waiting_for_license`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from common.parking import parked_row
from common.unit_of_work import Outcome
from services.billing.repository import BillingRepository


def learn_license(
    repo: BillingRepository, event_type: str, event: dict[str, Any], now: datetime
) -> Outcome:
    """Attach `event["license_id"]` to the payment `event["receipt_number"]`, once per event.

    A redelivered event (same `event_id`) changes nothing. A receipt this company has no
    payment for (another billing's, a test's) is recorded and otherwise ignored. A payment
    or recurring payment that already names a license keeps it.
    """
    recorded = repo.record_license_event(
        {
            "event_id": event["event_id"],
            "event_type": event_type,
            "customer_id": event["customer_id"],
            "receipt_number": event["receipt_number"],
            "license_id": event["license_id"],
            "received_at": now,
        }
    )
    if not recorded:
        return Outcome()
    payment = repo.payment_by_receipt(event["receipt_number"], event["customer_id"])
    if payment is None:
        return Outcome()
    if payment.license_id is None:
        payment.license_id = event["license_id"]
    if payment.recurring_payment_id is not None:
        recurring = repo.recurring(payment.recurring_payment_id, lock=True)
        if recurring is not None and recurring.license_id is None:
            recurring.license_id = event["license_id"]
    return Outcome()


def park(
    repo: BillingRepository,
    source: str,
    event_type: str,
    payload: Any,
    reason: str,
    now: datetime,
) -> Outcome:
    """Keep an event that can never be applied, for staff to look at."""
    repo.park(parked_row(source, event_type, payload, reason, now))
    return Outcome()
