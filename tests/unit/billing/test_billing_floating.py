"""Floating plans (DESIGN §13): a plan's license model, lease period and borrowing limit,
checked, remembered on the payment like features, and carried in `payment_succeeded`'s
`purchase` (new purchases and renewals); a renewal keeps the license's model."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import select

from services.billing import domain
from services.billing.models import Payment
from tests.unit.billing.conftest import CUSTOMER, OK_CARD, bought_and_licensed, raises_code

TERMS = ("model", "lease_seconds", "max_borrow_days")


def plan(**changes: Any) -> dict[str, Any]:
    return {
        "code": "cad-float",
        "product_code": "cadpro",
        "amount": 12900,
        "currency": "EUR",
        "interval": "month",
        **changes,
    }


def terms(view: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(view[name] for name in TERMS)


def test_a_floating_plan_keeps_its_lease_period_and_borrowing_limit(service) -> None:
    created = service.create_plan(plan(model="floating", lease_seconds=600, max_borrow_days=0))
    assert terms(created) == ("floating", 600, 0)  # 0: borrowing not allowed
    listed = {item["code"]: item for item in service.list_plans()}
    assert terms(listed["cad-float"]) == ("floating", 600, 0)
    assert terms(listed["cad-m"]) == ("node_locked", None, None)  # the fixture's plan
    staff = {item["code"]: item for item in service.list_plans(include_inactive=True)}
    assert terms(staff["cad-float"]) == ("floating", 600, 0)


def test_a_floating_plan_without_numbers_gets_licensings_defaults(service) -> None:
    assert terms(service.create_plan(plan(model="floating"))) == ("floating", 900, 7)
    assert terms(service.create_plan(plan(code="cad-nl"))) == ("node_locked", None, None)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"model": "concurrent"}, "model"),
        ({"model": "floating", "lease_seconds": 59}, "lease_seconds"),
        ({"model": "floating", "lease_seconds": 86_401}, "lease_seconds"),
        ({"model": "floating", "lease_seconds": "900"}, "lease_seconds"),
        ({"model": "floating", "max_borrow_days": -1}, "max_borrow_days"),
        ({"model": "floating", "max_borrow_days": 91}, "max_borrow_days"),
        # the numbers belong to floating plans only, named or by default
        ({"model": "node_locked", "lease_seconds": 900}, "lease_seconds"),
        ({"max_borrow_days": 7}, "max_borrow_days"),
    ],
)
def test_a_model_or_number_out_of_bounds_is_refused_by_its_field(
    service, changes: dict[str, Any], field: str
) -> None:
    error = raises_code("validation_error", service.create_plan, plan(**changes))
    assert field in error.details["fields"], error.details
    assert [item["code"] for item in service.list_plans(include_inactive=True)] == ["cad-m"]


def test_the_bounds_themselves_are_accepted(service) -> None:
    low = service.create_plan(plan(model="floating", lease_seconds=60, max_borrow_days=90))
    high = service.create_plan(plan(code="cad-hi", model="floating", lease_seconds=86_400))
    assert (terms(low), terms(high)) == (("floating", 60, 90), ("floating", 86_400, 7))


def test_a_purchase_remembers_the_plans_model_and_its_event_carries_it(service, db, events) -> None:
    service.create_plan(plan(model="floating", lease_seconds=300, max_borrow_days=3))
    bought = service.purchase(CUSTOMER, {"plan": "cad-float", "seats": 10, "card": OK_CARD})
    [event] = events.of("payment_succeeded")
    assert terms(event["purchase"]) == ("floating", 300, 3)
    assert (event["purchase"]["kind"], event["purchase"]["seats"]) == ("new", 10)
    with db.transaction() as session:
        payment = session.scalars(
            select(Payment).where(Payment.receipt_number == bought["payment"]["receipt_number"])
        ).one()
        assert (payment.model, payment.lease_seconds, payment.max_borrow_days) == (
            "floating",
            300,
            3,
        )


def test_a_renewal_of_a_floating_license_carries_its_plans_model(
    service, licensing, clock, events
) -> None:
    service.create_plan(plan(model="floating"))
    bought = bought_and_licensed(service, licensing, plan="cad-float", seats=2)
    license_id = next(iter(licensing.licenses))
    licensing.licenses[license_id]["model"] = "floating"
    # bought by hand: the floating license renews with its floating plan
    renewed = service.purchase(
        CUSTOMER,
        {"plan": "cad-float", "seats": 2, "card": OK_CARD, "license_id": license_id},
    )
    assert renewed["payment"]["kind"] == "renewal"
    assert terms(events.of("payment_succeeded")[-1]["purchase"]) == ("floating", 900, 7)
    # and automatically
    clock.at = datetime.fromisoformat(renewed["recurring_payment"]["next_charge_at"])
    assert service.run_renewals()["succeeded"] == 1
    renewal = events.of("payment_succeeded")[-1]["purchase"]
    assert (renewal["kind"], renewal["license_id"]) == ("renewal", license_id)
    assert terms(renewal) == ("floating", 900, 7)
    assert bought["payment"]["receipt_number"] != renewed["payment"]["receipt_number"]


def test_a_renewal_with_a_plan_of_the_other_model_is_refused_before_any_charge(
    service, licensing, events
) -> None:
    service.create_plan(plan(model="floating"))
    bought_and_licensed(service, licensing, seats=2)  # the node-locked plan cad-m
    license_id = next(iter(licensing.licenses))  # licensing names no model: node-locked
    renew = {"plan": "cad-float", "seats": 2, "card": OK_CARD, "license_id": license_id}
    error = raises_code("validation_error", service.purchase, CUSTOMER, renew)
    assert error.details["fields"] == {"plan": ["This plan is not for node-locked licenses."]}
    licensing.licenses[license_id]["model"] = "floating"
    error = raises_code("validation_error", service.purchase, CUSTOMER, {**renew, "plan": "cad-m"})
    assert error.details["fields"] == {"plan": ["This plan is not for floating licenses."]}
    assert len(events.of("payment_succeeded")) == 1  # only the first purchase


def test_an_order_written_before_floating_licenses_reads_as_node_locked() -> None:
    order = domain.Order(
        kind="new",
        customer_id=CUSTOMER,
        plan="cad-m",
        product_code="cadpro",
        interval="month",
        seats=1,
        unit_amount=4900,
        amount=4900,
        currency="EUR",
        period_start="2026-03-10T09:00:00+00:00",
        period_end="2026-04-10T09:00:00+00:00",
        license_id=None,
        card={},
    )
    raw = json.loads(order.to_json())
    for name in TERMS:
        del raw[name]
    old = domain.Order.from_json(json.dumps(raw))
    assert (old.model, old.lease_seconds, old.max_borrow_days) == ("node_locked", None, None)


def test_license_terms_fill_in_only_floating_numbers() -> None:
    assert domain.license_terms(None, 900, 7) == domain.LicenseTerms()
    assert domain.license_terms("node_locked", 900, 7).to_dict() == {
        "model": "node_locked",
        "lease_seconds": None,
        "max_borrow_days": None,
    }
    assert domain.license_terms("floating", 120) == domain.LicenseTerms("floating", 120, 7)
