"""Billing's part of the audit trail: purchases, recurring payments and billing details,
each recorded with its change, once, by who acted (fixtures and helpers: conftest.py).

`ActorInfo({"actor": USER})` is a worker's context data as the gateway sends it for a
signed-in portal user; `ActorInfo({})` names nobody (the use case's default actor).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from common import audit
from common.audit import ActorInfo, encode_cursor
from common.idempotency import RequestInfo
from services.billing.models import AuditEvent, Payment
from services.billing.providers import MemoryLedger, SandboxProvider
from tests.unit.billing.conftest import (
    CUSTOMER,
    OK_CARD,
    OTHER,
    T0,
    LosingProvider,
    billing_worker,
    bought_and_licensed,
    buy,
    count,
    keyed,
    raises_code,
)

USER = {"type": "user", "user_id": "U-AAAA-BBBB", "email": "ada@acme.test"}
MASTERCARD = {"number": "5555 5555 5555 4444", "exp_month": 6, "exp_year": 2031, "cvc": "321"}
DETAILS = {"company_name": "Acme GmbH", "address": "Main St 1\n1010 Vienna", "vat_id": None}


def trail(db, customer_id: str = CUSTOMER) -> list[dict[str, Any]]:
    """The company's stored audit rows, oldest first, as `common.audit.view` shows them."""
    with db.transaction() as session:
        rows = session.execute(
            select(AuditEvent.__table__)
            .where(AuditEvent.customer_id == customer_id)
            .order_by(AuditEvent.id)
        ).all()
        return [audit.view(row._mapping) for row in rows]


def as_user(service, actor: dict[str, Any] | None = USER):
    service.actor = ActorInfo({"actor": actor} if actor else {})
    return service


def test_a_purchase_names_its_buyer_and_never_the_card(service, db) -> None:
    result = buy(as_user(service), seats=3)
    receipt = result["payment"]["receipt_number"]
    [purchase] = trail(db)
    assert purchase["action"] == "purchase" and purchase["actor"] == USER
    assert purchase["target"] == {"type": "payment", "id": receipt}
    assert purchase["details"] == {
        "receipt_number": receipt,
        "plan": "cad-m",
        "seats": 3,
        "amount": 14700,
        "currency": "EUR",
        "kind": "new",
        "automatic": False,
    }
    dumped = json.dumps(purchase)
    assert "4242" not in dumped and OK_CARD["cvc"] not in dumped


def test_a_declined_purchase_records_nothing(service, db) -> None:
    raises_code("card_declined", buy, as_user(service), {**OK_CARD, "number": "4000000000000002"})
    assert trail(db) == []


def test_a_repeated_purchase_is_recorded_once(service, db) -> None:
    as_user(service)
    first = buy(service, request_key="buy-1")
    assert buy(service, request_key="buy-1") == first
    assert [e["action"] for e in trail(db)] == ["purchase"]


def test_automatic_renewals_are_the_systems(service, db, licensing, clock) -> None:
    reference = bought_and_licensed(as_user(service), licensing)["recurring_payment"]["id"]
    as_user(service, None)
    [recurring] = service.list_recurring_payments(CUSTOMER)
    clock.at = datetime.fromisoformat(recurring["next_charge_at"])
    assert service.run_renewals()["succeeded"] == 1
    assert service.run_renewals()["succeeded"] == 0  # nothing twice
    bought, renewed = trail(db)
    assert bought["actor"] == USER
    assert renewed["actor"] == {"type": "system"}
    assert (renewed["details"]["kind"], renewed["details"]["automatic"]) == ("renewal", True)
    assert renewed["details"]["plan"] == "cad-m" and reference


def test_a_renewal_bought_by_hand_is_a_purchase_of_kind_renewal(service, db, licensing) -> None:
    license_id = licensing.issue_for("R-x", CUSTOMER, T0 + timedelta(days=10))["license"][
        "license_id"
    ]
    buy(as_user(service), license_id=license_id)
    [renewal] = trail(db)
    assert (renewal["details"]["kind"], renewal["details"]["automatic"]) == ("renewal", False)
    assert licensing.calls[-1] == "get_license"  # asked without the password (conftest)


def test_a_lost_answer_settled_by_a_later_pass_still_names_the_buyer(
    db, events, clock, licensing
) -> None:
    ledger = MemoryLedger()
    losing = billing_worker(
        db=db, events=events, clock=clock, provider=LosingProvider(ledger), licensing=licensing
    )
    losing.create_plan(
        {"code": "cad-m", "product_code": "CADPRO", "amount": 4900, "currency": "EUR",
         "interval": "month"}
    )  # fmt: skip
    raises_code("payment_unconfirmed", buy, as_user(losing))
    assert trail(db) == []
    healthy = billing_worker(
        db=db, events=events, clock=clock, provider=SandboxProvider(ledger), licensing=licensing
    )
    assert healthy.run_renewals()["reconciled"] == 1  # the timer, acting as nobody
    [purchase] = trail(db)
    assert purchase["actor"] == USER and purchase["details"]["automatic"] is False


