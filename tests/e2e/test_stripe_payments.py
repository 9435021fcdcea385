"""Payments through Stripe end to end: every service a process with PAYMENT_PROVIDER=stripe, a
local Stripe server (tests/support/stripe_server.py) as the provider, its webhooks delivered
to the gateway, HTTP as the portal's JavaScript speaks it.

Payment methods are made as Stripe.js makes them in the browser (the publishable key; the
card number never reaches the portal): a purchase is charged at Stripe and seen there; declines
answer Stripe's codes and leave nothing; a card number is refused; a bank asking for 3-D Secure
makes a purchase wait (202) until the customer confirms it, or fails it; renewals charge off
session (a bank wanting 3-D Secure then declines); the card of a recurring payment changes; a
refund made at Stripe marks the receipt refunded; a dispute marks the payment disputed and
suspends the license until it is won. Webhooks with a bad signature change nothing, and an
event sent twice acts once.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timedelta

import psycopg2
import pytest
import stripe

from tests.support.stripe import StripeServer
from tests.support.suite import Api, Suite
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e

PASSWORD = "Stripe-Lantern-58"
OK = "4242424242424242"
MASTERCARD = "5555555555554444"
DECLINED_AT_CHARGE = "4000000000000341"
INSUFFICIENT_FUNDS = "4000000000009995"
DECLINED_AT_ATTACH = "4000000000000002"
THREE_D_SECURE = "4000002760003184"
RAW_CARD = {"number": OK, "exp_month": 12, "exp_year": 2031, "cvc": "123"}


# --- helpers ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def portal(stripe_suite) -> Api:
    return stripe_suite.api


@pytest.fixture(scope="module")
def plans(stripe_suite) -> dict[str, str]:
    """A product with a yearly plan (never due in this module) and a monthly one (renewals)."""
    code = f"stp{uuid.uuid4().hex[:8]}"
    stripe_suite.portalctl("product", "create", "--code", code, "--name", "Stripe CAD")
    made = {}
    for interval, amount in (("year", "490.00"), ("month", "49.00")):
        made[interval] = stripe_suite.portalctl(
            "plan", "create", "--code", f"{code}-{interval[0]}", "--product", code,
            "--amount", amount, "--currency", "EUR", "--interval", interval,
        )["code"]  # fmt: skip
    return made


def new_customer(suite: Suite) -> tuple[dict, str]:
    email = f"stripe.{uuid.uuid4().hex[:10]}@example.test"
    company = suite.portalctl(
        "company", "create", "--name", "Stripe Buyers", "--contact-name", "Ada",
        "--email", email, "--password", PASSWORD,
    )  # fmt: skip
    return company, suite.api.login(email, PASSWORD)


def buy(api: Api, token: str, plan: str, payment_method: str, seats: int = 1, **extra):
    body = {"plan": plan, "seats": seats, "payment_method": payment_method, **extra}
    return api.post("/api/v1/purchases", json=body, token=token)


def confirm(api: Api, token: str, purchase_id: str):
    return api.post(f"/api/v1/purchases/{purchase_id}/confirm", token=token)


def payments_of(api: Api, token: str) -> list[dict]:
    return api.get("/api/v1/payments", token=token).json()["payments"]


def recurring_of(api: Api, token: str) -> list[dict]:
    return api.get("/api/v1/recurring-payments", token=token).json()["recurring_payments"]


def licenses_of(api: Api, token: str) -> list[dict]:
    return api.get("/api/v1/licenses", token=token).json()["licenses"]


def stripe_customer(server: StripeServer, company: dict) -> stripe.Customer:
    """The Stripe customer billing made for `company` (metadata `company_id`)."""
    query = f"metadata['company_id']:'{company['customer_id']}'"
    [customer] = server.client().v1.customers.search({"query": query}).data
    return customer


def intents_of(server: StripeServer, company: dict) -> list[stripe.PaymentIntent]:
    """The company's payment intents at Stripe, newest first."""
    query = f"customer:'{stripe_customer(server, company).id}'"
    return list(server.client().v1.payment_intents.search({"query": query, "limit": 100}).data)


def paid_intent(server: StripeServer, company: dict) -> stripe.PaymentIntent:
    [intent] = [i for i in intents_of(server, company) if i.status == "succeeded"]
    return intent


def recorded(suite: Suite, event_id: str) -> bool:
    """Whether billing recorded the webhook event `event_id`."""
    connection = psycopg2.connect(suite.env["BILLING_DATABASE_URL"])
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM webhook_events WHERE event_id = %s", (event_id,))
            return cursor.fetchone()[0] == 1
    finally:
        connection.close()


