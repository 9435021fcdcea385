"""`on_payment_succeeded`: billing's paid purchases and renewals, applied once or parked.

The handler runs in a `worker_factory` worker over a migrated SQLite database (conftest.py);
what it commits is read back through the service's RPC methods and the `payment_events` table.
"""

from __future__ import annotations

import uuid
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from common import handlers
from common.db import Db
from common.parking import ERROR_MAX
from services.licensing.models import PaymentEvent
from services.licensing.schemas import PaymentNotAppliedEvent
from tests.unit.licensing.support import COMPANY, OTHER


def paid(
    period_end: datetime,
    kind: str = "new",
    license_id: str | None = None,
    product: str = "cadpro",
    customer: str = COMPANY,
) -> dict[str, Any]:
    """A `payment_succeeded` as billing publishes it (fields licensing ignores included)."""
    return {
        "event_id": uuid.uuid4().hex,
        "occurred_at": "2026-11-28T09:00:00+00:00",
        "customer_id": customer,
        "payment": {
            "receipt_number": f"R-2026-{uuid.uuid4().int % 10**6:06d}",
            "amount": 4900,
            "currency": "EUR",
        },
        "purchase": {
            "kind": kind,
            "plan": "cadpro-monthly",
            "product_code": product,
            "seats": 3,
            "period_start": "2026-11-28T09:00:00+00:00",
            "period_end": period_end.isoformat(),
            "license_id": license_id,
        },
    }


def receipt(event: dict[str, Any]) -> str:
    return event["payment"]["receipt_number"]


def payment_rows(db: Db) -> list[PaymentEvent]:
    with db.transaction() as session:
        return list(session.scalars(select(PaymentEvent).order_by(PaymentEvent.id)))


@pytest.fixture
def buy(service, clock):
    """Deliver a paid new purchase; → (the event, the license it issued)."""

    def buy(days: int = 30) -> tuple[dict[str, Any], dict[str, Any]]:
        event = paid(clock.now() + timedelta(days=days))
        service.on_payment_succeeded(event)
        return event, service.license_for_payment(receipt(event), COMPANY)

    return buy


def test_a_new_purchase_issues_a_license_once(service, events, clock, db, buy) -> None:
    event, license = buy()
    assert (license["product"]["code"], license["seats"]) == ("cadpro", 3)
    assert license["expires_at"] == (clock.now() + timedelta(days=30)).isoformat()
    [issued] = events.of("license_issued")
    assert issued["receipt_number"] == receipt(event)
    assert issued["license"]["license_id"] == license["license_id"]
    service.on_payment_succeeded(event)  # redelivered
    service.on_payment_succeeded({**event, "event_id": uuid.uuid4().hex})  # the same receipt
    assert len(service.list_licenses(COMPANY)) == 1
    assert len(events.of("license_issued")) == 1
    assert [(row.status, row.license_id) for row in payment_rows(db)] == [
        ("applied", license["license_id"])
    ]
    assert service.license_for_payment(receipt(event), OTHER) is None
    assert service.license_for_payment("R-2026-999999", COMPANY) is None


def test_a_renewal_extends_and_says_which_receipt(service, events, clock, buy) -> None:
    _, license = buy()
    renewal_end = clock.now() + timedelta(days=60)
    renewal = paid(renewal_end, "renewal", license["license_id"])
    service.on_payment_succeeded(renewal)
    service.on_payment_succeeded(renewal)
    extended = service.license_for_payment(receipt(renewal), COMPANY)
    assert extended["license_id"] == license["license_id"]
    assert extended["expires_at"] == renewal_end.isoformat()
    [event] = events.of("license_extended")
    assert event["receipt_number"] == receipt(renewal)
    assert event["previous_expires_at"] == license["expires_at"]
    assert event["license"]["expires_at"] == renewal_end.isoformat()


def test_a_renewal_never_shortens_a_license(service, events, clock, buy) -> None:
    _, license = buy(days=90)
    renewal = paid(clock.now() + timedelta(days=30), "renewal", license["license_id"])
    service.on_payment_succeeded(renewal)
    unchanged = service.license_for_payment(receipt(renewal), COMPANY)
    assert unchanged["expires_at"] == license["expires_at"]
    assert events.of("license_extended") == []


def test_a_renewal_of_a_perpetual_license_is_refused_to_billing_once(
    service, events, clock, db
) -> None:
    """A perpetual license stays perpetual, and a renewal paid for it extends nothing: it is
    not applied (billing refunds it), never recorded applied with no change."""
    perpetual = service.issue_license({"customer_id": COMPANY, "product": "cadpro", "seats": 1})
    renewal = paid(clock.now() + timedelta(days=30), "renewal", perpetual["license_id"])
    service.on_payment_succeeded(renewal)
    service.on_payment_succeeded(renewal)  # redelivered: told once
    assert service.get_license(perpetual["license_id"])["expires_at"] is None
    assert service.license_for_payment(receipt(renewal), COMPANY) is None
    assert events.of("license_extended") == []
    [told] = events.of("payment_not_applied")
    assert (told["receipt_number"], told["customer_id"]) == (receipt(renewal), COMPANY)
    assert told["reason"] == "license_is_perpetual" and "perpetual" in told["message"]
    [row] = [row for row in payment_rows(db) if row.event_id == renewal["event_id"]]
    assert (row.status, row.license_id) == ("not_applied", None)


@pytest.mark.parametrize(
    "payload",
    [
        "not an object",
        {"event_id": "e-1", "customer_id": COMPANY, "payment": "not an object"},
        {"event_id": "e-2"},
    ],
    ids=["a string", "payment not an object", "fields missing"],
)
def test_a_malformed_payload_is_parked_not_raised(service, events, db, payload) -> None:
    service.on_payment_succeeded(payload)
    [row] = payment_rows(db)
    assert row.status == "parked" and row.error.startswith("invalid payload")
    if isinstance(payload, dict):
        assert row.event_id == payload["event_id"]
    else:
        assert row.event_id.startswith("unidentified-")
    assert events == []


