"""The gateway's billing routes with the services faked: the purchase answer when licensing
is quick, slow or silent, product names when licensing is down, and the printable receipt."""

from __future__ import annotations

from typing import Any

import pytest
from eventlet.event import Event
from nameko import config as nameko_config
from nameko.testing.services import worker_factory

from common.errors import PortalError, ServiceUnavailable
from gateway import purchases
from gateway.errors import status_for
from gateway.responses import RECEIPT_CSP
from gateway.service import GatewayService
from tests.unit.gateway.support import FakeAuth, make_request

PAYMENT = {
    "receipt_number": "R-2026-000001",
    "paid_at": "2026-03-10T09:00:00+00:00",
    "amount": 9800,
    "currency": "EUR",
    "amount_formatted": "EUR 98.00",
    "description": "<script>alert(1)</script>",
    "status": "paid",
    "license_id": None,
    "plan": "cad-m",
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
    "interval": "month",
    "next_charge_at": "2026-04-10T09:00:00+00:00",
    "status": "active",
    "card_brand": "visa",
    "card_last4": "4242",
}
LICENSE = {"license_id": "L-1", "customer_id": "C1000001", "seats": 2}


class Billing:
    def __init__(self) -> None:
        self.purchases: list[tuple[str, dict]] = []

    def purchase(self, customer_id: str, body: dict) -> dict:
        self.purchases.append((customer_id, body))
        return {"payment": {**PAYMENT, "internal": "x"}, "recurring_payment": RECURRING}

    def list_payments(self, customer_id: str) -> list[dict]:
        return [{**PAYMENT, "customer_id": customer_id}]

    def list_recurring_payments(self, customer_id: str) -> list[dict]:
        return [RECURRING]

    def get_receipt(self, receipt_number: str, customer_id: str) -> dict:
        line = {
            "description": PAYMENT["description"],
            "seats": 2,
            "unit_amount_formatted": "EUR 49.00",
            "amount_formatted": "EUR 98.00",
            "period_start": PAYMENT["period_start"],
            "period_end": PAYMENT["period_end"],
        }
        vendor = {"name": "Vendor & Co", "address": "", "email": "sales@vendor.test"}
        return {**PAYMENT, "vendor": vendor, "lines": [line]}

    def list_plans(self) -> list[dict]:
        return [
            {"code": "cad-m", "product_code": "cadpro", "amount": 4900, "currency": "EUR",
             "price": "EUR 49.00", "interval": "month", "active": True}
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

    def list_products(self) -> list[dict]:
        if self.products is None:
            raise ServiceUnavailable()
        return self.products


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
    # billing gets the body without its nulls
    assert billing.purchases == [
        ("C1000001", {key: BODY[key] for key in ("plan", "seats", "card")})
    ]


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
    assert result == {"payments": [PAYMENT]}


def test_recurring_payments_get_product_names_or_codes() -> None:
    named = gateway(Licensing(products=[{"code": "cadpro", "name": "CAD Pro"}]))
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
                        "price": "EUR 49.00",
                        "interval": "month",
                    }
                ],  # fmt: skip
            }
        ]
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
    for part in ("R-2026-000001", "EUR 98.00", "EUR 49.00", "Visa", "4242", "2026-04-10"):
        assert part in html


def test_another_companys_receipt_is_a_404_code() -> None:
    class Strict(Billing):
        def get_receipt(self, receipt_number: str, customer_id: str) -> dict:
            raise PortalError(code="payment_not_found", message="No payment.")

    with pytest.raises(PortalError) as caught:
        gateway(Licensing(), Strict()).receipt(make_request(), "R-2026-000001")
    assert status_for(caught.value.code) == 404
