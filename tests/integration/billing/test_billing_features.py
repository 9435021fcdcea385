"""Features on the real bus and PostgreSQL: a plan's features are checked against the
product's (licensing's `get_product`), remembered on each payment, and carried in
`payment_succeeded`'s `purchase.features` for a purchase and for its renewal."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from common.errors import PortalError
from tests.integration.billing.conftest import OK_CARD, PRODUCTS, license_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

FEATURES = [{"code": "dynamics", "name": "Dynamic analysis"}, {"code": "steel", "name": "Steel"}]


@pytest.fixture
def featured(monkeypatch) -> None:
    """licensing's cadpro has two features while the test runs."""
    monkeypatch.setitem(PRODUCTS, "cadpro", {**PRODUCTS["cadpro"], "features": FEATURES})


def new_plan(rpc, features: list[str]) -> dict:
    body = {
        "code": f"cad-{uuid.uuid4().hex[:8]}",
        "product_code": "cadpro",
        "amount": 4900,
        "currency": "EUR",
        "interval": "month",
        "features": features,
    }
    return rpc.call("billing", "create_plan", body)


def test_a_plan_names_only_its_products_features(rpc, billing, licensing, featured) -> None:
    with pytest.raises(PortalError) as caught:
        new_plan(rpc, ["steel", "wind"])
    assert caught.value.code == "unknown_feature"
    assert caught.value.details["feature"] == "wind"
    plan = new_plan(rpc, ["steel", "DYNAMICS"])
    assert plan["features"] == ["dynamics", "steel"]
    listed = {item["code"]: item for item in rpc.call("billing", "list_plans")}
    assert listed[plan["code"]]["features"] == ["dynamics", "steel"]


def test_a_purchase_and_its_renewal_carry_the_plans_features(
    rpc, billing, licensing, featured, sql, billing_events
) -> None:
    plan = new_plan(rpc, ["steel"])
    who = "C" + uuid.uuid4().hex[:7].upper()
    bought = rpc.call(
        "billing", "purchase", who, {"plan": plan["code"], "seats": 2, "card": OK_CARD}
    )
    receipt = bought["payment"]["receipt_number"]
    [event] = [e for e in billing_events.wait_for("payment_succeeded") if e["customer_id"] == who]
    assert event["purchase"]["features"] == ["steel"]
    [(stored,)] = sql("SELECT features FROM payments WHERE receipt_number = :r", r=receipt)
    assert stored == ["steel"]
    license = license_for(rpc, receipt, who)
    as_of = (datetime.now(UTC) + timedelta(days=40)).isoformat()
    assert rpc.call("billing", "run_renewals", as_of)["succeeded"] >= 1

    def renewal(events) -> list[dict]:
        return [
            e
            for e in events.of("payment_succeeded")
            if e["customer_id"] == who and e["purchase"]["kind"] == "renewal"
        ]

    billing_events.wait_until(lambda events: len(renewal(events)) == 1)
    [renewed] = renewal(billing_events)
    assert renewed["purchase"]["license_id"] == license["license_id"]
    assert renewed["purchase"]["features"] == ["steel"]
