"""The gateway's billing routes with the services faked: the purchase answer when licensing
is quick, slow or silent, product names when licensing is down, and the printable receipt."""

from __future__ import annotations

from typing import Any

import pytest
from eventlet.event import Event
from nameko import config as nameko_config
from nameko.testing.services import worker_factory

from common.errors import PortalError, ServiceUnavailable
from common.schemas import load
from gateway import purchases, schemas
from gateway.errors import status_for
from gateway.responses import RECEIPT_CSP
from gateway.service import GatewayService
from tests.unit.gateway.support import FakeAuth, make_request

PAYMENT = {
    "receipt_number": "R-2026-000001",
    "paid_at": "2026-03-10T09:00:00+00:00",
    "amount": 9800,
    "currency": "EUR",
    "amount_formatted": "€98.00",
    "description": "<script>alert(1)</script>",
    "status": "paid",
    "refunded_at": None,
    "refund_reason": None,
    "refunded_amount": None,
    "dispute_status": None,
    "disputed_at": None,
    "license_id": None,
    "plan": "cad-m",
    "product": {"code": "cadpro", "name": "CAD Pro"},
    "seats": 2,
    "period_start": "2026-03-10T09:00:00+00:00",
    "period_end": "2026-04-10T09:00:00+00:00",
    "card_brand": "visa",
    "card_last4": "4242",
}
RECURRING = {
    "id": "rp_1",
    "license_id": None,
    "product": {"code": "cadpro"},
    "plan": "cad-m",
    "seats": 2,
    "amount": 9800,
    "currency": "EUR",
    "amount_formatted": "€98.00",
    "interval": "month",
    "next_charge_at": "2026-04-10T09:00:00+00:00",
    "status": "active",
    "cancelled_by": None,
    "card_brand": "visa",
    "card_last4": "4242",
}
LICENSE = {"license_id": "L-1", "customer_id": "C1000001", "seats": 2}


class Billing:
    def __init__(self, payments: int = 1) -> None:
        self.purchases: list[tuple[str, dict]] = []
        self.calls: list[tuple[Any, ...]] = []
        # newest first, as billing lists them: R-2026-000009 … R-2026-000001
        self.payments = [
            {**PAYMENT, "receipt_number": f"R-2026-{number:06d}", "customer_id": "C1000001"}
            for number in range(payments, 0, -1)
        ]
        self.details: dict[str, Any] = {"company_name": None, "address": None, "vat_id": None}

    def purchase(self, customer_id: str, body: dict) -> dict:
        self.purchases.append((customer_id, body))
        return {"payment": {**PAYMENT, "internal": "x"}, "recurring_payment": RECURRING}

    def list_payments(self, customer_id: str, limit: int = 50, before: str | None = None) -> list:
        self.calls.append(("list_payments", customer_id, limit, before))
        numbers = [payment["receipt_number"] for payment in self.payments]
        start = numbers.index(before) + 1 if before in numbers else 0
        return self.payments[start : start + limit]

    def list_recurring_payments(self, customer_id: str) -> list[dict]:
        return [RECURRING]

    def cancel_recurring_payment(self, recurring_id: str, customer_id: str) -> dict:
        self.calls.append(("cancel_recurring_payment", recurring_id, customer_id))
        return {
            **RECURRING,
            "status": "cancelled",
            "cancelled_by": "customer",
            "customer_id": customer_id,
        }

    def resume_recurring_payment(self, recurring_id: str, customer_id: str) -> dict:
        self.calls.append(("resume_recurring_payment", recurring_id, customer_id))
        return {**RECURRING, "status": "active", "customer_id": customer_id, "failures": 0}

    def replace_card(self, recurring_id: str, customer_id: str, card: dict) -> dict:
        self.calls.append(("replace_card", recurring_id, customer_id, card))
        return {**RECURRING, "card_brand": "mastercard", "card_last4": card["number"][-4:]}

    def get_billing_details(self, customer_id: str) -> dict:
        self.calls.append(("get_billing_details", customer_id))
        return {**self.details, "customer_id": customer_id}

    def update_billing_details(self, customer_id: str, payload: dict) -> dict:
        self.calls.append(("update_billing_details", customer_id, payload))
        self.details = dict(payload)
        return {**self.details, "customer_id": customer_id, "updated_at": "2026-03-10"}

    def get_receipt(self, receipt_number: str, customer_id: str) -> dict:
        line = {
            "description": PAYMENT["description"],
            "seats": 2,
            "unit_amount_formatted": "€49.00",
            "amount_formatted": "€98.00",
            "period_start": PAYMENT["period_start"],
            "period_end": PAYMENT["period_end"],
        }
        vendor = {"name": "Vendor & Co", "address": "", "email": "sales@vendor.test"}
        return {**PAYMENT, "vendor": vendor, "lines": [line]}

    def list_plans(self) -> list[dict]:
        return [
            {"code": "cad-m", "product_code": "cadpro", "amount": 4900, "currency": "EUR",
             "price": "€49.00", "interval": "month", "active": True,
             "model": "node_locked", "lease_seconds": None, "max_borrow_days": None}
        ]  # fmt: skip


