"""The gateway's billing routes with the services faked: the purchase answer when licensing
is slow, product names when licensing is down, and the printable receipt's escaping."""

from __future__ import annotations

import time
from typing import Any

import eventlet
import pytest
from nameko import config as nameko_config
from nameko.testing.services import worker_factory
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from common.errors import PortalError, ServiceUnavailable
from gateway.service import GatewayService

COMPANY = {
    "customer_id": "C1000001",
    "name": "Acme <b>Evil</b>",
    "contact_name": "Ada",
    "contact_email": "ada@acme.test",
}
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


class Auth:
    def authenticate(self, token: str) -> dict[str, Any]:
        return COMPANY


class Billing:
    def purchase(self, customer_id: str, body: dict) -> dict:
        return {"payment": PAYMENT, "recurring_payment": RECURRING}

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


class SlowLicensing:
    def __init__(self, answer: dict | None = None, delay: float = 0.0) -> None:
        self.answer, self.delay = answer, delay

    def license_for_payment(self, receipt_number: str, customer_id: str) -> dict | None:
        eventlet.sleep(self.delay)
        return self.answer

    def list_products(self) -> list[dict]:
        raise ServiceUnavailable()


def request() -> Request:
    return Request(EnvironBuilder(headers={"Authorization": "Bearer t0ken"}).get_environ())


def gateway(licensing) -> GatewayService:
    return worker_factory(GatewayService, auth=Auth(), billing=Billing(), licensing=licensing)


BODY = {"plan": "cad-m", "seats": 2, "card": {"number": "4242424242424242"}}


def test_a_purchase_carries_the_license_when_licensing_is_quick() -> None:
    service = gateway(SlowLicensing({"license_id": "L-1"}, delay=0.05))
    result = service.purchase(request(), body=BODY)
    assert result["license"] == {"license_id": "L-1"}
    assert result["license_status"] == "issued"


def test_a_slow_licensing_gives_a_pending_license_in_bounded_time() -> None:
    service = gateway(SlowLicensing(None))
    with nameko_config.patch({"PURCHASE_LICENSE_WAIT_SECONDS": 0.5}):
        started = time.monotonic()
        result = service.purchase(request(), body=BODY)
        assert time.monotonic() - started < 1.5
    assert (result["license"], result["license_status"]) == (None, "pending")
    assert result["payment"]["receipt_number"] == "R-2026-000001"


def test_the_catalog_falls_back_to_product_codes_when_licensing_is_down() -> None:
    catalog = gateway(SlowLicensing()).catalog(request())
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
    response = gateway(SlowLicensing()).receipt(request(), "R-2026-000001")
    html = response.get_data(as_text=True)
    assert response.mimetype == "text/html"
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<b>Evil</b>" not in html and "Vendor &amp; Co" in html
    for part in ("R-2026-000001", "EUR 98.00", "EUR 49.00", "Visa", "4242", "2026-04-10"):
        assert part in html


def test_another_companys_receipt_is_a_404_code() -> None:
    class Strict(Billing):
        def get_receipt(self, receipt_number, customer_id):
            raise PortalError(code="payment_not_found", message="No payment.")

    service = worker_factory(
        GatewayService, auth=Auth(), billing=Strict(), licensing=SlowLicensing()
    )
    with pytest.raises(PortalError) as caught:
        service.receipt(request(), "R-2026-000001")
    from gateway.errors import status_for

    assert status_for(caught.value.code) == 404
