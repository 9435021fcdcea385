"""The Stripe provider over a fake `StripeClient`: what it asks Stripe, and how Stripe's answers
and errors become the provider interface's (the real server: tests/integration/billing)."""

from __future__ import annotations

import doctest
import hashlib
import hmac
import json
import time
from types import SimpleNamespace
from typing import Any

import pytest
import stripe
from nameko import config as nameko_config

from common import settings as common_settings
from services.billing import stripe_provider
from services.billing.dependencies import Provider
from services.billing.providers import (
    DECLINED,
    REQUIRES_ACTION,
    SUCCEEDED,
    Card,
    CardRefused,
    IdempotencyMismatch,
    InvalidCard,
    MemoryLedger,
    PaymentProvider,
    ProviderUnavailable,
    RefundRefused,
    RequestRefused,
    SandboxProvider,
    SignatureMismatch,
    WebhooksUnsupported,
)
from services.billing.repository import SqlCustomerStore
from services.billing.stripe_provider import MemoryCustomerStore, StripeProvider

SECRET = "whsec_test"


def sign(payload: str, secret: str = SECRET, timestamp: int | None = None) -> str:
    """A `Stripe-Signature` header, as Stripe signs a webhook."""
    at = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{at}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={at},v1={digest}"


class FakeResource:
    """One `client.v1.<resource>` service: records each call, answers from `answers` (a
    value, an exception to raise, or a function of the call's arguments)."""

    def __init__(self, calls: list, name: str) -> None:
        self.calls = calls
        self.name = name
        self.answers: dict[str, Any] = {}

    def __getattr__(self, method: str):
        def call(*args: Any) -> Any:
            self.calls.append((self.name, method, *args))
            answer = self.answers[method]
            if isinstance(answer, Exception):
                raise answer
            return answer(*args) if callable(answer) else answer

        return call


class FakeClient:
    def __init__(self) -> None:
        self.calls: list[tuple] = []
        names = ("payment_methods", "customers", "payment_intents", "refunds", "setup_intents")
        self.v1 = SimpleNamespace(**{name: FakeResource(self.calls, name) for name in names})

    def of(self, resource: str, method: str) -> list[tuple]:
        return [call[2:] for call in self.calls if call[:2] == (resource, method)]


def card_error(code: str, decline_code: str | None = None, intent: dict | None = None):
    body = {"code": code, "decline_code": decline_code, "payment_intent": intent}
    return stripe.CardError("declined", None, code, json_body={"error": body}, http_status=402)


def intent(status: str, **extra: Any) -> dict[str, Any]:
    return {"id": "pi_1", "amount": 4900, "currency": "eur", "status": status, **extra}


@pytest.fixture
def client() -> FakeClient:
    return FakeClient()


@pytest.fixture
def provider(client: FakeClient) -> StripeProvider:
    return StripeProvider(client, MemoryCustomerStore(), SECRET)


def test_the_rules_in_the_docstrings_hold() -> None:
    assert doctest.testmod(stripe_provider).failed == 0


def test_stripe_is_a_payment_provider_that_takes_no_card_numbers(provider) -> None:
    assert isinstance(provider, PaymentProvider)
    assert (provider.name, provider.accepts_cards) == ("stripe", False)
    with pytest.raises(InvalidCard):
        provider.tokenize(Card("4242424242424242", 12, 2030, "123"))


def test_the_sandbox_takes_cards_and_no_payment_methods_nor_webhooks() -> None:
    sandbox = SandboxProvider(MemoryLedger())
    assert sandbox.accepts_cards is True
    with pytest.raises(InvalidCard) as caught:
        sandbox.attach("pm_123", "C1000001", None, None)
    assert caught.value.field == "payment_method"
    with pytest.raises(WebhooksUnsupported):
        sandbox.parse_event("{}", "t=1,v1=0")
    # the new arguments change nothing in the sandbox
    method = sandbox.tokenize(Card("4242424242424242", 12, 2030, "123"))
    charged = sandbox.charge(100, "EUR", method.token, "k", customer="cus_1", off_session=True)
    assert charged.status == SUCCEEDED and charged.client_secret is None


