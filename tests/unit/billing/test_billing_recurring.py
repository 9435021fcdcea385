"""Recurring payments a customer controls: cancel and resume, change the card."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from services.billing.models import Invoice, PaymentMethod, RecurringPayment
from services.billing.use_cases import recurring as use_case
from tests.unit.billing.conftest import (
    CUSTOMER,
    DECLINED,
    NO_FUNDS,
    OK_CARD,
    OTHER,
    T0,
    bought_and_licensed,
    count,
    keyed,
    raises_code,
)

MASTERCARD = {"number": "5555 5555 5555 4444", "exp_month": 6, "exp_year": 2031, "cvc": "321"}


def test_a_customer_resumes_what_they_cancelled_while_the_period_runs(
    service, licensing, clock, events
) -> None:
    reference = bought_and_licensed(service, licensing)["recurring_payment"]["id"]
    active = service.resume_recurring_payment(reference, CUSTOMER)
    assert active["status"] == "active" and events.of("recurring_payment_resumed") == []
    cancelled = service.cancel_recurring_payment(reference, " c1000001 ")
    assert (cancelled["status"], cancelled["cancelled_by"]) == ("cancelled", "customer")
    raises_code("recurring_payment_not_found", service.resume_recurring_payment, reference, OTHER)
    clock.advance(days=10)
    resumed = service.resume_recurring_payment(reference, CUSTOMER)
    assert (resumed["status"], resumed["cancelled_by"]) == ("active", None)
    assert resumed["next_charge_at"] == cancelled["next_charge_at"]
    [event] = events.of("recurring_payment_resumed")
    assert event["recurring_payment"]["id"] == reference
    assert event["resumed_at"] == clock.at.isoformat()
    clock.at = datetime.fromisoformat(resumed["next_charge_at"])
    assert service.run_renewals()["succeeded"] == 1  # charged again


def test_a_period_that_ended_or_a_staff_cancellation_cannot_be_resumed(
    service, licensing, clock
) -> None:
    reference = bought_and_licensed(service, licensing)["recurring_payment"]["id"]
    service.cancel_recurring_payment(reference, CUSTOMER)
    clock.at = T0 + timedelta(days=31)  # the paid month is over
    error = raises_code(
        "recurring_payment_ended", service.resume_recurring_payment, reference, CUSTOMER
    )
    assert error.details["cancelled_by"] == "customer"
    clock.at = T0
    service.resume_recurring_payment(reference, CUSTOMER)
    staff = service.cancel_recurring_payment(reference)  # staff: no customer ID
    assert staff["cancelled_by"] == "staff"
    raises_code("recurring_payment_ended", service.resume_recurring_payment, reference, CUSTOMER)
    raises_code("recurring_payment_ended", service.replace_card, reference, CUSTOMER, MASTERCARD)


def card_stops_working(db) -> None:
    """The card of the recurring payment declines from now on (it did at the purchase)."""
    with db.transaction() as session:
        recurring = session.scalar(select(RecurringPayment))
        session.get(PaymentMethod, recurring.payment_method_id).token = "pm_sandbox_card_declined_x"


def test_resuming_reopens_the_invoice_a_pass_opened_early(service, db, licensing, clock) -> None:
    result = bought_and_licensed(service, licensing)
    card_stops_working(db)
    reference = result["recurring_payment"]["id"]
    due = datetime.fromisoformat(result["recurring_payment"]["next_charge_at"])
    # an hour before it is due, staff runs a pass a little ahead: the charge is declined,
    # the invoice waits for its retry; then the customer cancels
    clock.at = due - timedelta(hours=1)
    ahead = (due + timedelta(minutes=1)).isoformat()
    assert service.run_renewals(ahead)["declined"] == 1
    service.cancel_recurring_payment(reference, CUSTOMER)
    with db.transaction() as session:
        assert session.scalar(select(Invoice.status)) == "cancelled"
    assert service.resume_recurring_payment(reference, CUSTOMER)["status"] == "active"
    with db.transaction() as session:
        invoice = session.scalar(select(Invoice))
        assert (invoice.status, invoice.attempts, invoice.next_attempt_at) == ("open", 1, due)
    service.replace_card(reference, CUSTOMER, OK_CARD)
    assert service.run_renewals(ahead)["succeeded"] == 1


def test_a_past_due_payment_cancelled_and_resumed_is_past_due_again(
    service, db, licensing, clock
) -> None:
    result = bought_and_licensed(service, licensing)
    card_stops_working(db)
    due = datetime.fromisoformat(result["recurring_payment"]["next_charge_at"])
    clock.at = due - timedelta(hours=1)
    assert service.run_renewals((due + timedelta(days=6)).isoformat())["past_due"] == 1
    reference = result["recurring_payment"]["id"]
    service.cancel_recurring_payment(reference, CUSTOMER)
    assert service.resume_recurring_payment(reference, CUSTOMER)["status"] == "past_due"
    service.replace_card(reference, CUSTOMER, MASTERCARD)
    clock.at = due + timedelta(minutes=1)
    assert service.run_renewals()["succeeded"] == 1
    assert service.list_recurring_payments(CUSTOMER)[0]["status"] == "active"


def test_a_new_card_is_checked_and_pays_from_now_on(service, db, licensing, events) -> None:
    reference = bought_and_licensed(service, licensing)["recurring_payment"]["id"]
    changed = service.replace_card(reference, " c1000001", MASTERCARD)
    assert (changed["card_brand"], changed["card_last4"]) == ("mastercard", "4444")
    assert service.list_recurring_payments(CUSTOMER)[0]["card_last4"] == "4444"
    [event] = events.of("recurring_payment_card_changed")
    assert event["recurring_payment"]["card_last4"] == "4444"
    assert (event["previous_card_brand"], event["previous_card_last4"]) == ("visa", "4242")
    assert event["changed_at"] == T0.isoformat()
    checks = [r for r in service.provider.ledger.records.values() if r["kind"] == "authorization"]
    assert [(c["amount"], c["status"]) for c in checks] == [(0, "succeeded")]
    assert len(service.provider.ledger.charges()) == 1  # the purchase: the check charged nothing


def test_a_declined_or_invalid_card_changes_nothing(service, db, licensing, events) -> None:
    reference = bought_and_licensed(service, licensing)["recurring_payment"]["id"]
    methods = count(db, PaymentMethod)
    raises_code("card_declined", service.replace_card, reference, CUSTOMER, DECLINED)
    raises_code("insufficient_funds", service.replace_card, reference, CUSTOMER, NO_FUNDS)
    error = raises_code(
        "validation_error",
        service.replace_card,
        reference,
        CUSTOMER,
        {**MASTERCARD, "number": "5555555555554445"},
    )
    assert "number" in error.details["fields"]["card"]
    error = raises_code(
        "validation_error", service.replace_card, reference, CUSTOMER, {**MASTERCARD, "cvc": None}
    )
    assert "cvc" in error.details["fields"]["card"]
    error = raises_code(
        "validation_error",
        service.replace_card,
        reference,
        CUSTOMER,
        {**MASTERCARD, "exp_year": 2026, "exp_month": 1},
    )
    assert "exp_year" in error.details["fields"]["card"]
    raises_code("recurring_payment_not_found", service.replace_card, reference, OTHER, MASTERCARD)
    assert count(db, PaymentMethod) == methods
    assert service.list_recurring_payments(CUSTOMER)[0]["card_last4"] == "4242"
    assert events.of("recurring_payment_card_changed") == []


def test_a_past_due_payment_is_tried_again_with_the_new_card(
    service, db, licensing, clock, events
) -> None:
    result = bought_and_licensed(service, licensing)
    card_stops_working(db)
    due = datetime.fromisoformat(result["recurring_payment"]["next_charge_at"])
    for days in (0, 1, 3, 5):
        clock.at = due + timedelta(days=days)
        service.run_renewals()
    [recurring] = service.list_recurring_payments(CUSTOMER)
    assert recurring["status"] == "past_due"
    clock.advance(days=2)
    service.replace_card(recurring["id"], CUSTOMER, MASTERCARD)
    report = service.run_renewals()
    assert (report["charged"], report["succeeded"]) == (1, 1)
    [recurring] = service.list_recurring_payments(CUSTOMER)
    assert (recurring["status"], recurring["failures"]) == ("active", 0)
    renewal = events.of("payment_succeeded")[-1]
    assert renewal["payment"]["card_last4"] == "4444"
    assert renewal["purchase"]["period_start"] == due.isoformat()


def test_redelivered_requests_change_nothing_twice(service, db, licensing, events) -> None:
    reference = bought_and_licensed(service, licensing)["recurring_payment"]["id"]
    keyed(service, "http-1", "cancel_recurring_payment")
    first = service.cancel_recurring_payment(reference, CUSTOMER)
    keyed(service, "http-2", "resume_recurring_payment")
    service.resume_recurring_payment(reference, CUSTOMER)
    keyed(service, "http-1", "cancel_recurring_payment")  # the cancel, redelivered late
    assert service.cancel_recurring_payment(reference, CUSTOMER) == first
    assert service.list_recurring_payments(CUSTOMER)[0]["status"] == "active"
    assert len(events.of("recurring_payment_cancelled")) == 1
    keyed(service, "http-3", "replace_card")
    methods = count(db, PaymentMethod)
    changed = service.replace_card(reference, CUSTOMER, MASTERCARD)
    assert service.replace_card(reference, CUSTOMER, MASTERCARD) == changed
    assert count(db, PaymentMethod) == methods + 1
    assert len(events.of("recurring_payment_card_changed")) == 1
    raises_code(
        "idempotency_key_reused",
        service.replace_card,
        reference,
        CUSTOMER,
        {**MASTERCARD, "number": "4242424242424242"},
    )
    # another company's key of the same text is its own
    raises_code("recurring_payment_not_found", service.replace_card, reference, OTHER, MASTERCARD)


def authorizations(service) -> list[dict]:
    return [r for r in service.provider.ledger.records.values() if r["kind"] == "authorization"]


def test_a_card_change_months_past_due_charges_once_for_a_period_from_now(
    service, db, licensing, clock, events
) -> None:
    """Past due for five months, then a new card: no charge for any period already over;
    at most one charge per pass, for a period starting now."""
    result = bought_and_licensed(service, licensing)
    card_stops_working(db)
    due = datetime.fromisoformat(result["recurring_payment"]["next_charge_at"])
    for days in (0, 1, 3, 5):
        clock.at = due + timedelta(days=days)
        service.run_renewals()
    [recurring] = service.list_recurring_payments(CUSTOMER)
    assert recurring["status"] == "past_due"
    clock.at = due + timedelta(days=150)
    changed_at = clock.at
    service.replace_card(recurring["id"], CUSTOMER, MASTERCARD)
    before = len(events.of("payment_succeeded"))
    for _ in range(5):
        assert service.run_renewals()["charged"] <= 1
        clock.advance(hours=1)
    renewals = events.of("payment_succeeded")[before:]
    assert len(renewals) == 1
    period = renewals[0]["purchase"]
    assert datetime.fromisoformat(period["period_start"]) >= changed_at
    [recurring] = service.list_recurring_payments(CUSTOMER)
    assert (recurring["status"], recurring["next_charge_at"]) == ("active", period["period_end"])
    with db.transaction() as session:
        stale = session.scalar(select(Invoice).where(Invoice.period_start == due))
        assert (stale.status, stale.payment_id) == ("cancelled", None)


def test_a_pass_that_did_not_run_for_months_charges_no_period_already_over(
    service, licensing, clock, events
) -> None:
    result = bought_and_licensed(service, licensing)
    due = datetime.fromisoformat(result["recurring_payment"]["next_charge_at"])
    clock.at = due + timedelta(days=120)
    for _ in range(4):
        service.run_renewals()
        clock.advance(minutes=5)
    [renewal] = [e for e in events.of("payment_succeeded") if e["purchase"]["kind"] == "renewal"]
    assert renewal["purchase"]["period_start"] == (due + timedelta(days=120)).isoformat()


def test_a_request_key_reused_with_another_card_is_refused_before_any_check(
    service, db, licensing
) -> None:
    reference = bought_and_licensed(service, licensing)["recurring_payment"]["id"]
    keyed(service, "http-card", "replace_card")
    service.replace_card(reference, CUSTOMER, MASTERCARD)
    checks = len(authorizations(service))
    raises_code("idempotency_key_reused", service.replace_card, reference, CUSTOMER, DECLINED)
    assert len(authorizations(service)) == checks  # refused before the provider was asked
    assert service.list_recurring_payments(CUSTOMER)[0]["card_last4"] == "4444"


def test_a_retry_with_another_card_after_a_rollback_checks_that_card(
    service, db, licensing, monkeypatch
) -> None:
    """The card check of card A succeeded, then recording it rolled back; the same key with
    card B (declining) must check B, never answer A's success and save B unchecked."""
    reference = bought_and_licensed(service, licensing)["recurring_payment"]["id"]
    real = use_case.apply_new_card

    def lost(*args, **kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(use_case, "apply_new_card", lost)
    keyed(service, "http-retry", "replace_card")
    with pytest.raises(RuntimeError):
        service.replace_card(reference, CUSTOMER, MASTERCARD)
    monkeypatch.setattr(use_case, "apply_new_card", real)
    methods = count(db, PaymentMethod)
    raises_code("card_declined", service.replace_card, reference, CUSTOMER, DECLINED)
    assert count(db, PaymentMethod) == methods
    assert service.list_recurring_payments(CUSTOMER)[0]["card_last4"] == "4242"
    assert [c["status"] for c in authorizations(service)] == ["succeeded", "declined"]