def test_an_offline_payment_is_staffs_purchase_of_kind_offline(service, db) -> None:
    payment = service.record_offline_payment(
        {"customer_id": CUSTOMER, "amount": 120000, "currency": "EUR", "description": "phone"}
    )
    [purchase] = trail(db)
    assert purchase["actor"] == {"type": "staff"}
    assert purchase["details"] == {
        "receipt_number": payment["receipt_number"],
        "plan": None,
        "seats": None,
        "amount": 120000,
        "currency": "EUR",
        "kind": "offline",
        "automatic": False,
    }


def test_recurring_payment_changes_are_recorded_once_each(service, db, licensing) -> None:
    as_user(service)
    reference = bought_and_licensed(service, licensing)["recurring_payment"]["id"]
    service.resume_recurring_payment(reference, CUSTOMER)  # active: nothing to resume
    keyed(service, "cancel-1", "cancel_recurring_payment")
    service.cancel_recurring_payment(reference, CUSTOMER)
    service.cancel_recurring_payment(reference, CUSTOMER)  # redelivered
    keyed(service, None, "x")
    service.cancel_recurring_payment(reference, CUSTOMER)  # cancelled already
    service.resume_recurring_payment(reference, CUSTOMER)
    keyed(service, "card-1", "replace_card")
    service.replace_card(reference, CUSTOMER, MASTERCARD)
    service.replace_card(reference, CUSTOMER, MASTERCARD)  # redelivered
    events = trail(db)
    assert [e["action"] for e in events] == [
        "purchase",
        "recurring_payment_cancelled",
        "recurring_payment_resumed",
        "recurring_payment_card_changed",
    ]
    assert all(e["actor"] == USER for e in events)
    assert all(e["target"] == {"type": "recurring_payment", "id": reference} for e in events[1:])
    changed = events[-1]["details"]
    assert changed["card_brand"] == "mastercard" and changed["card_last4"] == "4444"
    assert "5555 5555" not in json.dumps(events) and "5555555555554444" not in json.dumps(events)


def test_a_declined_card_change_records_nothing(service, db, licensing) -> None:
    reference = bought_and_licensed(as_user(service), licensing)["recurring_payment"]["id"]
    declined = {**MASTERCARD, "number": "4000000000000002"}
    raises_code("card_declined", service.replace_card, reference, CUSTOMER, declined)
    assert [e["action"] for e in trail(db)] == ["purchase"]


def test_staff_cancelling_is_staff_in_the_trail(service, db, licensing) -> None:
    reference = bought_and_licensed(service, licensing)["recurring_payment"]["id"]
    service.actor = ActorInfo({"actor": {"type": "staff"}})
    service.cancel_recurring_payment(reference)
    assert trail(db)[-1]["actor"] == {"type": "staff"}


def test_billing_details_changes_name_the_fields(service, db) -> None:
    as_user(service)
    service.update_billing_details(CUSTOMER, DETAILS)
    service.update_billing_details(CUSTOMER, DETAILS)  # the same again: no change
    service.update_billing_details(CUSTOMER, {**DETAILS, "vat_id": "ATU12345678"})
    first, second = trail(db)
    assert first["action"] == second["action"] == "billing_details_changed"
    assert first["target"] == {"type": "billing_details", "id": CUSTOMER}
    assert first["details"]["fields"] == ["company_name", "address"]
    assert second["details"] == {
        "fields": ["vat_id"],
        "company_name": "Acme GmbH",
        "vat_id": "ATU12345678",
    }


def test_no_purchase_is_committed_without_its_audit_row(service, db, monkeypatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the audit insert failed")

    monkeypatch.setattr(audit, "record", broken)
    with pytest.raises(RuntimeError):
        service.update_billing_details(CUSTOMER, DETAILS)
    monkeypatch.undo()
    assert service.get_billing_details(CUSTOMER)["company_name"] is None
    assert trail(db) == [] and count(db, Payment) == 0


# --- reading ------------------------------------------------------------------------------


def test_pages_and_filters(service, db, clock) -> None:
    for number in range(5):
        clock.advance(minutes=1)
        as_user(service, USER if number % 2 == 0 else None)
        service.update_billing_details(CUSTOMER, {**DETAILS, "company_name": f"Acme {number}"})
    service.request = RequestInfo(None, "billing.test")
    first = service.list_audit_events(CUSTOMER, {"limit": 2})
    cursor = encode_cursor(datetime.fromisoformat(first[-1]["at"]), first[-1]["event_id"])
    second = service.list_audit_events(CUSTOMER, {"limit": 2, "before": cursor})
    cursor = encode_cursor(datetime.fromisoformat(second[-1]["at"]), second[-1]["event_id"])
    third = service.list_audit_events(CUSTOMER, {"limit": 2, "before": cursor})
    names = [e["details"]["company_name"] for e in first + second + third]
    assert names == [f"Acme {n}" for n in (4, 3, 2, 1, 0)]
    mine = service.list_audit_events(CUSTOMER, {"user_id": "U-AAAA-BBBB"})
    assert [e["details"]["company_name"] for e in mine] == ["Acme 4", "Acme 2", "Acme 0"]
    assert service.list_audit_events(CUSTOMER, {"action": "purchase"}) == []
    since = (T0 + timedelta(minutes=4)).isoformat()
    assert len(service.list_audit_events(CUSTOMER, {"since": since})) == 2
    assert service.list_audit_events(OTHER, {}) == []
    error = raises_code("validation_error", service.list_audit_events, CUSTOMER, {"limit": 500})
    assert "limit" in error.details["fields"]
