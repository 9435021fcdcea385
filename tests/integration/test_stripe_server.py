"""The local Stripe server (tests/support/stripe_server.py) behaves like Stripe where the
portal relies on it: idempotent requests replay their first answer, payment intents are found
by their charge key, declines carry Stripe's codes (insufficient funds at charge, 3-D Secure
required off session), browsers create payment methods with the publishable key only, 3-D
Secure passes or fails as the customer chooses, and refunds send signed `charge.refunded`
webhooks that the stripe library verifies. In Chromium, its Stripe.js turns a card element
into a payment method and shows the 3-D Secure modal.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
import requests
import stripe

from tests.e2e.ui_browser import Browser, missing
from tests.support.stripe import StripeServer, running_stripe_server
from tests.support.waiting import eventually

pytestmark = pytest.mark.timeout(60)


class Received:
    """Webhooks delivered to a local HTTP endpoint: (Stripe-Signature, body) pairs."""

    def __init__(self) -> None:
        self.deliveries: list[tuple[str, bytes]] = []
        received = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.deliveries.append((self.headers["Stripe-Signature"], body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.http = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_port}/webhooks/stripe"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def events(self, secret: str) -> list[stripe.Event]:
        return [
            stripe.Webhook.construct_event(body.decode(), signature, secret)
            for signature, body in self.deliveries
        ]


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[StripeServer]:
    with running_stripe_server(tmp_path_factory.mktemp("stripe-server")) as server:
        yield server


@pytest.fixture(scope="module")
def webhooks(server) -> Iterator[Received]:
    received = Received()
    server.register_webhook(received.url, endpoint="integration")
    yield received
    received.http.shutdown()


@pytest.fixture
def customer(server) -> stripe.Customer:
    return server.client().v1.customers.create({"metadata": {"company_id": uuid.uuid4().hex}})


def pay(server: StripeServer, customer: stripe.Customer, card: str, **extra: object):
    client = server.client()
    method = server.payment_method(card)
    client.v1.payment_methods.attach(method, {"customer": customer.id})
    params = {
        "amount": 4900,
        "currency": "eur",
        "customer": customer.id,
        "payment_method": method,
        "confirm": True,
        **extra,
    }
    return client.v1.payment_intents.create(params)


def test_an_idempotency_key_replays_the_first_answer(server, customer):
    key = f"charge-{uuid.uuid4().hex}"
    method = server.payment_method("4242424242424242")
    body = {
        "amount": "4900", "currency": "eur", "customer": customer.id,
        "payment_method": method, "confirm": "true", "metadata[charge_key]": key,
    }  # fmt: skip
    headers = {"Idempotency-Key": key}
    auth = (server.secret_key, "")
    url = f"{server.url}/v1/payment_intents"
    first = requests.post(url, data=body, headers=headers, auth=auth, timeout=5)
    again = requests.post(url, data=body, headers=headers, auth=auth, timeout=5)
    assert first.status_code == again.status_code == 200, first.text
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    other = requests.post(url, data={**body, "amount": "1"}, headers=headers, auth=auth, timeout=5)
    assert other.status_code == 400
    assert other.json()["error"]["type"] == "idempotency_error"

    found = server.client().v1.payment_intents.search({"query": f"metadata['charge_key']:'{key}'"})
    assert [intent.id for intent in found.data] == [first.json()["id"]]
    assert found.data[0].status == "succeeded"
    nothing = server.client().v1.payment_intents.search({"query": "metadata['charge_key']:'no'"})
    assert nothing.data == []


def test_insufficient_funds_attach_then_decline_at_charge(server, customer):
    with pytest.raises(stripe.CardError) as declined:
        pay(server, customer, "4000000000009995", metadata={"charge_key": "k"})
    assert declined.value.code == "card_declined"
    assert declined.value.error.decline_code == "insufficient_funds"
    intent = declined.value.error.payment_intent
    assert intent.status == "requires_payment_method"
    assert intent.last_payment_error.decline_code == "insufficient_funds"

    with pytest.raises(stripe.CardError) as generic:
        pay(server, customer, "4000000000000341")
    assert generic.value.error.decline_code == "generic_decline"
    with pytest.raises(stripe.CardError) as at_attach:
        server.client().v1.payment_methods.attach(
            server.payment_method("4000000000000002"), {"customer": customer.id}
        )
    assert at_attach.value.code == "card_declined"


def test_payment_methods_take_the_publishable_key_and_nothing_else(server):
    card = {
        "type": "card", "card[number]": "4242424242424242", "card[exp_month]": "12",
        "card[exp_year]": "2031", "card[cvc]": "123",
    }  # fmt: skip
    url = f"{server.url}/v1/payment_methods"
    assert requests.post(url, data=card, timeout=5).status_code == 401
    wrong = requests.post(url, data={**card, "key": "pk_test_someone_else"}, timeout=5)
    assert wrong.status_code == 401
    made = requests.post(url, data={**card, "key": server.publishable_key}, timeout=5)
    assert made.status_code == 200, made.text
    assert made.json()["card"]["last4"] == "4242" and "number" not in made.json()["card"]
    # the publishable key reads nothing, and other secret keys are refused
    by_pk = requests.get(
        f"{url}/{made.json()['id']}", params={"key": server.publishable_key}, timeout=5
    )
    assert by_pk.status_code == 401
    other = stripe.StripeClient("sk_test_other", base_addresses={"api": server.url})
    with pytest.raises(stripe.AuthenticationError):
        other.v1.payment_methods.retrieve(made.json()["id"])


def test_3d_secure_passes_or_fails_as_the_customer_chooses(server, customer, webhooks):
    intent = pay(server, customer, "4000002760003184", setup_future_usage="off_session")
    assert intent.status == "requires_action" and intent.client_secret
    assert server.authenticate(intent.client_secret, success=True)["status"] == "succeeded"
    assert server.client().v1.payment_intents.retrieve(intent.id).status == "succeeded"

    failed = pay(server, customer, "4000002760003184", description="CAD Pro")
    assert server.authenticate(failed.client_secret, success=False)["status"] == (
        "requires_payment_method"
    )

    # off session nobody can authenticate: Stripe declines at once
    with pytest.raises(stripe.CardError) as off_session:
        pay(server, customer, "4000002760003184", off_session=True)
    assert off_session.value.code == "authentication_required"
    assert off_session.value.error.payment_intent.status == "requires_payment_method"
    setup = server.client().v1.setup_intents.create(
        {
            "customer": customer.id,
            "payment_method": server.payment_method("4000002760003184"),
            "confirm": True,
            "usage": "off_session",
        }
    )
    assert setup.status == "requires_action"

    def failures() -> list[str]:
        return [
            event.data.object.id
            for event in webhooks.events(server.webhook_secret)
            if event.type == "payment_intent.payment_failed"
        ]

    eventually(lambda: failed.id in failures(), timeout=5, what="payment_failed of 3DS")


def test_a_refund_sends_a_signed_charge_refunded(server, customer, webhooks):
    intent = pay(server, customer, "4242424242424242")
    client = server.client()
    client.v1.refunds.create({"payment_intent": intent.id, "amount": 900})
    with pytest.raises(stripe.InvalidRequestError) as too_much:
        client.v1.refunds.create({"payment_intent": intent.id, "amount": 4001})
    assert too_much.value.code == "amount_too_large"

    def refunded() -> stripe.Event | None:
        for event in webhooks.events(server.webhook_secret):
            if event.type == "charge.refunded" and event.data.object.payment_intent == intent.id:
                return event
        return None

    event = eventually(refunded, timeout=5, what="charge.refunded")
    assert event.data.object.amount_refunded == 900 and event.data.object.refunded is False
    with pytest.raises(stripe.SignatureVerificationError):
        signature, body = webhooks.deliveries[0]
        stripe.Webhook.construct_event(body.decode(), signature, "whsec_wrong")
    # the tests' own signatures verify the same way
    payload = b'{"id": "evt_1", "object": "event", "type": "ping", "data": {"object": {}}}'
    signed = stripe.Webhook.construct_event(
        payload.decode(), server.sign(payload), server.webhook_secret
    )
    assert signed.type == "ping"


# Stripe.js in a page: a card element, createPaymentMethod, then 3-D Secure in the modal
STRIPE_JS_JOURNEY = """
const [jsUrl, key, number, done] = arguments;
const script = document.createElement('script');
script.src = jsUrl;
script.onload = async () => {
  try {
    const stripe = Stripe(key);
    const card = stripe.elements().create('card');
    card.mount('#card');
    let change = null;
    card.on('change', event => { change = event; });
    const empty = await stripe.createPaymentMethod({type: 'card', card: card});
    const values = [number, '12', '2031', '123', '75001'];
    document.querySelectorAll('#card input').forEach((input, index) => {
      input.value = values[index];
      input.dispatchEvent(new Event('input'));
    });
    const made = await stripe.createPaymentMethod({type: 'card', card: card});
    done({empty, made, change});
  } catch (err) {
    done({thrown: String(err)});
  }
};
document.head.appendChild(script);
"""


def test_stripe_js_creates_payment_methods_and_asks_for_3d_secure(server, customer):
    reason = missing()
    if reason:
        pytest.skip(reason)
    browser = Browser(server.url)
    try:
        browser.driver.set_script_timeout(15)
        browser.open("/js.stripe.com/v3/")  # a page of the server's origin
        browser.driver.execute_script(
            "document.open(); document.write('<body><div id=card></div></body>');document.close();"
        )
        answer = browser.driver.execute_async_script(
            STRIPE_JS_JOURNEY, server.js_url, server.publishable_key, "4000002760003184"
        )
        assert "thrown" not in answer, answer
        assert answer["empty"]["error"]["message"] == "Your card number is incomplete."
        assert answer["change"]["complete"] is True, answer
        method = answer["made"]["paymentMethod"]
        assert method["card"]["last4"] == "3184" and method["card"]["exp_year"] == 2031

        server.client().v1.payment_methods.attach(method["id"], {"customer": customer.id})
        intent = server.client().v1.payment_intents.create(
            {
                "amount": 4900, "currency": "eur", "customer": customer.id,
                "payment_method": method["id"], "confirm": True,
            }
        )  # fmt: skip
        browser.driver.execute_script(
            "Stripe(arguments[1]).confirmCardPayment(arguments[0])"
            ".then(result => { window.confirmed = result; });",
            intent.client_secret,
            server.publishable_key,
        )
        browser.driver.find_element("xpath", "//button[text()='Complete authentication']").click()
        result = browser.wait(lambda d: d.execute_script("return window.confirmed"), 10)
        assert result["paymentIntent"]["status"] == "succeeded", result
    finally:
        browser.quit()
