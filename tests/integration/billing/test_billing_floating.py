"""Floating plans on the real bus and PostgreSQL: a plan's license model, lease period and
borrowing limit are stored, remembered on each payment and carried in `payment_succeeded`'s
`purchase` (licensing issues the license so); a renewal with a plan of the other model is
refused before any charge."""

from __future__ import annotations

import uuid

import pytest

from common.errors import PortalError
from tests.integration.billing.conftest import LICENSES, OK_CARD, license_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]


def new_plan(rpc, **terms) -> dict:
    body = {
        "code": f"cad-{uuid.uuid4().hex[:8]}",
        "product_code": "cadpro",
        "amount": 4900,
        "currency": "EUR",
        "interval": "month",
        **terms,
    }
    return rpc.call("billing", "create_plan", body)


def test_a_floating_purchase_carries_its_plans_terms_to_licensing(
    rpc, billing, licensing, sql, billing_events
) -> None:
    with pytest.raises(PortalError) as caught:
        new_plan(rpc, lease_seconds=900)  # a node-locked plan has no lease period
    assert caught.value.code == "validation_error"
    assert "lease_seconds" in caught.value.details["fields"]
    plan = new_plan(rpc, model="floating", lease_seconds=600)
    assert (plan["model"], plan["lease_seconds"], plan["max_borrow_days"]) == ("floating", 600, 7)
    who = "C" + uuid.uuid4().hex[:7].upper()
    bought = rpc.call(
        "billing", "purchase", who, {"plan": plan["code"], "seats": 5, "card": OK_CARD}
    )
    receipt = bought["payment"]["receipt_number"]
    [event] = [e for e in billing_events.wait_for("payment_succeeded") if e["customer_id"] == who]
    purchase = event["purchase"]
    assert (purchase["model"], purchase["lease_seconds"], purchase["max_borrow_days"]) == (
        "floating",
        600,
        7,
    )
    [row] = sql(
        "SELECT model, lease_seconds, max_borrow_days FROM payments WHERE receipt_number = :r",
        r=receipt,
    )
    assert tuple(row) == ("floating", 600, 7)
    # the license licensing issued for it is floating: a node-locked plan cannot renew it
    license = license_for(rpc, receipt, who)
    LICENSES[license["license_id"]]["model"] = "floating"
    other = new_plan(rpc)
    renew = {
        "plan": other["code"],
        "seats": 2,  # the license's (license_for issues 2)
        "card": OK_CARD,
        "license_id": license["license_id"],
    }
    with pytest.raises(PortalError) as caught:
        rpc.call("billing", "purchase", who, renew)
    assert caught.value.details["fields"] == {"plan": ["This plan is not for floating licenses."]}