def delivered(suite: Suite, server: StripeServer, type_: str, intent_id: str) -> dict:
    """The event of `type_` about payment intent `intent_id` that the server sent, once billing
    recorded it."""

    def sent() -> dict | None:
        for event in server.events(type_):
            obj = event["data"]["object"]
            if intent_id in (obj.get("id"), obj.get("payment_intent")) and recorded(
                suite, event["id"]
            ):
                return event
        return None

    return eventually(sent, timeout=15, what=f"{type_} of {intent_id} recorded by billing")


def post_event(api: Api, server: StripeServer, event: dict):
    payload, headers = server.signed(event)
    return api.post("/webhooks/stripe", data=payload, headers=headers)


def paid(api: Api, token: str, server: StripeServer, plan: str, card: str = OK) -> dict:
    response = buy(api, token, plan, server.payment_method(card))
    assert response.status_code == 201, response.text
    return response.json()


# --- the catalog and purchases ---------------------------------------------------------------


def test_the_catalog_names_stripe_and_its_js(stripe_suite, stripe_server, portal):
    _, token = new_customer(stripe_suite)
    payment = portal.get("/api/v1/catalog", token=token).json()["payment"]
    assert payment == {
        "provider": "stripe",
        "publishable_key": stripe_server.publishable_key,
        "js_url": stripe_server.js_url,
    }


def test_a_purchase_is_charged_at_stripe(stripe_suite, stripe_server, portal, plans):
    company, token = new_customer(stripe_suite)
    body = paid(portal, token, stripe_server, plans["year"])
    payment = body["payment"]
    assert (payment["amount"], payment["currency"]) == (49000, "EUR")
    assert body["license_status"] == "issued", body
    assert body["license"]["expires_at"] == payment["period_end"]
    [listed] = payments_of(portal, token)
    assert listed["receipt_number"] == payment["receipt_number"] and listed["status"] == "paid"
    # the sandbox says "Visa"; Stripe's brands are lower case ("visa")
    assert (listed["card_brand"].lower(), listed["card_last4"]) == ("visa", "4242")
    [recurring] = recurring_of(portal, token)
    assert recurring["card_last4"] == "4242" and recurring["status"] == "active"

    customer = stripe_customer(stripe_server, company)
    intent = paid_intent(stripe_server, company)
    assert (intent.amount, intent.currency) == (49000, "eur")
    assert intent.metadata["charge_key"] and intent.setup_future_usage == "off_session"
    method = stripe_server.client().v1.payment_methods.retrieve(intent.payment_method)
    assert method.customer == customer.id  # saved for renewals
    # Stripe says it succeeded, billing hears it and has nothing more to do
    delivered(stripe_suite, stripe_server, "payment_intent.succeeded", intent.id)
    assert len(payments_of(portal, token)) == 1


@pytest.mark.parametrize(
    ("card", "code"),
    [
        (DECLINED_AT_CHARGE, "card_declined"),
        (INSUFFICIENT_FUNDS, "insufficient_funds"),
        (DECLINED_AT_ATTACH, "card_declined"),
    ],
)
def test_a_declined_card_is_402_and_leaves_nothing(
    stripe_suite, stripe_server, portal, plans, card, code
):
    _, token = new_customer(stripe_suite)
    response = buy(portal, token, plans["year"], stripe_server.payment_method(card))
    assert response.status_code == 402, response.text
    assert response.json()["error"]["code"] == code
    assert payments_of(portal, token) == []
    assert recurring_of(portal, token) == []
    assert licenses_of(portal, token) == []


def test_card_numbers_are_not_accepted(stripe_suite, stripe_server, portal, plans):
    _, token = new_customer(stripe_suite)
    plan = plans["year"]
    raw = portal.post(
        "/api/v1/purchases", json={"plan": plan, "seats": 1, "card": RAW_CARD}, token=token
    )
    assert raw.status_code == 422, raw.text
    assert raw.json()["error"]["code"] == "card_not_accepted"
    method = stripe_server.payment_method(OK)
    both = buy(portal, token, plan, method, card=RAW_CARD)
    assert both.status_code == 422, both.text
    neither = portal.post("/api/v1/purchases", json={"plan": plan, "seats": 1}, token=token)
    assert neither.status_code == 422 and "payment_method" in neither.text
    assert buy(portal, token, plan, "pm_<script>").status_code == 422
    unknown = buy(portal, token, plan, "pm_unknown0123456789")
    assert unknown.status_code in (402, 422), unknown.text
    assert payments_of(portal, token) == []


