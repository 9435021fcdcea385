"""Features a plan grants: checked against the product's, remembered on the payment and
carried in `payment_succeeded`'s `purchase.features` (new purchases and renewals)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import select, update

from services.billing.models import Payment, Plan
from tests.unit.billing.conftest import CUSTOMER, OK_CARD, bought_and_licensed, raises_code

FEATURES = [{"code": "dynamics", "name": "Dynamic analysis"}, {"code": "steel", "name": "Steel"}]


@pytest.fixture
def licensing(licensing):
    licensing.products["cadpro"] = {**licensing.products["cadpro"], "features": FEATURES}
    return licensing


def plan(**changes: Any) -> dict[str, Any]:
    return {
        "code": "cad-steel",
        "product_code": "cadpro",
        "amount": 7900,
        "currency": "EUR",
        "interval": "month",
        **changes,
    }


def test_a_plan_grants_features_of_its_product_sorted_once(service) -> None:
    created = service.create_plan(plan(features=["STEEL", "dynamics", "steel"]))
    assert created["features"] == ["dynamics", "steel"]
    listed = {item["code"]: item for item in service.list_plans()}
    assert listed["cad-steel"]["features"] == ["dynamics", "steel"]
    assert listed["cad-m"]["features"] == []  # the fixture's plan grants none
    staff = {item["code"]: item for item in service.list_plans(include_inactive=True)}
    assert staff["cad-steel"]["features"] == ["dynamics", "steel"]


def test_a_feature_the_product_lacks_is_refused_by_its_code(service, db, licensing) -> None:
    error = raises_code("unknown_feature", service.create_plan, plan(features=["steel", "wind"]))
    assert error.details == {"feature": "wind", "product_code": "cadpro"}
    assert "'wind'" in error.message
    assert service.list_plans(include_inactive=True)[0]["code"] == "cad-m"  # nothing made
    # a product licensing lists without features (an older licensing) has none to grant
    licensing.products["cam"] = {"code": "cam", "name": "CAM", "active": True}
    raises_code(
        "unknown_feature", service.create_plan, plan(product_code="cam", features=["steel"])
    )
    raises_code("validation_error", service.create_plan, plan(features="steel"))
    raises_code("validation_error", service.create_plan, plan(features=["no spaces"]))


def test_a_purchase_remembers_the_plans_features_and_its_event_carries_them(
    service, db, licensing, events
) -> None:
    service.create_plan(plan(features=["steel"]))
    bought = service.purchase(CUSTOMER, {"plan": "cad-steel", "seats": 1, "card": OK_CARD})
    [event] = events.of("payment_succeeded")
    assert event["purchase"]["features"] == ["steel"]
    # the plan changes later: the receipt keeps what was bought
    with db.transaction() as session:
        session.execute(update(Plan).where(Plan.code == "cad-steel").values(features=[]))
    with db.transaction() as session:
        payment = session.scalars(
            select(Payment).where(Payment.receipt_number == bought["payment"]["receipt_number"])
        ).one()
        assert payment.features == ["steel"]


def test_a_renewal_carries_its_plans_features(service, db, licensing, clock, events) -> None:
    service.create_plan(plan(features=["dynamics", "steel"]))
    bought = bought_and_licensed(service, licensing, plan="cad-steel", seats=2)
    license_id = bought["payment"]["license_id"] or next(iter(licensing.licenses))
    clock.at = datetime.fromisoformat(bought["recurring_payment"]["next_charge_at"])
    assert service.run_renewals()["succeeded"] == 1
    renewal = events.of("payment_succeeded")[-1]["purchase"]
    assert (renewal["kind"], renewal["license_id"]) == ("renewal", license_id)
    assert renewal["features"] == ["dynamics", "steel"]


def test_an_offline_payment_grants_no_features(service, events) -> None:
    recorded = service.record_offline_payment(
        {"customer_id": CUSTOMER, "amount": 1000, "currency": "EUR", "description": "Phone"}
    )
    assert recorded["plan"] is None
    assert events.of("payment_succeeded") == []  # it buys no license, so no features
