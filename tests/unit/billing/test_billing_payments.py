"""Purchases that check before charging, canonical identifiers, receipts that are invoices,
billing details, and payment history in pages."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from nameko import config as nameko_config

from services.billing.models import Charge, Payment, RecurringPayment
from tests.unit.billing.conftest import (
    CUSTOMER,
    OK_CARD,
    OTHER,
    T0,
    bought_and_licensed,
    buy,
    count,
    keyed,
    raises_code,
)

ACME = {"company_name": "Acme GmbH", "address": "Main St 1\n1010 Vienna", "vat_id": "atu12345678"}


# --- purchases check before they charge ----------------------------------------------------


def test_a_suspended_license_is_not_renewed(service, db, licensing, provider) -> None:
    result = bought_and_licensed(service, licensing)
    license_id = service.list_payments(CUSTOMER)[0]["license_id"]
    licensing.licenses[license_id]["status"] = "suspended"
    error = raises_code("license_suspended", buy, service, license_id=license_id)
    assert error.details == {"license_id": license_id}
    assert count(db, Charge) == 1 and len(provider.ledger.charges()) == 1
    assert service.list_recurring_payments(CUSTOMER)[0]["id"] == result["recurring_payment"]["id"]


def test_a_perpetual_license_is_not_renewed(service, db, licensing, provider) -> None:
    """A perpetual license needs no renewal: refused before any charge, no recurring payment."""
    result = bought_and_licensed(service, licensing)
    license_id = service.list_payments(CUSTOMER)[0]["license_id"]
    licensing.licenses[license_id]["expires_at"] = None  # made perpetual by staff
    error = raises_code("validation_error", buy, service, license_id=license_id)
    assert error.details["fields"] == {"license_id": ["A perpetual license needs no renewal."]}
    assert count(db, Charge) == 1 and len(provider.ledger.charges()) == 1
    assert count(db, RecurringPayment) == 1
    [recurring] = service.list_recurring_payments(CUSTOMER)
    assert recurring["next_charge_at"] == result["recurring_payment"]["next_charge_at"]


def test_renewing_a_license_that_renews_itself_moves_its_next_charge(
    service, db, licensing
) -> None:
    result = bought_and_licensed(service, licensing)
    license_id = service.list_payments(CUSTOMER)[0]["license_id"]
    # typed in lower case with spaces: the same license, the same recurring payment
    renewed = buy(service, license_id=f" {license_id.lower()} ")
    assert renewed["payment"]["license_id"] == license_id
    moved = renewed["recurring_payment"]
    assert moved["id"] == result["recurring_payment"]["id"]
    assert moved["next_charge_at"] == renewed["payment"]["period_end"]
    assert moved["next_charge_at"] > result["recurring_payment"]["next_charge_at"]
    assert count(db, RecurringPayment) == 1
    [listed] = service.list_recurring_payments(CUSTOMER)
    assert listed["next_charge_at"] == moved["next_charge_at"]


def test_identifiers_in_any_case_reach_the_same_records(service, licensing, events) -> None:
    bought = service.purchase(" c1000001 ", {"plan": "CAD-M", "seats": 1, "card": OK_CARD})
    receipt = bought["payment"]["receipt_number"]
    assert events.of("payment_succeeded")[0]["customer_id"] == CUSTOMER
    assert [p["receipt_number"] for p in service.list_payments("c1000001")] == [receipt]
    assert service.get_receipt(receipt.lower(), " c1000001")["receipt_number"] == receipt
    assert service.list_recurring_payments("C1000001 ")[0]["customer_id"] == CUSTOMER
    # licensing's events name them in any case too
    event = licensing.issue_for(receipt, "c1000001", T0 + timedelta(days=31))
    event["receipt_number"] = receipt.lower()
    event["license"]["license_id"] = event["license"]["license_id"].lower()
    service.on_license_issued(event)
    assert service.list_payments(CUSTOMER)[0]["license_id"] == "L-0001"
    assert service.list_recurring_payments(CUSTOMER)[0]["license_id"] == "L-0001"


@pytest.mark.parametrize("customer_id", ["", "   ", None, 7, "C" * 65])
def test_a_customer_id_that_is_no_id_is_named(service, customer_id) -> None:
    error = raises_code("validation_error", service.list_payments, customer_id)
    assert "customer_id" in error.details["fields"]


def test_the_request_key_of_the_rpc_request_makes_a_redelivery_charge_once(
    service, db, provider
) -> None:
    keyed(service, "rpc:correlation-1", "purchase")
    first = buy(service)
    assert buy(service) == first  # the same message, delivered again
    assert count(db, Payment) == 1 and len(provider.ledger.charges()) == 1
    raises_code("idempotency_key_reused", buy, service, OK_CARD, 3)
    # a payload's own key (an older gateway's) wins over the request's
    assert buy(service, request_key="order-1")["payment"] != first["payment"]
    assert count(db, Payment) == 2
    # keys are per company: another company's request with the same key is its own
    other = service.purchase(OTHER, {"plan": "cad-m", "seats": 2, "card": OK_CARD})
    assert other["payment"]["receipt_number"] != first["payment"]["receipt_number"]


# --- history in pages -----------------------------------------------------------------------


def test_payment_history_comes_in_pages(service, clock) -> None:
    receipts = []
    for _ in range(5):
        receipts.append(buy(service)["payment"]["receipt_number"])
        clock.advance(minutes=1)
    newest_first = receipts[::-1]
    page = service.list_payments(CUSTOMER, limit=2)
    assert [p["receipt_number"] for p in page] == newest_first[:2]
    page = service.list_payments(CUSTOMER, 2, page[-1]["receipt_number"].lower())
    assert [p["receipt_number"] for p in page] == newest_first[2:4]
    page = service.list_payments(CUSTOMER, limit=2, before=page[-1]["receipt_number"])
    assert [p["receipt_number"] for p in page] == newest_first[4:]
    assert service.list_payments(CUSTOMER, before=newest_first[-1]) == []
    for limit in (0, 201, "5", None, 2.5):
        error = raises_code("validation_error", service.list_payments, CUSTOMER, limit)
        assert "limit" in error.details["fields"]
    for before in ("R-2026-999999", "x" * 33, 5):
        error = raises_code("validation_error", service.list_payments, CUSTOMER, 2, before)
        assert "before" in error.details["fields"]
    # another company's receipt is no place in this company's history
    error = raises_code("validation_error", service.list_payments, OTHER, 2, receipts[0])
    assert "before" in error.details["fields"]


def test_history_pages_hold_fifty_unless_asked(service, db) -> None:
    service.create_plan(
        {"code": "cheap", "product_code": "cadpro", "amount": 1, "currency": "EUR",
         "interval": "month"}
    )  # fmt: skip
    for _ in range(51):
        service.purchase(CUSTOMER, {"plan": "cheap", "seats": 1, "card": OK_CARD})
    assert len(service.list_payments(CUSTOMER)) == 50
    assert len(service.list_payments(CUSTOMER, limit=200)) == 51


def test_staff_list_every_payment_by_status_and_company(service, clock) -> None:
    mine = buy(service)["payment"]["receipt_number"]
    clock.advance(minutes=1)
    offline = service.record_offline_payment(
        {"customer_id": "c2000002", "amount": 120000, "currency": "EUR", "description": "Phone"}
    )["receipt_number"]
    clock.advance(minutes=1)
    theirs = service.purchase(OTHER, {"plan": "cad-m", "seats": 1, "card": OK_CARD})
    theirs = theirs["payment"]["receipt_number"]
    everything = service.list_all_payments()
    assert [p["receipt_number"] for p in everything] == [theirs, offline, mine]
    assert [p["customer_id"] for p in everything] == [OTHER, OTHER, CUSTOMER]
    assert [p["channel"] for p in everything] == ["portal", "offline", "portal"]
    listed = service.list_all_payments(customer_id=" c2000002 ", limit=1)
    assert [p["receipt_number"] for p in listed] == [theirs]
    listed = service.list_all_payments(None, "C2000002", 1, theirs)
    assert [p["receipt_number"] for p in listed] == [offline]
    assert service.list_all_payments(status="refunded") == []
    error = raises_code("validation_error", service.list_all_payments, "void")
    assert "status" in error.details["fields"]


# --- receipts that are invoices -------------------------------------------------------------


def test_billing_details_are_kept_and_each_receipt_keeps_its_own(service, clock) -> None:
    assert service.get_billing_details(CUSTOMER) == {
        "company_name": None,
        "address": None,
        "vat_id": None,
        "updated_at": None,
    }
    before = buy(service)["payment"]["receipt_number"]
    saved = service.update_billing_details(
        "c1000001", {**ACME, "address": " Main St 1 \r\n\r\n1010 Vienna "}
    )
    assert saved == {**ACME, "vat_id": "ATU12345678", "updated_at": T0.isoformat()}
    assert service.get_billing_details(CUSTOMER) == saved
    assert service.get_billing_details(OTHER)["company_name"] is None
    after = buy(service)["payment"]["receipt_number"]
    clock.advance(days=1)
    service.update_billing_details(CUSTOMER, {"company_name": "Acme AG", "address": "Elsewhere"})
    receipt = service.get_receipt(after, CUSTOMER)
    assert receipt["buyer"] == {
        "company_name": "Acme GmbH",
        "address": "Main St 1\n1010 Vienna",
        "vat_id": "ATU12345678",
    }
    assert service.get_receipt(before, CUSTOMER)["buyer"] == {
        "company_name": None,
        "address": None,
        "vat_id": None,
    }
    assert service.get_billing_details(CUSTOMER)["vat_id"] is None


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({**ACME, "company_name": "x" * 201}, "company_name"),
        ({**ACME, "company_name": "Acme\nGmbH"}, "company_name"),
        ({**ACME, "company_name": "   "}, "company_name"),
        ({**ACME, "address": "x" * 501}, "address"),
        ({**ACME, "address": " \n "}, "address"),
        ({"company_name": "Acme"}, "address"),
        ({**ACME, "vat_id": "x" * 33}, "vat_id"),
        ({**ACME, "vat_id": "AT\n1"}, "vat_id"),
        ({**ACME, "iban": "AT00"}, "iban"),
    ],
)
def test_billing_details_name_the_bad_field(service, payload, field) -> None:
    error = raises_code("validation_error", service.update_billing_details, CUSTOMER, payload)
    assert field in error.details["fields"]
    assert service.get_billing_details(CUSTOMER)["company_name"] is None


def test_a_redelivered_update_of_billing_details_answers_the_same(service, clock) -> None:
    keyed(service, "http-9", "update_billing_details")
    first = service.update_billing_details(CUSTOMER, ACME)
    clock.advance(hours=1)
    assert service.update_billing_details(CUSTOMER, ACME) == first
    raises_code(
        "idempotency_key_reused",
        service.update_billing_details,
        CUSTOMER,
        {**ACME, "vat_id": None},
    )


def test_a_receipt_names_the_vendor_the_buyer_and_the_product_as_when_paid(service) -> None:
    service.update_billing_details(CUSTOMER, ACME)
    older = buy(service)["payment"]["receipt_number"]
    settings = {
        "BILLING_VENDOR_NAME": "CAD Vendor Ltd",
        "BILLING_VENDOR_ADDRESS": "1 Vendor Way\\nLondon",  # as an environment variable has it
        "BILLING_VENDOR_VAT_ID": "GB123456789",
    }
    with nameko_config.patch(settings):
        receipt = buy(service, seats=3)["payment"]["receipt_number"]
    with nameko_config.patch({"BILLING_VENDOR_NAME": "CAD Vendor Holdings"}):
        shown = service.get_receipt(receipt, CUSTOMER)
        assert service.get_receipt(older)["vendor"]["name"] == "License Portal Software"
    assert shown["vendor"]["name"] == "CAD Vendor Ltd"  # the seller when it was paid
    assert (shown["vendor"]["address"], shown["vendor"]["vat_id"]) == (
        "1 Vendor Way\nLondon",
        "GB123456789",
    )
    assert shown["buyer"]["company_name"] == "Acme GmbH"
    assert shown["product"] == {"code": "cadpro", "name": "CAD Pro"}
    assert shown["description"] == "CAD Pro, 3 seats, monthly"
    [line] = shown["lines"]
    assert (line["unit_amount_formatted"], line["amount_formatted"]) == ("€49.00", "€147.00")
    assert shown["amount_formatted"] == "€147.00"
    assert service.get_receipt(older)["vendor"]["vat_id"] is None  # unset: none printed


def test_money_in_a_currency_without_decimals(service) -> None:
    service.create_plan(
        {"code": "cad-jp", "product_code": "cadpro", "amount": 5000, "currency": "jpy",
         "interval": "year"}
    )  # fmt: skip
    bought = service.purchase(CUSTOMER, {"plan": "cad-jp", "seats": 2, "card": OK_CARD})
    assert bought["payment"]["amount_formatted"] == "¥10,000"
    assert bought["recurring_payment"]["amount_formatted"] == "¥10,000"
    assert (
        service.get_receipt(bought["payment"]["receipt_number"])["lines"][0][
            "unit_amount_formatted"
        ]
        == "¥5,000"
    )


def test_the_first_receipt_email_and_its_page_show_one_period(service, events) -> None:
    seeded = service.seed_demo_history(CUSTOMER, "CAD-M", 3)
    first = seeded["payments"][0]
    [event] = events.of("payment_succeeded")
    assert event["payment"]["receipt_number"] == first["receipt_number"]
    assert (event["payment"]["period_start"], event["payment"]["period_end"]) == (
        first["period_start"],
        first["period_end"],
    )
    # the license covers the history so far, up to the next charge
    recurring = seeded["recurring_payment"]
    assert event["purchase"]["period_end"] == recurring["next_charge_at"]
    assert first["description"] == "CAD Pro, 3 seats, monthly"
    assert datetime.fromisoformat(recurring["next_charge_at"]) > T0
