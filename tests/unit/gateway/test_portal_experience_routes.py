"""Issue 16 on the gateway: how each license renews (billing's recurring payments, joined
once per request), the company's labels of a license, the check of a reset or invitation
link before its form, the receipt as a portal page with Print, and the HTML 404 page."""

from __future__ import annotations

import re
from typing import Any

import pytest
from nameko.testing.services import worker_factory

from common.errors import Forbidden, PortalError, validation_error
from common.schemas import receipt_number_arg
from gateway import errors, pages, schemas, sessions, views
from gateway.http import JsonWebServer, read_json
from gateway.responses import PORTAL_CSP
from gateway.service import GatewayService
from tests.unit.gateway.support import TOKEN, FakeAuth, make_request
from tests.unit.gateway.test_server import ask, serve  # noqa: F401  (the fixture)

LICENSE = {
    "license_id": "L-7KQX-M2PD",
    "product": {"code": "cadpro", "name": "CAD Pro"},
    "seats": 10,
    "seats_in_use": 7,
    "expires_at": "2026-12-07T09:00:00+00:00",
    "status": "active",
    "nickname": "Design office",
    "note": None,
}
OTHERS = ["L-AUTO-0001", "L-LATE-0002", "L-OFF0-0003", "L-NONE-0004"]


def recurring(license_id: str, status: str, **more: Any) -> dict[str, Any]:
    return {
        "id": f"rp_{license_id.lower()}_{status}",
        "license_id": license_id,
        "product": {"code": "cadpro", "name": "CAD Pro"},
        "amount": 24500,
        "currency": "EUR",
        "amount_formatted": "€245.00",
        "plan": "cad-pro-year",
        "seats": 10,
        "interval": "year",
        "next_charge_at": "2026-12-07T09:00:00+00:00",
        "status": status,
        "cancelled_by": "customer" if status == "cancelled" else None,
        "failures": 0,
        "card_brand": "visa",
        "card_last4": "4242",
        **more,
    }


class Licensing:
    def __init__(self, licenses: list[dict[str, Any]] | None = None) -> None:
        self.licenses = licenses if licenses is not None else [LICENSE]
        self.calls: list[tuple[Any, ...]] = []

    def list_licenses(self, customer_id: str) -> list[dict[str, Any]]:
        self.calls.append(("list_licenses", customer_id))
        return self.licenses

    def get_license(self, license_id: str, customer_id: str, reveal_password: bool) -> dict:
        self.calls.append(("get_license", license_id, customer_id))
        return {**LICENSE, "license_id": license_id, "installations": [], "leases": []}

    def label_license(self, license_id: str, customer_id: str, payload: dict) -> dict:
        self.calls.append(("label_license", license_id, customer_id, payload))
        return {**LICENSE, "license_id": license_id, **payload}


class Billing:
    def __init__(self, found: list[dict[str, Any]] | None = None, error: Any = None) -> None:
        self.found = found or []
        self.error = error
        self.calls: list[tuple[Any, ...]] = []

    def list_recurring_payments(self, customer_id: str) -> list[dict[str, Any]]:
        self.calls.append(("list_recurring_payments", customer_id))
        if self.error is not None:
            raise self.error
        return self.found

    def get_receipt(self, receipt_number: str, customer_id: str) -> dict[str, Any]:
        self.calls.append(("get_receipt", receipt_number, customer_id))
        if self.error is not None:
            raise self.error
        if receipt_number != RECEIPT["receipt_number"]:
            raise PortalError("No such payment.", code="payment_not_found")
        return RECEIPT


def gateway(role: str = "owner", licensing: Any = None, billing: Any = None, auth: Any = None):
    return worker_factory(
        GatewayService,
        auth=auth or FakeAuth(role=role),
        licensing=licensing or Licensing(),
        billing=billing or Billing(),
    )


# --- renewal on the license list and the license --------------------------------------------