def test_unidentifiable_payloads_parked_at_one_instant_are_all_kept(service, clock, db) -> None:
    for payload in ("not an object", {"event_id": 42}, {"event_id": "x" * 101}):
        service.on_payment_succeeded(payload)
    service.park("billing", "payment_succeeded", {"event_id": ""}, "r" * (ERROR_MAX + 1))
    rows = payment_rows(db)
    assert [row.status for row in rows] == ["parked"] * 4
    assert {row.received_at for row in rows} == {clock.now()}
    assert len({row.event_id for row in rows}) == 4
    assert all(row.event_id.startswith("unidentified-") for row in rows)
    assert rows[-1].error == "r" * ERROR_MAX


def not_applied(events) -> list[dict[str, Any]]:
    """The `payment_not_applied` events published, each held to its published schema."""
    found = events.of("payment_not_applied")
    for event in found:
        PaymentNotAppliedEvent().load(event)
    return found


def test_what_can_never_be_applied_is_refused_to_billing_once(
    service, events, clock, db, buy
) -> None:
    _, foreign = buy()
    _, suspended = buy()
    service.suspend_license(suspended["license_id"], "chargeback")
    end = clock.now() + timedelta(days=30)
    cases = {
        "product_not_found": paid(end, product="nope"),
        "license_not_found": paid(end, "renewal"),  # a renewal naming no license
        "another company's": paid(end, "renewal", foreign["license_id"], customer=OTHER),
        "license_suspended": paid(end, "renewal", suspended["license_id"]),
    }
    for event in cases.values():
        service.on_payment_succeeded(event)
        service.on_payment_succeeded(event)  # redelivered: told once
    by_receipt = {event["receipt_number"]: event for event in not_applied(events)}
    assert len(not_applied(events)) == len(cases)
    assert {name: by_receipt[receipt(event)]["reason"] for name, event in cases.items()} == {
        "product_not_found": "product_not_found",
        "license_not_found": "license_not_found",
        "another company's": "license_not_found",
        "license_suspended": "license_suspended",
    }
    told = by_receipt[receipt(cases["another company's"])]
    assert (told["customer_id"], told["message"]) == (OTHER, "No such license.")
    rows = {row.event_id: row for row in payment_rows(db)}
    for event in cases.values():
        row = rows[event["event_id"]]
        assert (row.status, row.license_id) == ("not_applied", None)
        assert row.error.startswith(by_receipt[receipt(event)]["reason"] + ": ")
        assert service.license_for_payment(receipt(event), event["customer_id"]) is None
    assert len(events.of("license_issued")) == 2 and events.of("license_extended") == []
    assert service.list_licenses(OTHER) == []


def test_a_product_archived_between_purchase_and_payment_is_refunded_once(
    service, events, clock, db, buy
) -> None:
    _, license = buy()  # bought before: renewals go on
    event = paid(clock.now() + timedelta(days=30))
    service.archive_product("cadpro")  # ... the customer paid in between
    service.on_payment_succeeded(event)
    service.on_payment_succeeded(event)
    service.on_payment_succeeded({**event, "event_id": uuid.uuid4().hex})  # the same receipt
    [told] = not_applied(events)
    assert told == {
        **told,
        "receipt_number": receipt(event),
        "customer_id": COMPANY,
        "reason": "product_archived",
    }
    assert len(events.of("license_issued")) == 1
    renewal = paid(clock.now() + timedelta(days=60), "renewal", license["license_id"])
    service.on_payment_succeeded(renewal)
    extended = service.license_for_payment(receipt(renewal), COMPANY)
    assert extended["expires_at"] == (clock.now() + timedelta(days=60)).isoformat()
    assert len(not_applied(events)) == 1


def test_identifiers_in_any_case_reach_the_same_objects(service, events, clock, buy) -> None:
    _, license = buy()
    end = clock.now() + timedelta(days=90)
    renewal = paid(end, "renewal", f" {license['license_id'].lower()} ", customer=" c1111111")
    renewal["payment"]["receipt_number"] = receipt(renewal).lower()
    service.on_payment_succeeded(renewal)
    found = service.license_for_payment(receipt(renewal).upper(), COMPANY)
    assert (found["license_id"], found["expires_at"]) == (license["license_id"], end.isoformat())
    assert service.license_for_payment(f" {receipt(renewal)} ", "c1111111") == found
    [extended] = events.of("license_extended")
    assert extended["receipt_number"] == receipt(renewal).upper()
    new = paid(end, product=" CADPRO ", customer="c1111111")
    service.on_payment_succeeded(new)
    issued = service.license_for_payment(receipt(new), COMPANY)
    assert (issued["customer_id"], issued["product"]["code"]) == (COMPANY, "cadpro")
    assert not_applied(events) == []


class DownDb:
    """The database is away: every transaction fails as a lost connection does."""

    @contextmanager
    def transaction(self):
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))
        yield


def test_a_transient_failure_goes_back_to_the_queue(service, events, clock, db, monkeypatch):
    monkeypatch.setattr(handlers, "REQUEUE_PAUSE_SECONDS", 0)
    event = paid(clock.now() + timedelta(days=30))
    service.db = DownDb()
    with pytest.raises(OperationalError):
        service.on_payment_succeeded(event)
    service.db = db  # the requeued message comes back once the database does
    service.on_payment_succeeded(event)
    assert service.license_for_payment(receipt(event), COMPANY)["seats"] == 3
    assert [row.status for row in payment_rows(db)] == ["applied"]