def test_3d_secure_makes_the_purchase_wait_for_the_customer(
    stripe_suite, stripe_server, portal, plans
):
    company, token = new_customer(stripe_suite)
    _, stranger = new_customer(stripe_suite)
    method = stripe_server.payment_method(THREE_D_SECURE)
    key = {"Idempotency-Key": f"3ds-{uuid.uuid4().hex}"}
    body = {"plan": plans["year"], "seats": 2, "payment_method": method}
    waiting = portal.post("/api/v1/purchases", json=body, token=token, headers=key)
    assert waiting.status_code == 202, waiting.text
    action = waiting.json()
    assert action["status"] == "requires_action" and action["purchase_id"].startswith("pur_")
    assert action["client_secret"].startswith("pi_")
    again = portal.post("/api/v1/purchases", json=body, token=token, headers=key)
    assert (again.status_code, again.json()) == (202, action)
    assert payments_of(portal, token) == []
    assert confirm(portal, token, action["purchase_id"]).status_code == 202  # not yet

    stripe_server.authenticate(action["client_secret"], success=True)
    assert confirm(portal, stranger, action["purchase_id"]).status_code == 404
    confirmed = confirm(portal, token, action["purchase_id"])
    assert confirmed.status_code == 201, confirmed.text
    answer = confirmed.json()
    assert answer["payment"]["amount"] == 98000 and answer["license_status"] == "issued"
    assert answer["license"]["seats"] == 2
    repeated = confirm(portal, token, action["purchase_id"])
    assert repeated.status_code == 201
    assert repeated.json()["payment"]["receipt_number"] == answer["payment"]["receipt_number"]

    # Stripe's payment_intent.succeeded arrives after the confirmation: still one receipt
    intent = paid_intent(stripe_server, company)
    delivered(stripe_suite, stripe_server, "payment_intent.succeeded", intent.id)
    [listed] = payments_of(portal, token)
    assert listed["receipt_number"] == answer["payment"]["receipt_number"]
    assert len(licenses_of(portal, token)) == 1


def test_failed_3d_secure_charges_nothing(stripe_suite, stripe_server, portal, plans):
    _, token = new_customer(stripe_suite)
    waiting = buy(portal, token, plans["year"], stripe_server.payment_method(THREE_D_SECURE))
    assert waiting.status_code == 202, waiting.text
    action = waiting.json()
    stripe_server.authenticate(action["client_secret"], success=False)
    failed = confirm(portal, token, action["purchase_id"])
    assert failed.status_code == 402, failed.text
    assert failed.json()["error"]["code"] == "authentication_failed"
    assert confirm(portal, token, action["purchase_id"]).status_code == 402
    assert payments_of(portal, token) == []
    assert licenses_of(portal, token) == []


# --- recurring payments ----------------------------------------------------------------------


