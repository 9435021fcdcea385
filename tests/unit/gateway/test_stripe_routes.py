"""The gateway's side of Stripe (issue 19) with the services faked: a body pays by `card` or
by `payment_method` (exactly one), billing's 3-D Secure answer is a 202, the confirmation
answers exactly as a purchase, the catalog names the provider, the pages that take cards
allow Stripe.js in their CSP, and the webhook hands billing the raw body and signature (256
KiB at most, read before routing)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from nameko import config as nameko_config
from nameko.testing.services import worker_factory
from werkzeug.test import Client
from werkzeug.wrappers import Request, Response

from common.errors import PortalError, ServiceUnavailable
from common.schemas import load
from gateway import openapi, payments, schemas, sessions
from gateway.errors import status_for
from gateway.http import MAX_BODY_BYTES, ROUTES, JsonRoute, JsonWebServer, JsonWsgiApp, read_text
from gateway.responses import PORTAL_CSP
from gateway.server import Limits
from gateway.service import STRIPE_WEBHOOK_MAX_BYTES, GatewayService
from tests.unit.gateway.support import TOKEN, FakeAuth, make_request
from tests.unit.gateway.test_billing_routes import LICENSE, PAYMENT, RECURRING, Billing, Licensing

CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}
PM = "pm_1Q2w3E4r5T6y7U8i"
STRIPE = {
    "PAYMENT_PROVIDER": "stripe",
    "STRIPE_PUBLISHABLE_KEY": "pk_test_51Habc",
    "STRIPE_JS_URL": "http://127.0.0.1:8420/js.stripe.com/v3/",
}
ACTION = {
    "status": "requires_action",
    "purchase_id": "pur_4f1c2a9b0d7e6c5b4a39e8d7",
    "client_secret": "pi_1_secret_2",
}


class StripeBilling(Billing):
    """Billing with Stripe: a 3-D Secure purchase first, paid once confirmed."""

    def __init__(self, confirmed: dict | None = None) -> None:
        super().__init__()
        self.confirmed = confirmed
        self.webhooks: list[tuple[str, str | None]] = []

    def purchase(self, customer_id: str, body: dict) -> dict:
        self.purchases.append((customer_id, body))
        return {**ACTION, "internal": "x"}

    def confirm_purchase(self, customer_id: str, purchase_id: str) -> dict:
        self.calls.append(("confirm_purchase", customer_id, purchase_id))
        if self.confirmed is None:
            raise PortalError("No such purchase.", code="purchase_not_found")
        return self.confirmed

    def replace_card(
        self,
        recurring_id: str,
        customer_id: str,
        card: dict | None,
        payment_method: str | None = None,
    ) -> dict:
        self.calls.append(("replace_card", recurring_id, customer_id, card, payment_method))
        return {**RECURRING, "card_brand": "visa", "card_last4": "4242"}

    def handle_stripe_webhook(self, payload: str, signature: str | None) -> dict:
        self.webhooks.append((payload, signature))
        if signature != "t=1,v1=good":
            raise PortalError("Bad signature.", code="invalid_signature")
        return {"received": True, "duplicate": False, "type": "charge.refunded", "x": 1}


def gateway(billing: Any, licensing: Any = None, role: str = "owner") -> GatewayService:
    return worker_factory(
        GatewayService,
        auth=FakeAuth(role=role),
        billing=billing,
        licensing=licensing or Licensing(LICENSE),
    )


# --- what a body pays with ------------------------------------------------------------------


@pytest.mark.parametrize("schema", [schemas.PurchaseBody, schemas.CardChangeBody])
def test_a_body_pays_by_card_or_by_payment_method(schema) -> None:
    base = {"plan": "cad-m", "seats": 1} if schema is schemas.PurchaseBody else {}
    assert load(schema(), {**base, "card": CARD})["card"] == CARD
    assert load(schema(), {**base, "payment_method": PM})["payment_method"] == PM


@pytest.mark.parametrize("schema", [schemas.PurchaseBody, schemas.CardChangeBody])
@pytest.mark.parametrize(
    ("means", "fields"),
    [
        ({}, {"payment_method"}),
        ({"card": CARD, "payment_method": PM}, {"card", "payment_method"}),
        ({"payment_method": "card_1Q2w"}, {"payment_method"}),
        ({"payment_method": "pm_"}, {"payment_method"}),
        ({"payment_method": "pm_a b"}, {"payment_method"}),
        ({"payment_method": "pm_x\n"}, {"payment_method"}),
        ({"payment_method": "pm_" + "a" * 251}, {"payment_method"}),
        ({"payment_method": 7}, {"payment_method"}),
        ({"payment_method": None}, {"payment_method"}),
    ],
)
def test_a_body_pays_with_exactly_one_well_formed_means(schema, means, fields) -> None:
    base = {"plan": "cad-m", "seats": 1} if schema is schemas.PurchaseBody else {}
    with pytest.raises(PortalError) as caught:
        load(schema(), {**base, **means})
    assert caught.value.code == "validation_error"
    assert set(caught.value.details["fields"]) == fields


def test_a_payment_method_purchase_goes_to_billing_as_sent() -> None:
    billing = Billing()
    body = load(schemas.PurchaseBody(), {"plan": "cad-m", "seats": 2, "payment_method": PM})
    gateway(billing).purchase(make_request("POST"), body=body)
    ((_, payload),) = billing.purchases
    payload.pop("request_key")
    assert payload == {"plan": "cad-m", "seats": 2, "payment_method": PM}


# --- 3-D Secure: 202, then the confirmation -------------------------------------------------


def test_billings_requires_action_is_a_202_with_its_three_fields() -> None:
    licensing = Licensing(LICENSE)
    service = gateway(StripeBilling(), licensing)
    body = {"plan": "cad-m", "seats": 2, "payment_method": PM}
    reply = service.purchase(make_request("POST"), body=body)
    assert reply.status == 202
    assert reply.body == ACTION  # dumped through PurchaseActionOut: nothing else
    assert licensing.asked == 0  # no payment yet: no license to wait for


def test_the_confirmation_answers_exactly_as_a_purchase() -> None:
    paid = {"payment": {**PAYMENT, "kind": "new"}, "recurring_payment": RECURRING}
    billing = StripeBilling(confirmed=paid)
    confirmed = gateway(billing).confirm_purchase(make_request("POST"), ACTION["purchase_id"])
    purchased = gateway(Billing()).purchase(
        make_request("POST"), body={"plan": "cad-m", "seats": 2, "card": CARD}
    )
    assert confirmed == purchased
    assert confirmed["license_status"] == "issued"
    assert confirmed["payment"]["license_id"] == "L-1"
    assert billing.calls == [("confirm_purchase", "C1000001", ACTION["purchase_id"])]


def test_a_confirmed_renewal_is_extended_and_a_billing_user_sees_no_password() -> None:
    renewal = {"payment": {**PAYMENT, "kind": "renewal"}, "recurring_payment": RECURRING}
    licensing = Licensing({**LICENSE, "activation_password": "K7QX-M2PD-9TRW-H4NC"})
    result = gateway(StripeBilling(confirmed=renewal), licensing, role="billing").confirm_purchase(
        make_request("POST"), ACTION["purchase_id"]
    )
    assert result["license_status"] == "extended"
    assert result["license"]["activation_password"] is None


def test_a_confirmation_still_waiting_is_a_202_again() -> None:
    reply = gateway(StripeBilling(confirmed=dict(ACTION))).confirm_purchase(
        make_request("POST"), ACTION["purchase_id"]
    )
    assert (reply.status, reply.body) == (202, ACTION)


def test_confirmation_refusals_keep_their_status() -> None:
    with pytest.raises(PortalError) as caught:
        gateway(StripeBilling()).confirm_purchase(make_request("POST"), "pur_unknown")
    assert (caught.value.code, status_for(caught.value.code)) == ("purchase_not_found", 404)
    assert status_for("authentication_failed") == 402
    assert status_for("card_not_accepted") == 422
    assert status_for("invalid_signature") == 400


def test_the_confirmation_is_for_billing_users_with_a_csrf_token() -> None:
    for role in ("license_admin", "viewer"):
        with pytest.raises(PortalError) as caught:
            gateway(StripeBilling(), role=role).confirm_purchase(make_request("POST"), "pur_1")
        assert caught.value.code == "forbidden"
    cookie = make_request("POST", token=None, cookies={sessions.SESSION_COOKIE: TOKEN})
    with pytest.raises(PortalError) as caught:
        gateway(StripeBilling()).confirm_purchase(cookie, "pur_1")
    assert caught.value.code == "csrf_failed"


# --- the card of a recurring payment ------------------------------------------------------


def test_a_new_payment_method_goes_to_billing_instead_of_a_card() -> None:
    billing = StripeBilling()
    result = gateway(billing).replace_card(make_request("PUT"), "rp_1", body={"payment_method": PM})
    assert result["card_last4"] == "4242"
    assert billing.calls == [("replace_card", "rp_1", "C1000001", None, PM)]
    gateway(billing).replace_card(make_request("PUT"), "rp_1", body={"card": CARD})
    assert billing.calls[-1] == ("replace_card", "rp_1", "C1000001", CARD, None)


# --- the catalog and the pages ------------------------------------------------------------


def test_the_catalog_names_stripe_and_its_publishable_key() -> None:
    with nameko_config.patch(STRIPE):
        catalog = gateway(Billing()).catalog(make_request())
    assert catalog["payment"] == {
        "provider": "stripe",
        "publishable_key": "pk_test_51Habc",
        "js_url": "http://127.0.0.1:8420/js.stripe.com/v3/",
    }
    with nameko_config.patch({**STRIPE, "STRIPE_JS_URL": None}):
        assert payments.catalog_payment()["js_url"] == "https://js.stripe.com/v3/"


def directives(csp: str) -> dict[str, list[str]]:
    return {part.split()[0]: part.split()[1:] for part in csp.split("; ")}


def test_the_sandbox_keeps_the_portals_csp() -> None:
    assert payments.checkout_csp() == PORTAL_CSP
    response = gateway(Billing()).buy_page(cookie_get("/buy"))
    assert response.headers["Content-Security-Policy"] == PORTAL_CSP


def cookie_get(path: str) -> Request:
    return make_request("GET", path, token=None, cookies={sessions.SESSION_COOKIE: TOKEN})


def test_with_stripe_the_card_pages_allow_stripe_js_and_nothing_else_changes() -> None:
    with nameko_config.patch(STRIPE):
        buy = gateway(Billing()).buy_page(cookie_get("/buy"))
        recurring = gateway(Billing()).recurring_payments_page(cookie_get("/recurring-payments"))
        licenses = gateway(Billing()).licenses_page(cookie_get("/licenses"))
    assert licenses.headers["Content-Security-Policy"] == PORTAL_CSP
    for response in (buy, recurring):
        csp = directives(response.headers["Content-Security-Policy"])
        portal = directives(PORTAL_CSP)
        origin = "http://127.0.0.1:8420"
        stripe_js = ["https://js.stripe.com", "https://*.js.stripe.com"]
        assert csp["script-src"] == ["'self'", origin, *stripe_js]
        assert csp["connect-src"] == ["'self'", origin, "https://api.stripe.com"]
        assert csp["frame-src"] == ["'self'", origin, *stripe_js, "https://hooks.stripe.com"]
        # everything else is the portal's own, as strict as ever
        assert {
            k: v for k, v in csp.items() if k not in ("script-src", "connect-src", "frame-src")
        } == {k: v for k, v in portal.items() if k not in ("script-src", "connect-src")}
    with nameko_config.patch({**STRIPE, "STRIPE_JS_URL": None}):
        assert (
            "script-src 'self' https://js.stripe.com https://*.js.stripe.com;"
            in payments.checkout_csp()
        )


@pytest.mark.parametrize(
    "settings",
    [
        {"PAYMENT_PROVIDER": "stripe"},
        {**STRIPE, "STRIPE_PUBLISHABLE_KEY": "sk_test_secret"},
        {**STRIPE, "STRIPE_JS_URL": "javascript:alert(1)"},
        {**STRIPE, "STRIPE_JS_URL": "js.stripe.com/v3/"},
        # plain http only on this machine (a local Stripe server)
        {**STRIPE, "STRIPE_JS_URL": "http://cdn.example.com/v3/"},
        {"PAYMENT_PROVIDER": "strpie"},
    ],
)
def test_a_payment_setting_the_portal_cannot_use_stops_the_start(settings) -> None:
    with nameko_config.patch(settings), pytest.raises(RuntimeError):
        payments.check()


def test_usable_payment_settings_start() -> None:
    payments.check()  # the sandbox, by default
    with nameko_config.patch(STRIPE):
        payments.check()


# --- the webhook ----------------------------------------------------------------------------


EVENT = '{"id": "evt_1", "type": "charge.refunded", "data": {"object": {"name": "Zoë"}}}'


def webhook_request(body: bytes, headers: dict[str, str] | None = None) -> Request:
    return make_request(
        "POST",
        "/webhooks/stripe",
        token=None,
        data=body,
        content_type="application/json; charset=utf-8",
        headers=headers,
    )


def test_the_webhook_hands_billing_the_body_as_sent_and_the_signature() -> None:
    billing = StripeBilling()
    request = webhook_request(EVENT.encode(), {"Stripe-Signature": "t=1,v1=good"})
    body = read_text(request, STRIPE_WEBHOOK_MAX_BYTES)
    result = gateway(billing).stripe_webhook(request, body=body)
    assert result == {"received": True, "duplicate": False, "type": "charge.refunded"}
    assert billing.webhooks == [(EVENT, "t=1,v1=good")]  # byte for byte: no re-encoding


def test_a_webhook_without_a_good_signature_is_billings_400() -> None:
    billing = StripeBilling()
    request = webhook_request(EVENT.encode())
    with pytest.raises(PortalError) as caught:
        gateway(billing).stripe_webhook(request, body=EVENT)
    assert (caught.value.code, status_for(caught.value.code)) == ("invalid_signature", 400)
    assert billing.webhooks == [(EVENT, None)]


def test_a_webhook_while_billing_is_down_is_a_503_stripe_retries() -> None:
    class Down(StripeBilling):
        def handle_stripe_webhook(self, payload: str, signature: str | None) -> dict:
            raise ServiceUnavailable()

    with pytest.raises(PortalError) as caught:
        gateway(Down()).stripe_webhook(webhook_request(b"{}"), body="{}")
    assert status_for(caught.value.code) == 503


def test_a_webhook_body_that_is_not_utf8_is_a_400() -> None:
    with pytest.raises(PortalError) as caught:
        read_text(webhook_request(b'{"x": "\xff"}'), STRIPE_WEBHOOK_MAX_BYTES)
    assert caught.value.code == "bad_request"


def webhook_app() -> Client:
    """The WSGI app with the webhook's route only, whose handler answers the body's size."""

    class Echo(JsonRoute):
        def handle_request(self, request: Request) -> Response:
            return Response(str(len(read_text(request, self.spec.max_body))))

    (spec,) = [route for route in ROUTES if route.path == "/webhooks/stripe"]
    web = JsonWebServer()
    web.limits = Limits()
    web.register_provider(Echo(spec.method, spec.path, spec=spec))
    return Client(JsonWsgiApp(web))


def test_a_webhook_body_may_be_256_kib_and_no_more() -> None:
    assert STRIPE_WEBHOOK_MAX_BYTES == 256 * 1024 > MAX_BODY_BYTES
    client = webhook_app()
    ok = client.post("/webhooks/stripe", data=b" " * STRIPE_WEBHOOK_MAX_BYTES)
    assert (ok.status_code, ok.get_data(as_text=True)) == (200, str(STRIPE_WEBHOOK_MAX_BYTES))
    for data in (b" " * (STRIPE_WEBHOOK_MAX_BYTES + 1),):
        refused = client.post("/webhooks/stripe", data=data)
        assert refused.status_code == 413
        error = json.loads(refused.get_data())["error"]
        assert error["code"] == "payload_too_large"
        assert error["details"] == {"limit": STRIPE_WEBHOOK_MAX_BYTES}
    # any other route keeps the 64 KiB limit
    other = client.post("/api/v1/sessions", data=b" " * (MAX_BODY_BYTES + 1))
    assert other.status_code == 413
    assert json.loads(other.get_data())["error"]["details"] == {"limit": MAX_BODY_BYTES}


def test_the_webhook_needs_no_session_and_no_csrf_token() -> None:
    (spec,) = [route for route in ROUTES if route.path == "/webhooks/stripe"]
    assert spec.auth is None and spec.raw_body and spec.body is None


# --- the OpenAPI document -------------------------------------------------------------------


def test_openapi_shows_the_202_the_confirmation_and_the_webhook() -> None:
    paths = openapi.build()["paths"]
    purchase = paths["/api/v1/purchases"]["post"]["responses"]
    ref = purchase["202"]["content"]["application/json"]["schema"]["$ref"]
    assert ref.endswith("/PurchaseActionOut")
    assert "`card_not_accepted`" in purchase["422"]["description"]
    confirm = paths["/api/v1/purchases/{purchase_id}/confirm"]["post"]
    assert {"201", "202", "402", "404"} <= set(confirm["responses"])
    assert "`authentication_failed`" in confirm["responses"]["402"]["description"]
    assert confirm["x-roles"] == ["owner", "billing"]
    hook = paths["/webhooks/stripe"]["post"]
    assert "security" not in hook
    assert "`invalid_signature`" in hook["responses"]["400"]["description"]
    assert "413" in hook["responses"]
    # a missing signature is billing's 400 invalid_signature, not a schema error
    [signature] = [p for p in hook["parameters"] if p["name"] == "Stripe-Signature"]
    assert signature["required"] is False
    # the body is no JSON the gateway reads: described, not given a schema
    assert "requestBody" not in hook and "Stripe event" in hook["description"]
    card = paths["/api/v1/recurring-payments/{recurring_payment_id}/card"]["put"]
    assert "`card_not_accepted`" in card["responses"]["422"]["description"]
    components = openapi.build()["components"]["schemas"]
    assert {"provider", "publishable_key", "js_url"} <= set(
        components["PaymentProviderOut"]["properties"]
    )
    assert "payment" in components["Catalog"]["properties"]
    assert "payment_method" in components["PurchaseBody"]["properties"]


def test_a_card_number_stops_at_the_gateway_with_stripe() -> None:
    # with Stripe a card number never rides the bus to billing: refused before any call
    billing = StripeBilling()
    with nameko_config.patch(STRIPE):
        for call in (
            lambda: gateway(billing).purchase(
                make_request("POST"), body={"plan": "cad-m", "seats": 2, "card": CARD}
            ),
            lambda: gateway(billing).replace_card(make_request("PUT"), "rp_1", body={"card": CARD}),
        ):
            with pytest.raises(PortalError) as caught:
                call()
            assert caught.value.code == "card_not_accepted"
            assert caught.value.details == {"fields": {"card": [payments.CARD_NOT_ACCEPTED]}}
    assert billing.purchases == [] and billing.calls == []
