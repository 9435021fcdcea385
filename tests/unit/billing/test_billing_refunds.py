"""A paid payment licensing cannot apply is refunded, once, and what it paid for ends."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from services.billing.models import ParkedEvent, Payment, RecurringPayment
from services.billing.providers import MemoryLedger, ProviderUnavailable, SandboxProvider
from tests.unit.billing.conftest import (
    CUSTOMER,
    OTHER,
    T0,
    billing_worker,
    bought_and_licensed,
    buy,
    count,
    not_applied,
    raises_code,
)


def test_a_payment_licensing_cannot_apply_is_refunded_and_its_recurring_payment_ends(
    service, db, events, provider, clock
) -> None:
    bought = buy(service)
    receipt = bought["payment"]["receipt_number"]
    clock.advance(minutes=1)
    service.on_payment_not_applied(not_applied(receipt.lower(), customer_id=" c1000001 "))
    [payment] = service.list_payments(CUSTOMER)
    assert payment["status"] == "refunded"
    assert (payment["refunded_at"], payment["refund_reason"]) == (
        (T0 + timedelta(minutes=1)).isoformat(),
        "product_archived",
    )
    [refund] = provider.ledger.refunds()
    assert refund["refunded_charge_id"] == provider.ledger.charges()[0]["charge_id"]
    assert refund["amount"] == 9800
    [recurring] = service.list_recurring_payments(CUSTOMER)
    assert (recurring["status"], recurring["cancelled_by"]) == ("cancelled", "refund")
    [event] = events.of("payment_refunded")
    assert {key: event[key] for key in ("receipt_number", "customer_id", "amount", "currency")} == {
        "receipt_number": receipt,
        "customer_id": CUSTOMER,
        "amount": 9800,
        "currency": "EUR",
    }
    assert event["amount_formatted"] == "€98.00"
    assert event["description"] == "CAD Pro, 2 seats, monthly"
    assert event["product"] == {"code": "cadpro", "name": "CAD Pro"}
    assert (event["reason"], event["message"]) == (
        "product_archived",
        "The product CAD Pro is no longer sold.",
    )
    assert events.of("recurring_payment_cancelled") == []  # the refund email says it all
    staff_view = service.list_all_payments(status="refunded")
    assert [p["receipt_number"] for p in staff_view] == [receipt]
    assert service.list_all_payments(status="paid") == []
    # no more charges: the renewal pass leaves it alone
    clock.at = datetime.fromisoformat(recurring["next_charge_at"]) + timedelta(days=1)
    assert service.run_renewals()["charged"] == 0
    raises_code(
        "recurring_payment_ended", service.resume_recurring_payment, recurring["id"], CUSTOMER
    )


def test_a_redelivered_or_repeated_event_refunds_once(service, events, provider) -> None:
    receipt = buy(service)["payment"]["receipt_number"]
    event = not_applied(receipt)
    service.on_payment_not_applied(event)
    service.on_payment_not_applied(event)  # redelivered
    service.on_payment_not_applied(not_applied(receipt, "license_suspended"))  # another one
    assert len(provider.ledger.refunds()) == 1
    assert len(events.of("payment_refunded")) == 1
    assert service.list_payments(CUSTOMER)[0]["refund_reason"] == "product_archived"


def test_a_refund_whose_answer_was_lost_is_asked_again_and_made_once(
    db, events, clock, licensing
) -> None:
    ledger = MemoryLedger()

    class LosingRefunds(SandboxProvider):
        def refund(self, charge_id, amount, currency, idempotency_key):
            super().refund(charge_id, amount, currency, idempotency_key)
            raise ProviderUnavailable("timeout")

    losing = billing_worker(
        db=db, events=events, clock=clock, provider=LosingRefunds(ledger), licensing=licensing
    )
    losing.create_plan(
        {"code": "cad-m", "product_code": "cadpro", "amount": 4900, "currency": "EUR",
         "interval": "month"}
    )  # fmt: skip
    receipt = buy(losing)["payment"]["receipt_number"]
    event = not_applied(receipt)
    with pytest.raises(ProviderUnavailable):  # back to the queue
        losing.on_payment_not_applied(event)
    assert losing.list_payments(CUSTOMER)[0]["status"] == "paid"
    healthy = billing_worker(
        db=db, events=events, clock=clock, provider=SandboxProvider(ledger), licensing=licensing
    )
    healthy.on_payment_not_applied(event)  # the redelivery
    assert healthy.list_payments(CUSTOMER)[0]["status"] == "refunded"
    assert len(ledger.refunds()) == 1 and len(events.of("payment_refunded")) == 1


def test_a_refunded_renewal_ends_the_recurring_payment_it_renewed(
    service, licensing, clock, events
) -> None:
    result = bought_and_licensed(service, licensing)
    clock.at = datetime.fromisoformat(result["recurring_payment"]["next_charge_at"])
    assert service.run_renewals()["succeeded"] == 1
    renewal = service.list_payments(CUSTOMER)[0]
    assert renewal["kind"] == "renewal"
    service.on_payment_not_applied(not_applied(renewal["receipt_number"], "product_archived"))
    [recurring] = service.list_recurring_payments(CUSTOMER)
    assert (recurring["status"], recurring["cancelled_by"]) == ("cancelled", "refund")
    first, second = service.list_payments(CUSTOMER)
    assert (first["status"], second["status"]) == ("refunded", "paid")


def test_a_renewal_refunded_for_a_suspension_keeps_the_recurring_payment(
    service, licensing, clock, events
) -> None:
    """A suspension is lifted some day: the renewal charged meanwhile is refunded, and
    auto-renewal goes on (the next period is charged; licensing applies it once resumed)."""
    result = bought_and_licensed(service, licensing)
    clock.at = datetime.fromisoformat(result["recurring_payment"]["next_charge_at"])
    assert service.run_renewals()["succeeded"] == 1
    renewal = service.list_payments(CUSTOMER)[0]
    service.on_payment_not_applied(not_applied(renewal["receipt_number"], "license_suspended"))
    assert service.list_payments(CUSTOMER)[0]["status"] == "refunded"
    assert len(events.of("payment_refunded")) == 1
    [recurring] = service.list_recurring_payments(CUSTOMER)
    assert (recurring["status"], recurring["cancelled_by"]) == ("active", None)
    assert recurring["next_charge_at"] == renewal["period_end"]
    clock.at = datetime.fromisoformat(recurring["next_charge_at"])  # suspension lifted
    assert service.run_renewals()["succeeded"] == 1


def test_a_refund_of_an_older_payment_leaves_a_recurring_payment_that_moved_on(
    service, db, licensing, clock
) -> None:
    result = bought_and_licensed(service, licensing)
    clock.at = datetime.fromisoformat(result["recurring_payment"]["next_charge_at"])
    service.run_renewals()
    service.on_payment_not_applied(not_applied(result["payment"]["receipt_number"]))
    with db.transaction() as session:
        assert session.scalar(select(RecurringPayment.status)) == "active"


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda service: not_applied("R-2026-999999"), "no payment R-2026-999999"),
        (
            lambda service: not_applied(
                buy(service)["payment"]["receipt_number"], customer_id=OTHER
            ),
            "no payment R-2026-000001 of C2000002",
        ),
        (
            lambda service: not_applied(
                service.record_offline_payment(
                    {
                        "customer_id": CUSTOMER,
                        "amount": 100,
                        "currency": "EUR",
                        "description": "By phone",
                    }
                )["receipt_number"]
            ),  # fmt: skip
            "was not charged through the provider",
        ),
        (lambda service: {"event_id": "e-1", "receipt_number": "R-1"}, "invalid payload"),
        (lambda service: "not an object", "invalid payload"),
    ],
)
def test_what_cannot_be_refunded_is_parked_for_staff(service, db, events, make, words) -> None:
    payload = make(service)
    service.on_payment_not_applied(payload)
    with db.transaction() as session:
        [parked] = session.scalars(select(ParkedEvent)).all()
        assert (parked.source, parked.event_type) == ("licensing", "payment_not_applied")
        assert words in parked.error
    assert events.of("payment_refunded") == []
    assert count(db, Payment) == len(
        [p for p in service.list_all_payments() if p["status"] == "paid"]
    )