def test_the_card_of_a_recurring_payment_changes(stripe_suite, stripe_server, portal, plans):
    company, token = new_customer(stripe_suite)
    paid(portal, token, stripe_server, plans["year"])
    [recurring] = recurring_of(portal, token)
    path = f"/api/v1/recurring-payments/{recurring['id']}/card"

    changed = portal.put(
        path, json={"payment_method": stripe_server.payment_method(MASTERCARD)}, token=token
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["card_last4"] == "4444"
    for card in (THREE_D_SECURE, DECLINED_AT_ATTACH):
        refused = portal.put(
            path, json={"payment_method": stripe_server.payment_method(card)}, token=token
        )
        assert refused.status_code == 402, (card, refused.text)
        assert refused.json()["error"]["code"] == "card_declined"
        if card == THREE_D_SECURE:
            assert "confirm this card" in refused.json()["error"]["message"]
    raw = portal.put(path, json={"card": RAW_CARD}, token=token)
    assert raw.status_code == 422 and raw.json()["error"]["code"] == "card_not_accepted"
    [after] = recurring_of(portal, token)
    assert after["card_last4"] == "4444"
    # the new card is the Stripe customer's too
    customer = stripe_customer(stripe_server, company)
    methods = stripe_server.client().v1.payment_methods.list(
        {"customer": customer.id, "type": "card"}
    )
    assert "4444" in {method.card.last4 for method in methods.data}


def test_renewals_charge_off_session(stripe_suite, stripe_server, portal, plans):
    """One pass: a saved card pays; a card whose bank wants 3-D Secure declines (nobody is
    there to confirm); a card changed to one without funds declines."""
    payer, payer_token = new_customer(stripe_suite)
    first = paid(portal, payer_token, stripe_server, plans["month"])

    asker, asker_token = new_customer(stripe_suite)
    waiting = buy(portal, asker_token, plans["month"], stripe_server.payment_method(THREE_D_SECURE))
    assert waiting.status_code == 202, waiting.text
    stripe_server.authenticate(waiting.json()["client_secret"])
    assert confirm(portal, asker_token, waiting.json()["purchase_id"]).status_code == 201

    poor, poor_token = new_customer(stripe_suite)
    paid(portal, poor_token, stripe_server, plans["month"])
    [recurring] = recurring_of(portal, poor_token)
    changed = portal.put(
        f"/api/v1/recurring-payments/{recurring['id']}/card",
        json={"payment_method": stripe_server.payment_method(INSUFFICIENT_FUNDS)},
        token=poor_token,
    )
    assert changed.status_code == 200, changed.text

    for token in (payer_token, asker_token, poor_token):
        eventually(lambda t=token: recurring_of(portal, t)[0]["license_id"], what="linked")
    due = datetime.fromisoformat(first["payment"]["period_end"]).date()
    as_of = (due + timedelta(days=1)).isoformat()
    report = stripe_suite.portalctl("billing", "run-renewals", "--as-of", as_of)
    assert report["succeeded"] >= 1 and report["declined"] >= 2, report

    payments = payments_of(portal, payer_token)
    assert len(payments) == 2
    assert payments[0]["period_start"] == first["payment"]["period_end"]
    renewal, purchase = intents_of(stripe_server, payer)[:2]
    assert renewal.status == purchase.status == "succeeded"
    assert renewal.amount == first["payment"]["amount"] and renewal.id != purchase.id

    assert len(payments_of(portal, asker_token)) == 1
    declined = intents_of(stripe_server, asker)[0]
    assert declined.status in ("requires_payment_method", "canceled")
    assert declined.last_payment_error.code == "authentication_required"

    assert len(payments_of(portal, poor_token)) == 1
    poor_intent = intents_of(stripe_server, poor)[0]
    assert poor_intent.last_payment_error.decline_code == "insufficient_funds"


# --- webhooks --------------------------------------------------------------------------------


def test_a_refund_made_at_stripe_marks_the_receipt_refunded(
    stripe_suite, stripe_server, portal, plans
):
    company, token = new_customer(stripe_suite)
    paid(portal, token, stripe_server, plans["year"])
    intent = paid_intent(stripe_server, company)
    stripe_server.client().v1.refunds.create({"payment_intent": intent.id})

    [refunded] = eventually(
        lambda: [p for p in payments_of(portal, token) if p["status"] == "refunded"],
        timeout=15,
        what="the receipt refunded",
    )
    assert refunded["refunded_at"] and refunded["refund_reason"]
    [recurring] = recurring_of(portal, token)
    assert recurring["status"] != "active"


def test_a_partial_refund_at_stripe_leaves_the_payment_paid(
    stripe_suite, stripe_server, portal, plans
):
    company, token = new_customer(stripe_suite)
    paid(portal, token, stripe_server, plans["year"])
    intent = paid_intent(stripe_server, company)
    stripe_server.client().v1.refunds.create({"payment_intent": intent.id, "amount": 1000})
    delivered(stripe_suite, stripe_server, "charge.refunded", intent.id)
    [payment] = payments_of(portal, token)
    assert payment["status"] == "paid"


def test_a_webhook_with_a_bad_signature_changes_nothing(stripe_suite, stripe_server, portal):
    event = stripe_server.event(
        "payment_intent.succeeded",
        {"id": f"pi_{uuid.uuid4().hex[:14]}", "object": "payment_intent", "status": "succeeded",
         "amount": 100, "currency": "eur", "metadata": {}},
    )  # fmt: skip
    payload = json.dumps(event).encode()
    now = int(time.time())
    for signature in (
        stripe_server.sign(payload, secret="whsec_someone_else"),
        stripe_server.sign(payload, timestamp=now - 3600),  # replayed long after
        stripe_server.sign(payload + b" "),
        "t=1,v1=00",
        None,
    ):
        headers = {"Content-Type": "application/json"}
        if signature is not None:
            headers["Stripe-Signature"] = signature
        refused = portal.post("/webhooks/stripe", data=payload, headers=headers)
        assert refused.status_code == 400, (signature, refused.text)
        assert refused.json()["error"]["code"] == "invalid_signature"
    assert not recorded(stripe_suite, event["id"])
    # the same event, signed: recorded (an intent billing does not know is ignored)
    accepted = post_event(portal, stripe_server, event)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json() == {"received": True, "duplicate": False, "type": event["type"]}
    assert recorded(stripe_suite, event["id"])


def test_an_event_sent_again_acts_once(stripe_suite, stripe_server, portal, plans):
    company, token = new_customer(stripe_suite)
    paid(portal, token, stripe_server, plans["year"])
    intent = paid_intent(stripe_server, company)
    # a partial refund made at Stripe, its event sent again: counted once
    stripe_server.client().v1.refunds.create({"payment_intent": intent.id, "amount": 1000})
    sent = delivered(stripe_suite, stripe_server, "charge.refunded", intent.id)
    again = post_event(portal, stripe_server, sent)
    assert again.status_code == 200, again.text
    assert again.json()["duplicate"] is True
    [payment] = payments_of(portal, token)
    assert (payment["status"], payment["refunded_amount"]) == ("paid", 1000)
    # a dispute won, then its opening sent again (the same event, then a new one): never
    # reopened
    dispute = {
        "id": f"dp_{uuid.uuid4().hex[:14]}",
        "object": "dispute",
        "amount": intent.amount,
        "currency": intent.currency,
        "charge": intent.latest_charge.id,
        "payment_intent": intent.id,
        "reason": "fraudulent",
        "status": "needs_response",
        "created": int(time.time()),
    }
    opened = stripe_server.event("charge.dispute.created", dispute)
    won = stripe_server.event("charge.dispute.closed", {**dispute, "status": "won"})
    for event in (opened, won):
        assert post_event(portal, stripe_server, event).status_code == 200
    replayed = post_event(portal, stripe_server, opened)
    assert replayed.status_code == 200 and replayed.json()["duplicate"] is True
    reopened = post_event(portal, stripe_server, stripe_server.event(opened["type"], dispute))
    assert reopened.status_code == 200 and reopened.json()["duplicate"] is False
    [payment] = payments_of(portal, token)
    assert (payment["status"], payment["dispute_status"]) == ("paid", "won")
    assert payment["refunded_amount"] == 1000
    assert len(licenses_of(portal, token)) == 1


def test_a_dispute_suspends_the_license_until_it_is_won(
    stripe_suite, stripe_server, portal, plans, smtp_sink
):
    company, token = new_customer(stripe_suite)
    body = paid(portal, token, stripe_server, plans["year"])
    license_id = body["license"]["license_id"]
    receipt = body["payment"]["receipt_number"]
    email = company["contact_email"]
    intent = paid_intent(stripe_server, company)
    dispute = {
        "id": f"dp_{uuid.uuid4().hex[:14]}",
        "object": "dispute",
        "amount": intent.amount,
        "currency": intent.currency,
        "charge": intent.latest_charge.id,
        "payment_intent": intent.id,
        "reason": "fraudulent",
        "status": "needs_response",
        "created": int(time.time()),
    }
    opened = stripe_server.event("charge.dispute.created", dispute)
    first = post_event(portal, stripe_server, opened)
    assert first.status_code == 200, first.text
    assert first.json() == {"received": True, "duplicate": False, "type": opened["type"]}
    second = post_event(portal, stripe_server, opened)
    assert second.status_code == 200 and second.json()["duplicate"] is True

    [payment] = payments_of(portal, token)
    assert payment["status"] == "disputed"
    assert payment["dispute_status"] == "needs_response" and payment["disputed_at"]

    def suspended() -> dict | None:
        [license] = licenses_of(portal, token)
        return license if license["status"] == "suspended" else None

    license = eventually(suspended, timeout=15, what="the license suspended")
    assert license["license_id"] == license_id
    assert "disput" in license["suspension_reason"].lower(), license
    assert license["suspension_cause"] == "payment_disputed"
    [recurring] = recurring_of(portal, token)
    assert recurring["status"] != "active"

    won = stripe_server.event("charge.dispute.closed", {**dispute, "status": "won"})
    closed = post_event(portal, stripe_server, won)
    assert closed.status_code == 200, closed.text
    [payment] = payments_of(portal, token)
    assert payment["status"] == "paid" and payment["dispute_status"] == "won"
    eventually(
        lambda: licenses_of(portal, token)[0]["status"] == "active",
        timeout=15,
        what="the license resumed",
    )
    subject = f"Dispute of payment {receipt} closed"
    smtp_sink.wait_for(lambda m: subject in (m["Subject"] or ""), to=email, timeout=20)
    # the event sent twice was told once (its email came before the closing one)
    told = [m for m in smtp_sink.messages(to=email) if "is disputed" in (m["Subject"] or "")]
    assert len(told) == 1 and receipt in told[0]["Subject"]
