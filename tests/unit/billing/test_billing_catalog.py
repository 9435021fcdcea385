"""Plans: only for products licensing sells, canonical codes, archived and back on sale."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import pytest

from common.errors import ServiceUnavailable
from services.billing.models import Charge, Plan
from tests.unit.billing.conftest import (
    CUSTOMER,
    OK_CARD,
    T0,
    bought_and_licensed,
    buy,
    count,
    keyed,
    raises_code,
)


def plan(**changes: Any) -> dict[str, Any]:
    return {
        "code": "cad-y",
        "product_code": "cadpro",
        "amount": 49000,
        "currency": "EUR",
        "interval": "year",
        **changes,
    }


def test_a_plan_names_a_product_licensing_sells(service, db, licensing) -> None:
    raises_code("product_not_found", service.create_plan, plan(product_code="CAD-PRO"))
    licensing.products["old"] = {"code": "old", "name": "Old CAD", "active": False}
    error = raises_code("product_archived", service.create_plan, plan(product_code="OLD"))
    assert error.details == {"product_code": "old"}
    assert count(db, Plan) == 1  # the fixture's plan only


def test_codes_are_canonical_and_the_plan_carries_the_product_name(service, licensing) -> None:
    licensing.products["cad-pro"] = {"code": "cad-pro", "name": "CAD Professional"}
    created = service.create_plan(plan(code=" CAD-Pro-Yearly ", product_code="CAD-PRO"))
    assert (created["code"], created["product_code"]) == ("cad-pro-yearly", "cad-pro")
    assert created["product"] == {"code": "cad-pro", "name": "CAD Professional"}
    assert created["price"] == created["amount_formatted"] == "€490.00"
    raises_code("plan_exists", service.create_plan, plan(code="cad-PRO-yearly"))
    bought = service.purchase(CUSTOMER, {"plan": "CAD-PRO-YEARLY", "seats": 1, "card": OK_CARD})
    assert bought["payment"]["plan"] == "cad-pro-yearly"
    assert bought["payment"]["description"] == ("CAD Professional, 1 seat, yearly")


@pytest.mark.parametrize("code", ["cad y", "-cad", "", "   ", "c" * 65, "cäd"])
def test_a_code_that_cannot_be_canonical_is_named(service, code) -> None:
    error = raises_code("validation_error", service.create_plan, plan(code=code))
    assert "code" in error.details["fields"]


def test_an_archived_plan_is_off_sale_at_once_and_its_recurring_payments_go_on(
    service, licensing, clock
) -> None:
    result = bought_and_licensed(service, licensing)
    archived = service.archive_plan("CAD-M")
    assert (archived["active"], archived["archived_at"]) == (False, T0.isoformat())
    assert service.archive_plan("cad-m")["archived_at"] == T0.isoformat()  # again: the same
    assert service.list_plans() == []
    assert [p["code"] for p in service.list_plans(include_inactive=True)] == ["cad-m"]
    error = raises_code("validation_error", buy, service)
    assert "plan" in error.details["fields"]
    clock.at = datetime.fromisoformat(result["recurring_payment"]["next_charge_at"])
    assert service.run_renewals()["succeeded"] == 1  # the subscription is not the catalog
    unarchived = service.unarchive_plan(" cad-m ")
    assert (unarchived["active"], unarchived["archived_at"]) == (True, None)
    assert [p["code"] for p in service.list_plans()] == ["cad-m"]
    raises_code("plan_not_found", service.archive_plan, "nope")
    raises_code("validation_error", service.unarchive_plan, "no pe")


def test_the_catalog_lists_plans_whose_product_licensing_still_sells(service, licensing) -> None:
    licensing.products["cam"] = {"code": "cam", "name": "CAM Suite", "active": True}
    service.create_plan(plan(code="cam-y", product_code="CAM"))
    listed = service.list_plans()
    assert [(p["code"], p["product"]["name"]) for p in listed] == [
        ("cad-m", "CAD Pro"),
        ("cam-y", "CAM Suite"),
    ]
    licensing.products["cam"]["active"] = False  # archived in licensing
    licensing.products["cadpro"]["name"] = "CAD Pro 2027"  # licensing's name is the name
    assert [(p["code"], p["product"]["name"]) for p in service.list_plans()] == [
        ("cad-m", "CAD Pro 2027")
    ]
    licensing.calls.clear()
    assert len(service.list_plans(include_inactive=True)) == 2
    assert licensing.calls == []  # staff's full list does not ask


def test_the_catalog_stands_while_licensing_is_away(service, licensing, caplog) -> None:
    """licensing not answering: every active plan, with the product name stored with it."""
    service.create_plan(plan(code="cad-y", interval="year", amount=49000))
    service.archive_plan("cad-y")
    listed = service.list_plans()

    def away() -> list[dict[str, Any]]:
        raise ServiceUnavailable(details={"service": "licensing"})

    licensing.list_products = away
    with caplog.at_level(logging.INFO, logger="services.billing.service"):
        assert service.list_plans() == listed
    assert [(p["code"], p["product"]["name"]) for p in listed] == [("cad-m", "CAD Pro")]
    [line] = [r for r in caplog.records if r.name == "services.billing.service"]
    assert line.levelno == logging.INFO and not line.exc_info


def test_nothing_is_charged_for_a_product_licensing_stopped_selling(
    service, db, licensing, provider
) -> None:
    licensing.products["cadpro"]["active"] = False
    error = raises_code("product_archived", buy, service)
    assert error.details == {"product_code": "cadpro"}
    del licensing.products["cadpro"]
    raises_code("product_not_found", buy, service)
    assert count(db, Charge) == 0 and provider.ledger.records == {}


def test_a_redelivered_create_or_archive_changes_nothing_twice(service, db, events) -> None:
    keyed(service, "portalctl-run-1", "create_plan")
    first = service.create_plan(plan())
    assert service.create_plan(plan()) == first  # redelivered: the first answer
    assert count(db, Plan) == 2
    error = raises_code("idempotency_key_reused", service.create_plan, plan(amount=1))
    assert error.details == {"operation": "billing.create_plan"}
    keyed(service, "portalctl-run-2", "archive_plan")
    assert service.archive_plan("cad-y")["active"] is False
    keyed(service, "portalctl-run-3", "unarchive_plan")
    assert service.unarchive_plan("cad-y")["active"] is True
    keyed(service, "portalctl-run-2", "archive_plan")  # the archive redelivered late
    assert service.archive_plan("cad-y")["active"] is False  # its answer, not a new archive
    assert [p["code"] for p in service.list_plans()] == ["cad-m", "cad-y"]


def test_plans_made_inactive_at_creation_are_archived(service) -> None:
    created = service.create_plan(plan(active=False))
    assert created["active"] is False and created["archived_at"] == T0.isoformat()
    assert [p["code"] for p in service.list_plans()] == ["cad-m"]