class Licensing:
    """Has the license for the payment after `ready_after` questions; never names products
    unless given `products`."""

    def __init__(
        self, license: dict | None = None, ready_after: int = 0, products: list | None = None
    ) -> None:
        self.license, self.ready_after, self.products = license, ready_after, products
        self.asked = 0

    def license_for_payment(self, receipt_number: str, customer_id: str) -> dict | None:
        self.asked += 1
        return self.license if self.asked > self.ready_after else None

    def list_products(self, include_archived: bool = False) -> list[dict]:
        if self.products is None:
            raise ServiceUnavailable()
        return [item for item in self.products if include_archived or item.get("active", True)]


class SilentLicensing(Licensing):
    """Licensing whose queue exists but nobody answers: the call never returns."""

    def license_for_payment(self, receipt_number: str, customer_id: str) -> dict | None:
        self.asked += 1
        Event().wait()
        raise AssertionError("unreachable")


class FakeClock:
    """`time.monotonic` that only moves when the wait pauses."""

    def __init__(self) -> None:
        self.now = 100.0
        self.pauses: list[float] = []

    def __call__(self) -> float:
        return self.now

    def pause(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.now += seconds


def gateway(licensing: Any, billing: Any = None) -> GatewayService:
    return worker_factory(
        GatewayService, auth=FakeAuth(), billing=billing or Billing(), licensing=licensing
    )


BODY = {"plan": "cad-m", "seats": 2, "card": {"number": "4242424242424242"}, "license_id": None}


def test_a_purchase_carries_the_license_when_licensing_has_it() -> None:
    billing = Billing()
    result = gateway(Licensing(LICENSE), billing).purchase(make_request("POST"), body=BODY)
    assert PAYMENT["license_id"] is None  # billing has not heard of the license yet
    assert result == {
        "payment": {**PAYMENT, "license_id": "L-1"},
        "license": LICENSE,
        "license_status": "issued",
        "recurring_payment": {**RECURRING, "product": {"code": "cadpro", "name": "cadpro"}},
    }
    # billing gets the body without its nulls, and the request's key (one made by the
    # gateway when the client sent none)
    ((customer_id, payload),) = billing.purchases
    assert customer_id == "C1000001"
    key = payload.pop("request_key")
    assert payload == {name: BODY[name] for name in ("plan", "seats", "card")}
    assert len(key) == 32 and int(key, 16) >= 0


def test_a_renewal_extends() -> None:
    body = {**BODY, "license_id": "L-1"}
    result = gateway(Licensing(LICENSE)).purchase(make_request("POST"), body=body)
    assert result["license_status"] == "extended"


def test_a_silent_licensing_gives_a_pending_license() -> None:
    licensing = SilentLicensing()
    with nameko_config.patch({"PURCHASE_LICENSE_WAIT_SECONDS": 0.05}):
        result = gateway(licensing).purchase(make_request("POST"), body=BODY)
    assert (result["license"], result["license_status"]) == (None, "pending")
    assert result["payment"]["receipt_number"] == "R-2026-000001"
    assert licensing.asked == 1


def test_the_idempotency_key_goes_to_billing_and_is_checked() -> None:
    billing = Billing()
    service = gateway(Licensing(LICENSE), billing)
    service.purchase(make_request("POST", headers={"Idempotency-Key": "k-1"}), body=BODY)
    assert billing.purchases[-1][1]["request_key"] == "k-1"
    for key in ("x" * 65, "", "tab\there"):
        with pytest.raises(PortalError) as caught:
            service.purchase(make_request("POST", headers={"Idempotency-Key": key}), body=BODY)
        assert caught.value.code == "validation_error"
        assert "Idempotency-Key" in caught.value.details["fields"]
    assert len(billing.purchases) == 1


def test_the_wait_asks_again_until_the_license_is_there() -> None:
    clock, licensing = FakeClock(), Licensing(LICENSE, ready_after=3)
    found = purchases.wait_for_license(licensing, "R-1", "C1", 5.0, clock, clock.pause)
    assert found == LICENSE
    assert licensing.asked == 4
    assert clock.pauses == [purchases.LICENSE_POLL_SECONDS] * 3


def test_the_wait_gives_up_at_the_deadline() -> None:
    clock, licensing = FakeClock(), Licensing(None)
    assert purchases.wait_for_license(licensing, "R-1", "C1", 1.0, clock, clock.pause) is None
    assert licensing.asked == 5
    assert sum(clock.pauses) == pytest.approx(1.0)


def test_the_wait_asks_again_after_an_error() -> None:
    class Flaky(Licensing):
        def license_for_payment(self, receipt_number: str, customer_id: str) -> dict | None:
            self.asked += 1
            if self.asked == 1:
                raise ServiceUnavailable()
            return LICENSE

    clock = FakeClock()
    assert purchases.wait_for_license(Flaky(), "R-1", "C1", 5.0, clock, clock.pause) == LICENSE


def test_payments_answer_the_payment_fields_only() -> None:
    result = gateway(Licensing()).list_payments(make_request())
    assert result == {"payments": [PAYMENT], "next_before": None}


def test_a_refunded_payment_says_when_and_why() -> None:
    billing = Billing()
    refund = {"refunded_at": "2026-03-10T09:01:00+00:00", "refund_reason": "product_archived"}
    billing.payments = [{**PAYMENT, "status": "refunded", **refund}]
    (payment,) = gateway(Licensing(), billing).list_payments(make_request())["payments"]
    assert payment == {**PAYMENT, "status": "refunded", **refund}


def test_payments_come_in_pages_until_the_last() -> None:
    billing = Billing(payments=5)
    service = gateway(Licensing(), billing)
    first = service.list_payments(make_request(query_string={"limit": "2"}))
    assert [p["receipt_number"] for p in first["payments"]] == ["R-2026-000005", "R-2026-000004"]
    assert first["next_before"] == "R-2026-000004"
    # any case names the same receipt
    second = service.list_payments(
        make_request(query_string={"limit": "2", "before": "r-2026-000004"})
    )
    assert [p["receipt_number"] for p in second["payments"]] == ["R-2026-000003", "R-2026-000002"]
    last = service.list_payments(
        make_request(query_string={"limit": "2", "before": second["next_before"]})
    )
    assert [p["receipt_number"] for p in last["payments"]] == ["R-2026-000001"]
    assert last["next_before"] is None
    # a full last page is known to be the last: no page that turns out empty
    exact = service.list_payments(make_request(query_string={"limit": "5"}))
    assert len(exact["payments"]) == 5 and exact["next_before"] is None
    assert billing.calls[0] == ("list_payments", "C1000001", 2, None)
    assert service.list_payments(make_request())["next_before"] is None  # default limit 50
    assert billing.calls[-1] == ("list_payments", "C1000001", 50, None)


@pytest.mark.parametrize(
    "query",
    [{"limit": "0"}, {"limit": "201"}, {"limit": "x"}, {"before": "R" * 65}, {"page": "2"}],
)
def test_a_bad_payments_page_is_a_422_naming_it(query: dict) -> None:
    with pytest.raises(PortalError) as caught:
        gateway(Licensing()).list_payments(make_request(query_string=query))
    assert caught.value.code == "validation_error"
    assert set(caught.value.details["fields"]) == set(query)


def test_recurring_payments_get_product_names_or_codes() -> None:
    # an archived product's recurring payments go on, under its name
    product = {"code": "cadpro", "name": "CAD Pro", "active": False}
    named = gateway(Licensing(products=[product]))
    assert named.list_recurring_payments(make_request()) == {
        "recurring_payments": [{**RECURRING, "product": {"code": "cadpro", "name": "CAD Pro"}}]
    }
    unnamed = gateway(Licensing()).list_recurring_payments(make_request())
    assert unnamed["recurring_payments"][0]["product"] == {"code": "cadpro", "name": "cadpro"}


def test_the_catalog_falls_back_to_product_codes_when_licensing_is_down() -> None:
    catalog = gateway(Licensing()).catalog(make_request())
    assert catalog == {
        "products": [
            {
                "code": "cadpro",
                "name": "cadpro",
                "plans": [
                    {
                        "code": "cad-m",
                        "amount": 4900,
                        "currency": "EUR",
                        "price": "€49.00",
                        "interval": "month",
                        "features": [],
                        "model": "node_locked",
                        "lease_seconds": None,
                        "max_borrow_days": None,
                    }
                ],  # fmt: skip
            }
        ],
        "payment": {"provider": "sandbox", "publishable_key": None, "js_url": None},
    }


def test_the_receipt_page_escapes_everything_and_has_a_strict_csp() -> None:
    response = gateway(Licensing()).receipt(make_request(), "R-2026-000001")
    html = response.get_data(as_text=True)
    assert response.mimetype == "text/html"
    assert response.headers["Content-Security-Policy"] == RECEIPT_CSP
    assert "default-src 'none'" in RECEIPT_CSP
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<b>Evil</b>" not in html and "Vendor &amp; Co" in html
    for part in ("R-2026-000001", "€98.00", "€49.00", "Visa", "4242", "Apr 10, 2026"):
        assert part in html


def test_another_companys_receipt_is_a_404_code() -> None:
    class Strict(Billing):
        def get_receipt(self, receipt_number: str, customer_id: str) -> dict:
            raise PortalError(code="payment_not_found", message="No payment.")

    with pytest.raises(PortalError) as caught:
        gateway(Licensing(), Strict()).receipt(make_request(), "R-2026-000001")
    assert status_for(caught.value.code) == 404


# --- issue 10: what is on sale, recurring payments a customer controls, billing details ----


class Shop(Billing):
    """Billing whose list still holds a plan of a product licensing archived since."""

    def list_plans(self) -> list[dict]:
        plan = {"amount": 4900, "currency": "EUR", "price": "€49.00", "interval": "month"}
        return [
            {
                **plan,
                "code": "cad-m",
                "product_code": "cadpro",
                "active": True,
                "product": {"code": "cadpro", "name": "CAD Pro (billing)"},
            },
            {**plan, "code": "old-m", "product_code": "oldcad", "active": True},
        ]


def test_the_catalog_leaves_out_plans_of_archived_products() -> None:
    products = [
        {"code": "cadpro", "name": "CAD Pro", "active": True},
        {"code": "oldcad", "name": "Old CAD", "active": False},
    ]
    catalog = gateway(Licensing(products=products), Shop()).catalog(make_request())
    assert [(p["code"], p["name"]) for p in catalog["products"]] == [("cadpro", "CAD Pro")]
    assert [plan["code"] for plan in catalog["products"][0]["plans"]] == ["cad-m"]
    # nothing on sale at all: an empty catalog, not billing's stale list
    empty = gateway(Licensing(products=products[1:]), Shop()).catalog(make_request())
    assert empty["products"] == []


def test_the_catalog_keeps_billings_list_while_licensing_cannot_say() -> None:
    catalog = gateway(Licensing(), Shop()).catalog(make_request())
    names = [(p["code"], p["name"]) for p in catalog["products"]]
    assert names == [("cadpro", "CAD Pro (billing)"), ("oldcad", "oldcad")]


def test_resume_answers_the_recurring_payment_named() -> None:
    billing = Billing()
    service = gateway(Licensing(products=[{"code": "cadpro", "name": "CAD Pro"}]), billing)
    result = service.resume_recurring_payment(make_request("POST"), "rp_1")
    assert result == {**RECURRING, "product": {"code": "cadpro", "name": "CAD Pro"}}
    assert billing.calls == [("resume_recurring_payment", "rp_1", "C1000001")]


def test_resume_after_the_period_is_a_409() -> None:
    class Ended(Billing):
        def resume_recurring_payment(self, recurring_id: str, customer_id: str) -> dict:
            raise PortalError("The period has ended.", code="recurring_payment_ended")

    with pytest.raises(PortalError) as caught:
        gateway(Licensing(), Ended()).resume_recurring_payment(make_request("POST"), "rp_1")
    assert status_for(caught.value.code) == 409


def test_a_new_card_goes_to_billing_for_the_session_company() -> None:
    billing = Billing()
    card = {"number": "5555555555554444", "exp_month": 8, "exp_year": 2030, "cvc": "123"}
    result = gateway(Licensing(), billing).replace_card(
        make_request("PUT"), "rp_1", body={"card": card}
    )
    assert (result["card_brand"], result["card_last4"]) == ("mastercard", "4444")
    assert set(result) == set(RECURRING)  # billing's internals stay inside
    assert billing.calls == [("replace_card", "rp_1", "C1000001", card)]


def test_a_declined_new_card_is_a_402() -> None:
    class Declines(Billing):
        def replace_card(self, recurring_id: str, customer_id: str, card: dict) -> dict:
            raise PortalError("Declined.", code="card_declined")

    with pytest.raises(PortalError) as caught:
        gateway(Licensing(), Declines()).replace_card(
            make_request("PUT"), "rp_1", body={"card": {"number": "4000000000000002"}}
        )
    assert status_for(caught.value.code) == 402


def test_billing_details_are_read_and_replaced_for_the_session_company() -> None:
    billing = Billing()
    service = gateway(Licensing(), billing)
    assert service.get_billing_details(make_request()) == {
        "company_name": None,
        "address": None,
        "vat_id": None,
    }
    body = {"company_name": "Acme GmbH", "address": "Hauptstraße 1\n10115 Berlin"}
    saved = service.update_billing_details(make_request("PUT"), body=body)
    # a PUT replaces everything: no VAT ID given is none
    assert saved == {**body, "vat_id": None}
    assert billing.calls[-1] == ("update_billing_details", "C1000001", {**body, "vat_id": None})


@pytest.mark.parametrize(
    "body",
    [
        {"company_name": "", "address": "x"},
        {"company_name": "A" * 201, "address": "x"},
        {"company_name": "A", "address": "x" * 501},
        {"company_name": "A", "address": "x", "vat_id": "V" * 33},
        {"company_name": "A"},
        {"company_name": "A", "address": "x", "iban": "DE00"},
        {"company_name": "Acme\nGmbH", "address": "x"},
        {"company_name": "A", "address": "x", "vat_id": "DE1\nDE2"},
    ],
)
def test_bad_billing_details_are_refused_naming_the_field(body: dict) -> None:
    with pytest.raises(PortalError) as caught:
        load(schemas.BillingDetailsBody(), body)
    assert caught.value.code == "validation_error"


def test_the_purchase_body_takes_identifiers_in_any_case() -> None:
    card = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}
    raw = {"plan": " CAD-M ", "seats": 1, "card": card, "license_id": " l-7kqx-m2pd"}
    body = load(schemas.PurchaseBody(), raw)
    assert (body["plan"], body["license_id"]) == ("cad-m", "L-7KQX-M2PD")


