"""`on_payment_disputed` and `on_payment_dispute_closed`: a payment disputed at the
customer's bank suspends the license it paid for, a dispute won resumes it; once per receipt,
whatever the redeliveries and their order.

The handlers run in a `worker_factory` worker over a migrated SQLite database (conftest.py);
what they commit is read back through the service's RPC methods, its events and the trail.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import select

from common import audit
from services.licensing import domain
from services.licensing.models import AuditEvent, PaymentDispute, PaymentEvent
from tests.unit.licensing.support import COMPANY, OTHER, issue


def disputed(license_id: str | None, customer: str = COMPANY, receipt: str | None = None) -> dict:
    """A `payment_disputed` as billing publishes it (fields licensing ignores included)."""
    return {
        "event_id": uuid.uuid4().hex,
        "occurred_at": "2026-11-28T09:00:00+00:00",
        "customer_id": customer,
        "receipt_number": receipt or f"R-2026-{uuid.uuid4().int % 10**6:06d}",
        "license_id": license_id,
        "amount": 4900,
        "currency": "EUR",
        "reason": "fraudulent",
        "product_name": "CAD Pro",
    }


def closed(opened: dict[str, Any], status: str) -> dict[str, Any]:
    """The `payment_dispute_closed` of the same dispute."""
    return {**opened, "event_id": uuid.uuid4().hex, "status": status}


def license_of(service, license_id: str) -> dict[str, Any]:
    return service.get_license(license_id, COMPANY, reveal_password=False)


def dispute_rows(db) -> list[tuple]:
    with db.transaction() as session:
        query = select(
            PaymentDispute.receipt_number,
            PaymentDispute.license_id,
            PaymentDispute.status,
        ).order_by(PaymentDispute.id)
        return [tuple(row) for row in session.execute(query)]


def trail(db) -> list[dict[str, Any]]:
    with db.transaction() as session:
        rows = session.execute(
            select(AuditEvent.__table__)
            .where(AuditEvent.customer_id == COMPANY)
            .order_by(AuditEvent.id)
        ).all()
        return [audit.view(row._mapping) for row in rows]


@pytest.fixture
def license_id(service) -> str:
    license_id, _ = issue(service, expires_at="2027-12-31")
    return license_id


def test_a_disputed_payment_suspends_its_license_as_staff_would(
    service, events, db, license_id
) -> None:
    event = disputed(license_id.lower())
    service.on_payment_disputed(event)
    license = license_of(service, license_id)
    receipt = event["receipt_number"]
    assert (license["status"], license["suspension_cause"]) == ("suspended", "payment_disputed")
    assert license["suspension_reason"] == domain.dispute_reason(receipt)
    assert receipt in license["suspension_reason"]
    [listed] = service.list_licenses(COMPANY)
    assert (listed["status"], listed["suspension_cause"]) == ("suspended", "payment_disputed")
    [suspended] = events.of("license_suspended")
    assert (suspended["license_id"], suspended["customer_id"]) == (license_id, COMPANY)
    assert suspended["reason"] == license["suspension_reason"]
    fact = trail(db)[-1]
    assert (fact["action"], fact["actor"]) == ("license_suspended", {"type": "system"})
    assert fact["details"] == {
        "cause": "payment_disputed",
        "reason": license["suspension_reason"],
        "receipt_number": receipt,
    }
    assert dispute_rows(db) == [(receipt, license_id, "open")]


def test_a_redelivered_dispute_changes_nothing_twice(service, events, db, license_id) -> None:
    event = disputed(license_id)
    service.on_payment_disputed(event)
    service.on_payment_disputed(event)
    service.on_payment_disputed({**event, "event_id": uuid.uuid4().hex})  # the same receipt
    assert len(events.of("license_suspended")) == 1
    assert [fact["action"] for fact in trail(db)].count("license_suspended") == 1
    won = closed(event, "won")
    service.on_payment_dispute_closed(won)
    service.on_payment_dispute_closed(won)
    assert len(events.of("license_resumed")) == 1
    # an opening redelivered after its closing suspends nothing again
    service.on_payment_disputed(event)
    assert license_of(service, license_id)["status"] == "active"
    assert len(events.of("license_suspended")) == 1


def test_a_dispute_won_resumes_the_license(service, events, db, license_id) -> None:
    event = disputed(license_id)
    service.on_payment_disputed(event)
    service.on_payment_dispute_closed(closed(event, "won"))
    license = license_of(service, license_id)
    assert (license["status"], license["suspension_reason"], license["suspension_cause"]) == (
        "active",
        None,
        None,
    )
    [resumed] = events.of("license_resumed")
    assert resumed["license_id"] == license_id
    fact = trail(db)[-1]
    assert (fact["action"], fact["actor"]) == ("license_resumed", {"type": "system"})
    assert fact["details"] == {"receipt_number": event["receipt_number"], "dispute": "won"}
    assert dispute_rows(db) == [(event["receipt_number"], license_id, "won")]


def test_a_dispute_lost_leaves_the_license_suspended(service, events, db, license_id) -> None:
    event = disputed(license_id)
    service.on_payment_disputed(event)
    service.on_payment_dispute_closed(closed(event, "lost"))
    assert license_of(service, license_id)["suspension_cause"] == "payment_disputed"
    assert events.of("license_resumed") == []
    assert dispute_rows(db) == [(event["receipt_number"], license_id, "lost")]
    # staff decide: their resumption works as for any suspension
    assert service.resume_license(license_id)["status"] == "active"


def test_another_companys_license_is_left_alone(service, events, db) -> None:
    theirs, _ = issue(service, customer=OTHER)
    event = disputed(theirs)  # names a license that is not COMPANY's
    service.on_payment_disputed(event)
    assert service.get_license(theirs, OTHER)["status"] == "active"
    assert events.of("license_suspended") == []
    assert dispute_rows(db) == [(event["receipt_number"], None, "open")]
    service.suspend_license(theirs, "Staff's own reasons.")
    service.on_payment_dispute_closed(closed(event, "won"))
    assert service.get_license(theirs, OTHER)["status"] == "suspended"


@pytest.mark.parametrize("license_id", [None, "L-AAAA-AAAA"])
def test_a_dispute_naming_no_license_of_the_company_is_recorded_only(
    service, events, db, license_id
) -> None:
    event = disputed(license_id)
    service.on_payment_disputed(event)
    service.on_payment_dispute_closed(closed(event, "won"))
    assert events.of("license_suspended") == events.of("license_resumed") == []
    assert dispute_rows(db) == [(event["receipt_number"], None, "won")]


def test_staffs_suspension_is_neither_replaced_nor_lifted_by_a_dispute(
    service, events, license_id
) -> None:
    service.suspend_license(license_id, "Unpaid invoice 2026-114.")
    event = disputed(license_id)
    service.on_payment_disputed(event)
    license = license_of(service, license_id)
    assert (license["suspension_reason"], license["suspension_cause"]) == (
        "Unpaid invoice 2026-114.",
        "staff",
    )
    service.on_payment_dispute_closed(closed(event, "won"))
    assert license_of(service, license_id)["status"] == "suspended"
    assert len(events.of("license_suspended")) == 1 and events.of("license_resumed") == []


def test_staff_suspending_a_disputed_license_take_it_over(service, events, license_id) -> None:
    event = disputed(license_id)
    service.on_payment_disputed(event)
    taken = service.suspend_license(license_id)  # no reason: the dispute's stays
    assert taken["suspension_cause"] == "staff"
    assert taken["suspension_reason"] == domain.dispute_reason(event["receipt_number"])
    service.on_payment_dispute_closed(closed(event, "won"))
    assert license_of(service, license_id)["status"] == "suspended"
    assert len(events.of("license_suspended")) == 1


def test_the_license_resumes_once_every_dispute_of_it_is_won(service, events, license_id) -> None:
    first, second = disputed(license_id), disputed(license_id)
    service.on_payment_disputed(first)
    service.on_payment_disputed(second)
    service.on_payment_dispute_closed(closed(first, "won"))
    assert license_of(service, license_id)["status"] == "suspended"
    service.on_payment_dispute_closed(closed(second, "won"))
    assert license_of(service, license_id)["status"] == "active"
    assert len(events.of("license_suspended")) == len(events.of("license_resumed")) == 1


def test_an_expired_license_is_not_suspended(service, events) -> None:
    body = {"customer_id": COMPANY, "product": "cadpro", "seats": 1, "expires_at": "2026-11-01"}
    license_id = service.issue_license({**body, "force": True})["license_id"]
    service.on_payment_disputed(disputed(license_id))
    assert license_of(service, license_id)["status"] == "expired"
    assert events.of("license_suspended") == []


def test_staff_suspensions_say_so_and_resuming_forgets_it(service, license_id) -> None:
    assert license_of(service, license_id)["suspension_cause"] is None
    assert service.suspend_license(license_id, "Call us.")["suspension_cause"] == "staff"
    assert service.resume_license(license_id)["suspension_cause"] is None


@pytest.mark.parametrize(
    "payload",
    [
        {"event_id": "e-1", "customer_id": COMPANY},
        {"event_id": "e-2", "customer_id": COMPANY, "receipt_number": "R-1", "status": "maybe"},
        "not an object",
    ],
)
def test_a_malformed_dispute_is_parked_not_raised(service, events, db, payload) -> None:
    handler = (
        service.on_payment_dispute_closed
        if isinstance(payload, dict) and "status" in payload
        else service.on_payment_disputed
    )
    handler(payload)
    with db.transaction() as session:
        [row] = session.scalars(select(PaymentEvent)).all()
        assert row.status == domain.PAYMENT_PARKED
    assert events == []


# --- the rules -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "suspends"), [("active", True), ("suspended", False), ("expired", False)]
)
def test_only_an_active_license_is_suspended_for_a_dispute(status: str, suspends: bool) -> None:
    assert domain.dispute_suspends(status) is suspends


@pytest.mark.parametrize(
    ("outcome", "cause", "still_open", "resumes"),
    [
        ("won", "payment_disputed", 0, True),
        ("lost", "payment_disputed", 0, False),
        ("won", "staff", 0, False),
        ("won", None, 0, False),
        ("won", "payment_disputed", 1, False),
    ],
)
def test_a_won_dispute_resumes_only_what_disputes_suspended(
    outcome: str, cause: str | None, still_open: int, resumes: bool
) -> None:
    assert domain.dispute_resumes(outcome, cause, still_open) is resumes


def test_the_reason_names_the_payment_and_what_ends_it() -> None:
    reason = domain.dispute_reason("R-2026-000123")
    assert "R-2026-000123" in reason and "until the dispute is resolved" in reason
    assert len(reason) <= 500  # the column, as staff's reasons