def test_each_license_says_how_it_renews_from_one_call_to_billing() -> None:
    licenses = [{**LICENSE, "license_id": license_id} for license_id in OTHERS]
    billing = Billing(
        [
            recurring("L-AUTO-0001", "active"),
            recurring("L-LATE-0002", "past_due"),
            recurring("L-OFF0-0003", "cancelled"),
            recurring("L-ELSE-9999", "active"),  # another license's
        ]
    )
    service = gateway(licensing=Licensing(licenses), billing=billing)
    answer = service.list_licenses(make_request())["licenses"]
    assert [item["renewal"]["status"] for item in answer] == [
        "automatic",
        "past_due",
        "cancelled",
        "none",
    ]
    assert answer[0]["renewal"] == {
        "status": "automatic",
        "next_charge_at": "2026-12-07T09:00:00+00:00",
        "amount": 24500,
        "currency": "EUR",
        "interval": "year",
        "plan": "cad-pro-year",
        "recurring_payment_id": "rp_l-auto-0001_active",
    }
    assert answer[3]["renewal"] == views.NO_RENEWAL
    assert billing.calls == [("list_recurring_payments", "C1000001")]  # once, not per license
    assert answer[0]["nickname"] == "Design office" and answer[0]["note"] is None


def test_a_live_recurring_payment_wins_over_a_cancelled_one_of_the_same_license() -> None:
    found = [
        recurring("L-7KQX-M2PD", "cancelled", next_charge_at="2027-01-01T00:00:00+00:00"),
        recurring("L-7KQX-M2PD", "active", id="rp_live"),
    ]
    answer = views.renewal("L-7KQX-M2PD", found, show_amount=True)
    assert (answer["status"], answer["recurring_payment_id"]) == ("automatic", "rp_live")
    cancelled = [
        recurring("L-7KQX-M2PD", "cancelled", id="rp_old"),
        recurring("L-7KQX-M2PD", "cancelled", id="rp_new", next_charge_at="2027-12-07T09:00Z"),
    ]
    assert views.renewal("L-7KQX-M2PD", cancelled, True)["recurring_payment_id"] == "rp_new"


@pytest.mark.parametrize(
    ("role", "shown"),
    [("owner", True), ("billing", True), ("license_admin", False), ("viewer", False)],
)
def test_only_roles_with_billing_see_what_a_renewal_costs(role: str, shown: bool) -> None:
    billing = Billing([recurring("L-7KQX-M2PD", "active")])
    service = gateway(role, billing=billing)
    (listed,) = service.list_licenses(make_request())["licenses"]
    detail = service.get_license(make_request(), "L-7KQX-M2PD")
    for renewal in (listed["renewal"], detail["renewal"]):
        assert renewal["status"] == "automatic"
        assert renewal["next_charge_at"] == "2026-12-07T09:00:00+00:00"
        assert (renewal["interval"], renewal["plan"]) == ("year", "cad-pro-year")
        assert (renewal["amount"], renewal["currency"]) == (
            (24500, "EUR") if shown else (None,) * 2
        )


@pytest.mark.parametrize(
    "error",
    [PortalError("Billing is unavailable.", code="service_unavailable"), PortalError("x")],
)
def test_while_billing_cannot_answer_the_licenses_are_listed_with_renewal_null(error) -> None:
    service = gateway(billing=Billing(error=error))
    (listed,) = service.list_licenses(make_request())["licenses"]
    assert listed["license_id"] == "L-7KQX-M2PD" and listed["renewal"] is None
    assert service.get_license(make_request(), "L-7KQX-M2PD")["renewal"] is None


def test_no_license_asks_billing_nothing() -> None:
    billing = Billing()
    assert gateway(licensing=Licensing([]), billing=billing).list_licenses(make_request()) == {
        "licenses": []
    }
    assert billing.calls == []


# --- labels: PATCH /api/v1/licenses/{id} ------------------------------------------------------


