"""BillingService workers over a real (SQLite) database, with the outside faked.

`worker_factory` hands the service a real `common.db.Db` over a migrated SQLite file, the
sandbox provider with an in-memory ledger (or a provider that loses answers), a fixed
clock, a list that records events, and fake licensing/auth RPC clients. Licensing's events
are delivered by calling the handlers, as nameko would.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from common import outbox
from services.billing.models import (
    Charge,
    EventOutbox,
    Invoice,
    LicenseEvent,
    ParkedEvent,
    Payment,
    PaymentMethod,
    RecurringPayment,
)
from services.billing.providers import MemoryLedger, SandboxProvider
from tests.support.fakes import RecordedEvents
from tests.unit.billing.conftest import (
    CUSTOMER,
    DECLINED,
    NO_FUNDS,
    OK_CARD,
    OTHER,
    T0,
    LosingProvider,
    billing_worker,
    buy,
    count,
    license_event,
    raises_code,
)

# --- purchases ----------------------------------------------------------------------------


def test_a_purchase_makes_a_receipt_a_recurring_payment_and_one_event(service, events) -> None:
    result = buy(service)
    payment = result["payment"]
    assert payment["receipt_number"] == "R-2026-000001"
    assert (payment["amount"], payment["currency"]) == (9800, "EUR")
    assert (payment["card_brand"], payment["card_last4"]) == ("visa", "4242")
    assert payment["period_start"] == T0.isoformat()
    assert payment["period_end"] == datetime(2026, 4, 10, 9, 0, tzinfo=UTC).isoformat()
    recurring = result["recurring_payment"]
    assert recurring["next_charge_at"] == payment["period_end"]
    assert recurring["status"] == "active" and recurring["id"].startswith("rp_")
    [event] = events.of("payment_succeeded")
    assert event["customer_id"] == CUSTOMER
    assert event["payment"]["receipt_number"] == "R-2026-000001"
    assert event["purchase"] == {
        "kind": "new",
        "plan": "cad-m",
        "product_code": "cadpro",
        "product": {"code": "cadpro", "name": "CAD Pro"},
        "seats": 2,
        "interval": "month",
        "period_start": payment["period_start"],
        "period_end": payment["period_end"],
        "license_id": None,
        "features": [],  # the plan grants none
        "model": "node_locked",  # a plan made without a model
        "lease_seconds": None,
        "max_borrow_days": None,
    }
    assert buy(service)["payment"]["receipt_number"] == "R-2026-000002"
    assert [p["receipt_number"] for p in service.list_payments(CUSTOMER)] == [
        "R-2026-000002",
        "R-2026-000001",
    ]


@pytest.mark.parametrize(
    ("card", "code"), [(DECLINED, "card_declined"), (NO_FUNDS, "insufficient_funds")]
)
def test_a_declined_card_leaves_nothing_but_the_charge_attempt(
    service, db, events, card, code
) -> None:
    raises_code(code, buy, service, card)
    assert service.list_payments(CUSTOMER) == []
    assert service.list_recurring_payments(CUSTOMER) == []
    assert events == []
    assert (count(db, Payment), count(db, RecurringPayment)) == (0, 0)
    with db.transaction() as session:
        assert session.scalar(select(Charge.status)) == "declined"


@pytest.mark.parametrize(
    ("card", "field"),
    [
        ({**OK_CARD, "number": "4242424242424241"}, "number"),
        ({**OK_CARD, "exp_year": 2026, "exp_month": 2}, "exp_year"),
    ],
)
def test_bad_or_expired_cards_are_422_naming_the_field(service, db, card, field) -> None:
    error = raises_code("validation_error", buy, service, card)
    assert field in error.details["fields"]["card"]
    assert count(db, Charge) == 0


def test_unknown_plan_and_bad_seats_are_named(service) -> None:
    error = raises_code(
        "validation_error",
        service.purchase,
        CUSTOMER,
        {"plan": "nope", "seats": 1, "card": OK_CARD},
    )
    assert "plan" in error.details["fields"]
    error = raises_code("validation_error", buy, service, OK_CARD, 0)
    assert "seats" in error.details["fields"]


def test_a_lost_answer_is_rechecked_not_recharged(db, events, clock, licensing) -> None:
    ledger = MemoryLedger()
    losing = billing_worker(
        db=db, events=events, clock=clock, provider=LosingProvider(ledger), licensing=licensing
    )
    losing.create_plan(
        {"code": "cad-m", "product_code": "CADPRO", "amount": 4900, "currency": "EUR",
         "interval": "month"}
    )  # fmt: skip
    raises_code("payment_unconfirmed", buy, losing)
    assert count(db, Payment) == 0 and len(ledger.records) == 1
    healthy = billing_worker(
        db=db, events=events, clock=clock, provider=SandboxProvider(ledger), licensing=licensing
    )
    report = healthy.run_renewals()
    assert report["reconciled"] == 1
    assert len(ledger.records) == 1  # asked, not charged again
    [payment] = healthy.list_payments(CUSTOMER)
    assert payment["amount"] == 9800
    assert len(events.of("payment_succeeded")) == 1
    assert healthy.run_renewals()["reconciled"] == 0


def test_a_renewal_purchase_extends_from_the_license_expiry(service, licensing, events) -> None:
    expiry = T0 + timedelta(days=10)
    license_id = licensing.issue_for("R-x", CUSTOMER, expiry)["license"]["license_id"]
    result = buy(service, license_id=license_id)
    assert result["payment"]["period_start"] == expiry.isoformat()
    assert result["payment"]["license_id"] == license_id
    assert events.of("payment_succeeded")[0]["purchase"]["kind"] == "renewal"
    assert events.of("payment_succeeded")[0]["purchase"]["license_id"] == license_id
    body = {"plan": "cad-m", "seats": 2, "card": OK_CARD, "license_id": license_id}
    raises_code("license_not_found", service.purchase, OTHER, body)
    error = raises_code("validation_error", buy, service, OK_CARD, 3, license_id=license_id)
    assert "seats" in error.details["fields"]


# --- reads, isolation, offline ------------------------------------------------------------


def test_another_company_never_sees_a_receipt_or_recurring_payment(service) -> None:
    result = buy(service)
    receipt = result["payment"]["receipt_number"]
    assert service.get_receipt(receipt, CUSTOMER)["lines"][0]["seats"] == 2
    raises_code("payment_not_found", service.get_receipt, receipt, OTHER)
    assert service.list_payments(OTHER) == []
    raises_code(
        "recurring_payment_not_found",
        service.cancel_recurring_payment,
        result["recurring_payment"]["id"],
        OTHER,
    )


def test_offline_payments_are_receipts_that_are_not_listed(service, events) -> None:
    payment = service.record_offline_payment(
        {"customer_id": CUSTOMER, "amount": 120000, "currency": "EUR", "description": "By phone"}
    )
    assert payment["channel"] == "offline" and payment["receipt_number"] == "R-2026-000001"
    assert service.list_payments(CUSTOMER) == []
    assert service.get_receipt(payment["receipt_number"], CUSTOMER)["amount_formatted"] == (
        "€1,200.00"
    )
    [event] = events.of("offline_payment_recorded")
    assert event["payment"]["receipt_number"] == payment["receipt_number"]
    raises_code(
        "company_not_found",
        service.record_offline_payment,
        {"customer_id": "C9", "amount": 1, "currency": "EUR", "description": "x"},
    )


# --- licenses, learnt from licensing's events ---------------------------------------------


def test_the_license_of_a_receipt_is_learnt_from_license_issued(service, licensing) -> None:
    result = buy(service)
    receipt = result["payment"]["receipt_number"]
    licensing.calls.clear()  # the purchase asked for its product
    assert service.list_payments(CUSTOMER)[0]["license_id"] is None
    assert service.get_receipt(receipt, CUSTOMER)["license_id"] is None
    assert service.list_recurring_payments(CUSTOMER)[0]["license_id"] is None
    event = licensing.issue_for(receipt, CUSTOMER, T0 + timedelta(days=31))
    service.on_license_issued(event)
    license_id = event["license"]["license_id"]
    assert service.list_payments(CUSTOMER)[0]["license_id"] == license_id
    assert service.get_receipt(receipt, CUSTOMER)["license_id"] == license_id
    assert service.get_receipt(receipt)["license_id"] == license_id
    assert service.list_recurring_payments(CUSTOMER)[0]["license_id"] == license_id
    assert licensing.calls == []  # reads never ask licensing


def test_a_license_event_is_applied_once_by_event_id(service, db, licensing) -> None:
    receipt = buy(service)["payment"]["receipt_number"]
    event = licensing.issue_for(receipt, CUSTOMER, T0 + timedelta(days=31))
    service.on_license_issued(event)
    service.on_license_issued(event)  # redelivered
    other = {**event["license"], "license_id": "L-other"}
    service.on_license_extended({**event, "license": other})  # same event_id: applied already
    assert count(db, LicenseEvent) == 1
    assert service.list_recurring_payments(CUSTOMER)[0]["license_id"] == "L-0001"
    # a later event names another license: the one known stays
    service.on_license_extended(license_event(CUSTOMER, other, receipt))
    assert count(db, LicenseEvent) == 2
    assert service.list_payments(CUSTOMER)[0]["license_id"] == "L-0001"


def test_license_events_of_receipts_without_a_payment_change_nothing(
    service, db, licensing
) -> None:
    receipt = buy(service)["payment"]["receipt_number"]
    service.on_license_issued(licensing.issue_for("R-2026-999999", CUSTOMER, T0))
    service.on_license_issued(licensing.issue_for(receipt, OTHER, T0))  # another company's
    license = {"license_id": "L-staff", "product": {"code": "CADPRO"}, "seats": 1}
    service.on_license_issued(license_event(CUSTOMER, license, None))  # no payment caused it
    assert count(db, LicenseEvent) == 2 and count(db, ParkedEvent) == 0
    assert service.list_payments(CUSTOMER)[0]["license_id"] is None
    assert service.list_recurring_payments(CUSTOMER)[0]["license_id"] is None


@pytest.mark.parametrize(
    "payload",
    [
        "not an object",
        {"event_id": "e-1", "customer_id": CUSTOMER, "receipt_number": "R-2026-000001"},
        {
            "event_id": "e-2",
            "customer_id": CUSTOMER,
            "receipt_number": "R-2026-000001",
            "license": {"license_id": ""},
        },
    ],
)
def test_malformed_license_events_are_parked_not_raised(service, db, payload) -> None:
    buy(service)
    service.on_license_issued(payload)
    service.on_license_issued(payload)
    with db.transaction() as session:
        parked = session.scalars(select(ParkedEvent)).all()
        assert [(p.source, p.event_type) for p in parked] == [("licensing", "license_issued")] * (
            1 if isinstance(payload, dict) else 2
        )
        assert parked[0].payload == payload and "invalid payload" in parked[0].error
    assert count(db, LicenseEvent) == 0
    assert service.list_payments(CUSTOMER)[0]["license_id"] is None


# --- renewals and dunning -----------------------------------------------------------------


def _bought_and_licensed(service, licensing, card=OK_CARD) -> dict[str, Any]:
    result = buy(service, card)
    receipt = result["payment"]["receipt_number"]
    service.on_license_issued(licensing.issue_for(receipt, CUSTOMER, T0 + timedelta(days=31)))
    return result


def test_a_due_renewal_is_charged_once(service, licensing, clock, events) -> None:
    result = _bought_and_licensed(service, licensing)
    assert service.run_renewals()["charged"] == 0
    clock.at = datetime.fromisoformat(result["recurring_payment"]["next_charge_at"])
    first, second = service.run_renewals(), service.run_renewals()
    assert (first["invoices_opened"], first["succeeded"]) == (1, 1)
    assert (second["invoices_opened"], second["charged"]) == (0, 0)
    renewal = events.of("payment_succeeded")[-1]
    assert renewal["purchase"]["kind"] == "renewal"
    assert renewal["purchase"]["license_id"] == "L-0001"
    assert renewal["purchase"]["period_start"] == clock.at.isoformat()
    [recurring] = service.list_recurring_payments(CUSTOMER)
    assert recurring["next_charge_at"] == renewal["purchase"]["period_end"]
    assert len(service.list_payments(CUSTOMER)) == 2


def test_as_of_charges_what_falls_due_until_then(service, licensing) -> None:
    _bought_and_licensed(service, licensing)
    assert service.run_renewals((T0 + timedelta(days=40)).isoformat())["succeeded"] == 1
    raises_code("validation_error", service.run_renewals, "tomorrow")


def test_dunning_retries_then_past_due(service, db, licensing, clock, events) -> None:
    result = _bought_and_licensed(service, licensing)
    with db.transaction() as session:  # the card stops working after the purchase
        recurring = session.scalar(select(RecurringPayment))
        method_token = "pm_sandbox_insufficient_funds_test"
        session.get(PaymentMethod, recurring.payment_method_id).token = method_token
    due = datetime.fromisoformat(result["recurring_payment"]["next_charge_at"])
    clock.at = due
    assert service.run_renewals()["declined"] == 1
    failed = events.of("payment_failed")
    assert failed[0]["attempt"] == 1 and failed[0]["reason"] == "insufficient_funds"
    assert failed[0]["next_retry_at"] == (due + timedelta(days=1)).isoformat()
    clock.at = due + timedelta(hours=23)
    assert service.run_renewals()["charged"] == 0  # not yet
    for days, attempt in ((1, 2), (3, 3), (5, 4)):
        clock.at = due + timedelta(days=days)
        assert service.run_renewals()["charged"] == 1
        assert events.of("payment_failed")[-1]["attempt"] == attempt
    assert events.of("payment_failed")[-1]["next_retry_at"] is None
    [recurring] = service.list_recurring_payments(CUSTOMER)
    assert recurring["status"] == "past_due" and recurring["failures"] == 4
    clock.at = due + timedelta(days=60)
    assert service.run_renewals()["charged"] == 0
    assert len(events.of("payment_succeeded")) == 1  # the purchase only: no extension
    with db.transaction() as session:
        assert session.scalar(select(Invoice.status)) == "failed"


def test_cancelled_recurring_payments_are_not_charged(service, licensing, clock, events) -> None:
    result = _bought_and_licensed(service, licensing)
    reference = result["recurring_payment"]["id"]
    cancelled = service.cancel_recurring_payment(reference, CUSTOMER)
    assert cancelled["status"] == "cancelled"
    assert service.cancel_recurring_payment(reference, CUSTOMER)["status"] == "cancelled"
    assert len(events.of("recurring_payment_cancelled")) == 1
    clock.at = T0 + timedelta(days=400)
    assert service.run_renewals()["charged"] == 0


def test_renewals_wait_for_licensing_to_name_the_license(service, licensing, clock) -> None:
    receipt = buy(service)["payment"]["receipt_number"]
    licensing.calls.clear()  # the purchase asked for its product
    clock.at = T0 + timedelta(days=40)
    report = service.run_renewals()
    assert (report["waiting_for_license"], report["charged"]) == (1, 0)
    assert licensing.calls == []  # the pass waits for the event, it does not ask
    service.on_license_issued(licensing.issue_for(receipt, CUSTOMER, T0 + timedelta(days=31)))
    report = service.run_renewals()
    assert (report["waiting_for_license"], report["succeeded"]) == (0, 1)


def test_demo_history_is_seeded_once(service, events, licensing) -> None:
    seeded = service.seed_demo_history(CUSTOMER, "cad-m", 3)
    assert seeded["created"] is True
    assert [p["kind"] for p in seeded["payments"]] == ["new", "renewal"]
    first = seeded["payments"][0]["receipt_number"]
    service.on_license_issued(licensing.issue_for(first, CUSTOMER, T0 + timedelta(days=5)))
    assert {p["license_id"] for p in service.list_payments(CUSTOMER)} == {"L-0001"}
    assert service.seed_demo_history(CUSTOMER, "cad-m", 3) == {"created": False}
    assert len(service.list_payments(CUSTOMER)) == 2
    assert len(events.of("payment_succeeded")) == 1
    assert service.list_recurring_payments(CUSTOMER)[0]["next_charge_at"] > T0.isoformat()


@pytest.mark.parametrize("seats", ["5", 0, 101, None, 2.5])
def test_demo_history_refuses_a_seat_count_it_cannot_use(service, seats) -> None:
    error = raises_code("validation_error", service.seed_demo_history, CUSTOMER, "cad-m", seats)
    assert "seats" in error.details["fields"]
    assert service.list_payments(CUSTOMER) == []


def test_plans(service) -> None:
    [plan] = service.list_plans()
    assert plan["price"] == "€49.00" and plan["currency"] == "EUR"
    raises_code("plan_exists", service.create_plan, {**_plan(), "code": "cad-m"})
    error = raises_code("validation_error", service.create_plan, {**_plan(), "amount": 49.5})
    assert "amount" in error.details["fields"]
    error = raises_code("validation_error", service.create_plan, {**_plan(), "currency": "EURO"})
    assert "currency" in error.details["fields"]


def _plan() -> dict[str, Any]:
    return {
        "code": "cad-y",
        "product_code": "CADPRO",
        "amount": 49000,
        "currency": "EUR",
        "interval": "year",
    }


def test_payment_succeeded_survives_a_broker_outage_in_the_outbox(db, clock, licensing) -> None:
    def broker_down(event_type, payload):
        raise ConnectionError("broker away")

    down = billing_worker(
        db=db,
        events=broker_down,
        clock=clock,
        provider=SandboxProvider(MemoryLedger()),
        licensing=licensing,
    )
    down.create_plan(_plan())
    receipt = down.purchase(CUSTOMER, {"plan": "cad-y", "seats": 1, "card": OK_CARD})
    assert receipt["payment"]["receipt_number"] == "R-2026-000001"  # the sale stands
    later = RecordedEvents()
    assert outbox.relay(db, EventOutbox, later, older_than=timedelta(0)) == 1
    [event] = later.of("payment_succeeded")
    assert event["payment"]["receipt_number"] == "R-2026-000001" and event["event_id"]
    assert outbox.relay(db, EventOutbox, later, older_than=timedelta(0)) == 0


def test_a_repeated_idempotency_key_gets_the_same_answer_not_a_second_charge(
    service, db, provider
) -> None:
    first = buy(service, request_key="order-42")
    again = buy(service, request_key="order-42")
    assert again["payment"] == first["payment"]
    assert len(provider.ledger.records) == 1 and count(db, Payment) == 1
    raises_code("card_declined", buy, service, DECLINED, request_key="order-43")
    raises_code("card_declined", buy, service, DECLINED, request_key="order-43")
    # the same key with another card is another request: refused, nothing charged
    raises_code("idempotency_key_reused", buy, service, OK_CARD, request_key="order-43")
    assert len(provider.ledger.records) == 2
    assert buy(service, request_key="order-44")["payment"]["receipt_number"] == "R-2026-000002"