def test_attach_makes_the_companys_customer_once_and_attaches_the_method(provider, client) -> None:
    card = {"brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2031}
    client.v1.payment_methods.answers = {
        "retrieve": lambda pm_id: {"id": pm_id, "type": "card", "card": card, "customer": None},
        "attach": lambda pm_id, params: {"id": pm_id},
    }
    client.v1.customers.answers["create"] = {"id": "cus_1"}
    method = provider.attach("pm_a", "C1000001", None, "Acme GmbH")
    assert (method.token, method.customer, method.last4, method.exp_year) == (
        "pm_a",
        "cus_1",
        "4242",
        2031,
    )
    [(params, options)] = client.of("customers", "create")
    assert params == {"metadata": {"company_id": "C1000001"}, "name": "Acme GmbH"}
    # the database's own ID in the key: one customer per company in this deployment, never
    # another deployment's sharing the Stripe account
    store = provider.customers
    assert options == {"idempotency_key": f"billing-customer-C1000001-{store.instance_id()}"}
    assert client.of("payment_methods", "attach") == [("pm_a", {"customer": "cus_1"})]
    provider.attach("pm_b", "C1000001", None, None)
    assert len(client.of("customers", "create")) == 1
    other = StripeProvider(client, MemoryCustomerStore(), SECRET)  # another deployment
    other.attach("pm_b", "C1000001", None, "Acme GmbH")
    assert client.of("customers", "create")[-1][1] != options


def test_attach_refuses_an_unknown_method_another_customers_and_a_declined_card(
    provider, client
) -> None:
    provider.customers.put_if_absent("C1000001", "cus_1")
    missing = stripe.InvalidRequestError("No such PaymentMethod", "id", http_status=404)
    client.v1.payment_methods.answers["retrieve"] = missing
    with pytest.raises(InvalidCard):
        provider.attach("pm_x", "C1000001", None, None)
    card = {"brand": "visa", "last4": "0002", "exp_month": 1, "exp_year": 2030}
    theirs = {"id": "pm_t", "type": "card", "card": card, "customer": "cus_other"}
    client.v1.payment_methods.answers["retrieve"] = theirs
    with pytest.raises(InvalidCard):
        provider.attach("pm_t", "C1000001", None, None)
    client.v1.payment_methods.answers["retrieve"] = {**theirs, "customer": None}
    client.v1.payment_methods.answers["attach"] = card_error("card_declined", "generic_decline")
    with pytest.raises(CardRefused) as caught:
        provider.attach("pm_t", "C1000001", None, None)
    assert caught.value.decline_code == "card_declined"


def test_a_charge_is_one_confirmed_payment_intent_keyed_by_our_charge_key(provider, client) -> None:
    client.v1.payment_intents.answers["create"] = intent("succeeded")
    result = provider.charge(4900, "EUR", "pm_a", "billing-charge-7", customer="cus_1")
    assert (result.status, result.charge_id, result.currency) == (SUCCEEDED, "pi_1", "EUR")
    [(params, options)] = client.of("payment_intents", "create")
    assert options == {"idempotency_key": "billing-charge-7"}
    assert params["confirm"] is True and params["currency"] == "eur"
    assert params["metadata"] == {"charge_key": "billing-charge-7"}
    assert params["setup_future_usage"] == "off_session" and "off_session" not in params
    provider.charge(4900, "EUR", "pm_a", "billing-charge-8", customer="cus_1", off_session=True)
    renewal = client.of("payment_intents", "create")[1][0]
    assert renewal["off_session"] is True and "setup_future_usage" not in renewal


@pytest.mark.parametrize(
    ("code", "decline_code", "expected"),
    [
        ("card_declined", "insufficient_funds", "insufficient_funds"),
        ("card_declined", "generic_decline", "card_declined"),
        ("expired_card", None, "card_declined"),
        ("authentication_required", "authentication_required", "authentication_required"),
    ],
)
def test_card_errors_are_declines_billing_knows(
    provider, client, code, decline_code, expected
) -> None:
    error = card_error(code, decline_code, intent("requires_payment_method", id="pi_9"))
    client.v1.payment_intents.answers["create"] = error
    result = provider.charge(4900, "EUR", "pm_a", "k", customer="cus_1")
    assert (result.status, result.decline_code, result.charge_id) == (DECLINED, expected, "pi_9")


def test_three_d_secure_on_session_asks_for_action_and_off_session_declines(
    provider, client
) -> None:
    waiting = intent("requires_action", client_secret="pi_1_secret_x")
    client.v1.payment_intents.answers = {"create": waiting, "cancel": lambda pi: {"id": pi}}
    asked = provider.charge(4900, "EUR", "pm_a", "k1", customer="cus_1")
    assert (asked.status, asked.client_secret) == (REQUIRES_ACTION, "pi_1_secret_x")
    renewal = provider.charge(4900, "EUR", "pm_a", "k2", customer="cus_1", off_session=True)
    assert (renewal.status, renewal.decline_code) == (DECLINED, "authentication_required")
    assert client.of("payment_intents", "cancel") == [("pi_1",)]


@pytest.mark.parametrize(
    ("state", "status", "decline_code"),
    [
        (intent("succeeded"), SUCCEEDED, None),
        (intent("requires_action", client_secret="s"), REQUIRES_ACTION, None),
        (
            intent(
                "requires_payment_method",
                last_payment_error={"code": "payment_intent_authentication_failure"},
            ),
            DECLINED,
            "authentication_failed",
        ),
        (intent("canceled"), DECLINED, "authentication_failed"),
    ],
)
def test_confirm_reads_the_intent_after_the_customer_authenticated(
    provider, client, state, status, decline_code
) -> None:
    client.v1.payment_intents.answers["retrieve"] = state
    result = provider.confirm("pi_1")
    assert (result.status, result.decline_code) == (status, decline_code)


@pytest.mark.parametrize(
    "error",
    [
        stripe.APIConnectionError("connection reset"),
        stripe.APIError("boom", http_status=500),
        stripe.RateLimitError("slow down", http_status=429),
    ],
)
def test_no_answer_is_an_unknown_outcome(provider, client, error) -> None:
    client.v1.payment_intents.answers["create"] = error
    with pytest.raises(ProviderUnavailable):
        provider.charge(4900, "EUR", "pm_a", "k")


def test_an_intent_still_processing_is_an_unknown_outcome(provider, client) -> None:
    client.v1.payment_intents.answers["create"] = intent("processing")
    with pytest.raises(ProviderUnavailable):
        provider.charge(4900, "EUR", "pm_a", "k")


@pytest.mark.parametrize("call", ["charge", "authorize"])
def test_a_request_stripe_refuses_is_not_a_decline_but_an_error_to_fix(
    provider, client, call, caplog
) -> None:
    refused = stripe.InvalidRequestError("No such PaymentMethod: 'pm_sandbox_ok_1'", "pm")
    client.v1.payment_intents.answers["create"] = refused
    client.v1.setup_intents.answers["create"] = refused
    with caplog.at_level("ERROR"), pytest.raises(RequestRefused) as caught:
        if call == "charge":
            provider.charge(4900, "EUR", "pm_sandbox_ok_1", "k", off_session=True)
        else:
            provider.authorize("pm_sandbox_ok_1", "k")
    # handled as a lost answer (re-checked), never as a card decline
    assert isinstance(caught.value, ProviderUnavailable)
    [record] = [r for r in caplog.records if r.levelname == "ERROR"]
    assert "not a card decline" in record.getMessage() and "change card" in record.getMessage()


def test_cancel_says_whether_it_worked(provider, client) -> None:
    client.v1.payment_intents.answers["cancel"] = lambda pi: {"id": pi, "status": "canceled"}
    assert provider.cancel("pi_1") is True
    paid = stripe.InvalidRequestError("You cannot cancel this PaymentIntent", "intent")
    client.v1.payment_intents.answers["cancel"] = paid
    assert provider.cancel("pi_1") is False
    client.v1.payment_intents.answers["cancel"] = stripe.APIConnectionError("reset")
    with pytest.raises(ProviderUnavailable):
        provider.cancel("pi_1")


def test_an_off_session_intent_stripe_will_not_cancel_is_unknown_not_declined(
    provider, client
) -> None:
    client.v1.payment_intents.answers["create"] = intent("requires_action", client_secret="s")
    client.v1.payment_intents.answers["cancel"] = stripe.InvalidRequestError("paid", "intent")
    with pytest.raises(ProviderUnavailable):
        provider.charge(4900, "EUR", "pm_a", "k", customer="cus_1", off_session=True)


def test_search_may_lag_and_intents_name_their_customer(provider, client) -> None:
    assert provider.lookup_lag.total_seconds() == 24 * 3600
    assert SandboxProvider(MemoryLedger()).lookup_lag.total_seconds() == 0
    result = provider.intent_result(intent("succeeded", customer="cus_1"))
    assert (result.status, result.amount, result.currency, result.customer) == (
        SUCCEEDED,
        4900,
        "EUR",
        "cus_1",
    )


def test_a_key_reused_with_other_parameters_is_a_mismatch(provider, client) -> None:
    client.v1.payment_intents.answers["create"] = stripe.IdempotencyError("keys", http_status=400)
    with pytest.raises(IdempotencyMismatch):
        provider.charge(4900, "EUR", "pm_a", "k")


def test_retrieve_searches_by_charge_key(provider, client) -> None:
    client.v1.payment_intents.answers["search"] = {"data": []}
    assert provider.retrieve("billing-charge-3") is None
    client.v1.payment_intents.answers["search"] = {"data": [intent("succeeded")]}
    assert provider.retrieve("billing-charge-3").status == SUCCEEDED
    query = client.of("payment_intents", "search")[0][0]["query"]
    assert query == "metadata['charge_key']:'billing-charge-3'"


def test_refund_of_an_intent_once_per_key(provider, client) -> None:
    answer = {"id": "re_1", "amount": 4900, "currency": "eur", "status": "succeeded"}
    client.v1.refunds.answers["create"] = answer
    result = provider.refund("pi_1", 4900, "EUR", "billing-refund-5")
    assert (result.refund_id, result.charge_id, result.amount) == ("re_1", "pi_1", 4900)
    [(params, options)] = client.of("refunds", "create")
    assert params["payment_intent"] == "pi_1" and params["amount"] == 4900
    assert params["metadata"] == {"refund_key": "billing-refund-5"}
    assert options == {"idempotency_key": "billing-refund-5"}
    refused = stripe.InvalidRequestError("already refunded", None, http_status=400)
    client.v1.refunds.answers["create"] = refused
    with pytest.raises(RefundRefused):
        provider.refund("pi_1", 4900, "EUR", "billing-refund-6")


def test_authorize_is_a_confirmed_setup_intent_and_3ds_declines(provider, client) -> None:
    client.v1.setup_intents.answers = {
        "create": {"id": "seti_1", "status": "succeeded"},
        "cancel": lambda seti: {"id": seti},
    }
    assert provider.authorize("pm_a", "auth-1", customer="cus_1").status == SUCCEEDED
    [(params, options)] = client.of("setup_intents", "create")
    assert (params["customer"], params["usage"], params["confirm"]) == (
        "cus_1",
        "off_session",
        True,
    )
    assert options == {"idempotency_key": "auth-1"}
    client.v1.setup_intents.answers["create"] = {"id": "seti_2", "status": "requires_action"}
    check = provider.authorize("pm_b", "auth-2", customer="cus_1")
    assert (check.status, check.decline_code) == (DECLINED, "authentication_required")
    assert client.of("setup_intents", "cancel") == [("seti_2",)]
    client.v1.setup_intents.answers["create"] = card_error("card_declined", "insufficient_funds")
    assert provider.authorize("pm_c", "auth-3").decline_code == "insufficient_funds"


def test_webhooks_are_verified_with_the_signing_secret(provider) -> None:
    event = {"id": "evt_1", "type": "charge.refunded", "data": {"object": {"id": "ch_1"}}}
    payload = json.dumps(event)
    assert provider.parse_event(payload, sign(payload)) == event
    for signature in (None, "", "t=1,v1=abc", sign(payload, secret="whsec_x")):
        with pytest.raises(SignatureMismatch):
            provider.parse_event(payload, signature)
    with pytest.raises(SignatureMismatch):  # signed too long ago (a replayed capture)
        provider.parse_event(payload, sign(payload, timestamp=int(time.time()) - 600))
    with pytest.raises(SignatureMismatch):  # signed, but not an event
        provider.parse_event("[]", sign("[]"))


# --- chosen by configuration ------------------------------------------------------------------


def test_payment_provider_stripe_needs_its_keys_to_start(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'billing.db'}"
    settings = {"PAYMENT_PROVIDER": "stripe", "BILLING_DATABASE_URL": url}
    for missing in ("STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET"):
        keys = {"STRIPE_SECRET_KEY": "sk_test_1", "STRIPE_WEBHOOK_SECRET": SECRET}
        with (
            nameko_config.patch({**settings, **keys, missing: None}),
            pytest.raises(RuntimeError, match=missing),
        ):
            Provider().setup()
    keys = {"STRIPE_SECRET_KEY": "sk_test_1", "STRIPE_WEBHOOK_SECRET": SECRET}
    # spelt as an operator may type it: the same provider as for the gateway
    spelt = {**settings, "PAYMENT_PROVIDER": " Stripe "}
    with nameko_config.patch({**spelt, **keys, "STRIPE_API_BASE": "http://127.0.0.1:9"}):
        dependency = Provider()
        dependency.setup()
        try:
            chosen = dependency.get_dependency(None)
            assert isinstance(chosen, StripeProvider) and chosen.webhook_secret == SECRET
        finally:
            dependency.stop()
    with nameko_config.patch({"PAYMENT_PROVIDER": None}):
        assert common_settings.payment_provider() == "sandbox"
    with (
        nameko_config.patch({**settings, "PAYMENT_PROVIDER": "paypal"}),
        pytest.raises(RuntimeError, match="paypal"),
    ):
        Provider().setup()


def test_the_customer_store_keeps_one_instance_id_per_database(db) -> None:
    first, second = SqlCustomerStore(db), SqlCustomerStore(db)
    assert first.instance_id() == second.instance_id() and len(first.instance_id()) == 16