@pytest.mark.parametrize("role", ["owner", "license_admin"])
def test_owners_and_license_admins_label_a_license(role: str) -> None:
    licensing = Licensing()
    service = gateway(role, licensing=licensing, billing=Billing())
    body = {"nickname": "Design office", "note": "Floor 2 workstations"}
    answer = service.label_license(make_request("PATCH"), "L-7KQX-M2PD", body)
    assert licensing.calls == [("label_license", "L-7KQX-M2PD", "C1000001", body)]
    assert answer["nickname"] == "Design office" and answer["note"] == "Floor 2 workstations"
    assert answer["renewal"] == views.NO_RENEWAL
    assert "customer_id" not in answer


@pytest.mark.parametrize("role", ["billing", "viewer"])
def test_other_roles_may_not_label(role: str) -> None:
    licensing = Licensing()
    with pytest.raises(Forbidden):
        gateway(role, licensing=licensing).label_license(
            make_request("PATCH"), "L-7KQX-M2PD", {"nickname": "x"}
        )
    assert licensing.calls == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"nickname": 7}, "nickname"),
        ({"note": ["a"]}, "note"),
        ({"nickname": "ok", "color": "red"}, "color"),
        ({}, "_schema"),
    ],
)
def test_the_gateway_checks_only_the_labels_types_and_fields(body: dict, field: str) -> None:
    request = make_request("PATCH", json=body)
    with pytest.raises(PortalError) as refused:
        read_json(request, schemas.LicenseLabelBody())
    assert refused.value.code == "validation_error"
    assert field in str(refused.value.details)


@pytest.mark.parametrize(
    "body",
    [
        {"nickname": "x" * 61},  # licensing's rules, not the gateway's
        {"nickname": "two\nlines"},
        {"note": "x" * 501},
        {"nickname": "  " + "x" * 60 + "  "},
        {"note": None},
        {"nickname": ""},
        {"note": "a\nb"},
    ],
)
def test_any_strings_go_to_licensing_as_sent(body: dict) -> None:
    assert read_json(make_request("PATCH", json=body), schemas.LicenseLabelBody()) == body


class RefusingLicensing(Licensing):
    """Licensing refusing a label as its `LabelLicense` schema does."""

    def label_license(self, license_id: str, customer_id: str, payload: dict) -> dict:
        self.calls.append(("label_license", license_id, customer_id, payload))
        raise validation_error({"nickname": ["At most 60 characters."]})


def test_licensings_refusal_of_a_label_is_answered_as_it_is() -> None:
    licensing, billing = RefusingLicensing(), Billing()
    service = gateway(licensing=licensing, billing=billing)
    with pytest.raises(PortalError) as refused:
        service.label_license(make_request("PATCH"), "L-7KQX-M2PD", {"nickname": "x" * 61})
    assert refused.value.code == "validation_error"
    assert refused.value.details == {"fields": {"nickname": ["At most 60 characters."]}}
    assert errors.status_for(refused.value.code) == 422
    assert billing.calls == []


# --- a reset or invitation link, checked before its form ---------------------------------------


class TokenAuth(FakeAuth):
    def check_password_token(self, token: str) -> dict[str, Any]:
        self.calls.append(("check_password_token", token))
        if token == "good":
            return {"valid": True, "purpose": "invite", "email": "g@acme.test",
                    "company_name": "Acme", "user_id": "U-1"}  # fmt: skip
        raise PortalError("This link is no longer valid.", code="invalid_token",
                          details={"reason": "used"})  # fmt: skip


def test_a_link_is_checked_without_a_session() -> None:
    auth = TokenAuth()
    service = gateway(auth=auth)
    request = make_request("POST", token=None)
    answer = service.check_password_token(request, {"token": "good"})
    assert answer == {"valid": True, "purpose": "invite", "email": "g@acme.test",
                      "company_name": "Acme"}  # fmt: skip
    with pytest.raises(PortalError) as refused:
        service.check_password_token(request, {"token": "spent"})
    assert refused.value.code == "invalid_token" and refused.value.details == {"reason": "used"}
    assert auth.calls == [("check_password_token", "good"), ("check_password_token", "spent")]