def test_the_purchase_passes_the_clients_key() -> None:
    billing = Billing()
    request = make_request("POST", headers={"Idempotency-Key": "attempt-7f3a"})
    gateway(Licensing(LICENSE), billing).purchase(request, body=BODY)
    assert billing.purchases[0][1]["request_key"] == "attempt-7f3a"


def test_the_receipt_shows_vendor_buyer_and_a_refund() -> None:
    class Invoiced(Billing):
        def get_receipt(self, receipt_number: str, customer_id: str) -> dict:
            receipt = super().get_receipt(receipt_number, customer_id)
            vendor = {"name": "Vendor AG", "address": "Ring 2\n8001 Zürich", "vat_id": "CHE-1"}
            buyer = {"company_name": "Acme GmbH", "address": "Hauptstraße 1\n10115 Berlin",
                     "vat_id": "DE123456789"}  # fmt: skip
            return {
                **receipt,
                "vendor": vendor,
                "buyer": buyer,
                "status": "refunded",
                "refunded_at": "2026-03-11T08:00:00+00:00",
                "refund_reason": "product_archived",
            }

    html = (
        gateway(Licensing(), Invoiced())
        .receipt(make_request(), "R-2026-000001")
        .get_data(as_text=True)
    )
    for part in ("Vendor AG", "Ring 2\n8001 Zürich", "VAT ID CHE-1", "Acme GmbH",
                 "Hauptstraße 1\n10115 Berlin", "VAT ID DE123456789", "C1000001",
                 "Refunded on Mar 11, 2026", "the product is no longer sold"):  # fmt: skip
        assert part in html, part


def test_a_receipt_without_buyer_details_names_the_company() -> None:
    html = gateway(Licensing()).receipt(make_request(), "R-2026-000001").get_data(as_text=True)
    assert "Acme &lt;b&gt;Evil&lt;/b&gt;" in html
    assert "Refunded" not in html