def test_the_check_takes_only_a_token() -> None:
    with pytest.raises(PortalError):
        read_json(make_request("POST", json={"token": ""}), schemas.TokenCheckBody())
    with pytest.raises(PortalError):
        read_json(make_request("POST", json={"token": "a", "x": 1}), schemas.TokenCheckBody())


# --- the receipt as a portal page ---------------------------------------------------------------

RECEIPT = {
    "receipt_number": "R-2026-000123",
    "paid_at": "2026-11-28T09:30:00+00:00",
    "amount": 49000,
    "currency": "EUR",
    "amount_formatted": "€490.00",
    "status": "paid",
    "license_id": "L-7KQX-M2PD",
    "card_brand": "visa",
    "card_last4": "4242",
    "vendor": {"name": "Vendor GmbH", "address": "Street 1\nBerlin", "vat_id": "DE1"},
    "buyer": {"company_name": "Acme <b>Evil</b> GmbH", "address": None, "vat_id": None},
    "lines": [
        {
            "description": "CAD Pro, 1 seat, 1 year",
            "seats": 1,
            "unit_amount_formatted": "€490.00",
            "amount_formatted": "€490.00",
            "period_start": "2026-11-28T09:30:00+00:00",
            "period_end": "2027-11-28T09:30:00+00:00",
        }
    ],
}


def cookie_get(path: str, token: str | None = TOKEN):
    cookies = {sessions.SESSION_COOKIE: token} if token else {}
    return make_request("GET", path, token=None, cookies=cookies)


def test_the_receipt_page_is_a_portal_page_with_print() -> None:
    billing = Billing()
    response = gateway("billing", billing=billing).receipt_page(
        cookie_get("/payments/r-2026-000123"), "R-2026-000123"
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and response.mimetype == "text/html"
    assert response.headers["Content-Security-Policy"] == PORTAL_CSP  # no inline script
    assert 'name="viewport"' in html and '<nav class="mainnav"' in html
    assert re.search(r'<button type="button" class="button" id="print">Print</button>', html)
    assert '<script type="module" src="/static/receipt-print.js"></script>' in html
    assert "<script>" not in html
    assert "Sales receipt R-2026-000123" in html and "€490.00" in html
    assert "Nov 28, 2026 to" in html and "Nov 28, 2027" in html  # days, not ISO
    assert "Acme &lt;b&gt;Evil&lt;/b&gt; GmbH" in html
    assert 'href="/payments" aria-current="page"' in html
    assert billing.calls == [("get_receipt", "R-2026-000123", "C1000001")]


def test_the_receipt_page_and_the_printable_receipt_share_one_body() -> None:
    def body(html: str) -> str:
        start = html.index('<p class="muted receipt-paid">')
        return html[start : html.index("Keep this receipt for your records.", start)]

    page = gateway("billing").receipt_page(cookie_get("/payments/R-2026-000123"), "R-2026-000123")
    printable = gateway("billing").receipt(make_request(), "R-2026-000123")
    assert body(page.get_data(as_text=True)) == body(printable.get_data(as_text=True))
    text = body(printable.get_data(as_text=True))
    assert "Paid on Nov 28, 2026 with Visa" in text and "Nov 28, 2026 to" in text
    assert not re.search(r"\d{4}-\d{2}-\d{2}", text)  # days as people read them, not ISO
    assert 'id="buyer"' in text and 'id="vendor"' in text and 'id="receipt-total"' in text
    assert 'name="viewport"' in printable.get_data(as_text=True)


def test_without_a_live_session_the_receipt_page_goes_to_the_login_page() -> None:
    response = gateway().receipt_page(cookie_get("/payments/R-2026-000123", None), "R-1")
    assert response.status_code == 303
    assert response.headers["Location"] == "/login?next=/payments/R-2026-000123"
    expired = gateway(auth=FakeAuth()).receipt_page(
        cookie_get("/payments/R-2026-000123", "expired"), "R-2026-000123"
    )
    assert expired.status_code == 303
    assert expired.headers["Location"] == "/login?next=/payments/R-2026-000123"
    assert expired.mimetype != "application/json"
    assert sessions.SESSION_COOKIE in expired.headers.get("Set-Cookie", "")  # cleared


def test_a_receipt_of_no_one_is_the_404_page_and_an_outage_the_503_page() -> None:
    missing = gateway(billing=Billing()).receipt_page(cookie_get("/payments/R-1"), "R-1")
    assert missing.status_code == 404 and missing.mimetype == "text/html"
    assert "Page not found" in missing.get_data(as_text=True)
    down = PortalError("Billing is unavailable.", code="service_unavailable")
    unavailable = gateway(billing=Billing(error=down)).receipt_page(
        cookie_get("/payments/R-2026-000123"), "R-2026-000123"
    )
    assert unavailable.status_code == 503 and unavailable.mimetype == "text/html"
    assert "Temporarily unavailable" in unavailable.get_data(as_text=True)


class ArgCheckingBilling(Billing):
    """Billing that checks the receipt number as billing's RPC does (`receipt_number_arg`)."""

    def get_receipt(self, receipt_number: str, customer_id: str) -> dict[str, Any]:
        self.calls.append(("get_receipt", receipt_number, customer_id))
        receipt_number_arg(receipt_number)
        raise AssertionError("not a receipt number, yet accepted")


@pytest.mark.parametrize(
    "billing",
    [
        ArgCheckingBilling(),  # /payments/a%20b: a validation_error, not a receipt
        Billing(error=PortalError("No such payment.", code="payment_not_found")),
        Billing(error=PortalError("No such company.", code="company_not_found")),
    ],
    ids=["validation_error", "payment_not_found", "company_not_found"],
)
def test_a_receipt_number_billing_refuses_is_the_404_page_not_an_outage(billing) -> None:
    response = gateway("billing", billing=billing).receipt_page(
        cookie_get("/payments/a%20b"), "a b"
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 404 and response.mimetype == "text/html"
    assert "Page not found" in html and "Temporarily unavailable" not in html
    assert billing.calls == [("get_receipt", "a b", "C1000001")]


@pytest.mark.parametrize("role", ["license_admin", "viewer"])
def test_the_receipt_page_is_for_billing_roles(role: str) -> None:
    billing = Billing()
    response = gateway(role, billing=billing).receipt_page(
        cookie_get("/payments/R-2026-000123"), "R-2026-000123"
    )
    assert response.status_code == 403 and billing.calls == []


# --- unknown URLs: a page for browsers, JSON for the API -------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "page"),
    [
        ("GET", "/no-such-page", True),
        ("HEAD", "/licenses/x/y", True),
        ("GET", "/api/v1/no-such", False),
        ("GET", "/api", False),
        ("GET", "/static/nope.js", False),
        ("GET", "/webhooks/nope", False),
        ("POST", "/no-such-page", False),
    ],
)
def test_which_unknown_urls_get_the_page(method: str, path: str, page: bool) -> None:
    assert pages.wants_page(method, path) is page


def test_an_unknown_page_is_html_and_an_unknown_api_url_json(serve) -> None:  # noqa: F811
    _, port = serve(app=None, server_class=JsonWebServer)
    raw = ask(port, b"GET /no-such-page HTTP/1.1\r\nHost: p\r\n\r\n")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 404") and b"Content-Type: text/html" in head
    html = body.decode()
    assert '<h1 id="not-found-title">Page not found</h1>' in html
    assert 'href="/licenses"' in html and 'name="viewport"' in html
    assert b"X-Frame-Options: DENY" in head and b"script-src 'self'" in head
    raw = ask(port, b"GET /api/v1/no-such HTTP/1.1\r\nHost: p\r\n\r\n")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 404") and b"application/json" in head
    assert b'"not_found"' in body
