"""billing's flows with a provider that takes payment methods and asks for 3-D Secure, as
Stripe does (worker_factory, SQLite): purchases, confirmation, the renewal pass, card
changes and webhooks. The provider is a scripted stand-in; the real Stripe provider against
the local Stripe server is tests/integration/billing/test_stripe_*.py."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from services.billing import stripe_provider
from services.billing.models import Charge, Payment, PaymentMethod, WebhookEvent
from services.billing.providers import (
    DECLINED,
    REQUIRES_ACTION,
    SUCCEEDED,
    CardRefused,
    ChargeResult,
    InvalidCard,
    MemoryLedger,
    ProviderUnavailable,
    RefundResult,
    RequestRefused,
    SandboxProvider,
    SignatureMismatch,
)
from services.billing.providers import PaymentMethod as Method
from tests.unit.billing.conftest import (
    CUSTOMER,
    OK_CARD,
    OTHER,
    T0,
    billing_worker,
    count,
    keyed,
    not_applied,
    raises_code,
)

GOOD = "good-signature"


class ScriptedStripe(SandboxProvider):
    """Takes payment methods only. `pm_3ds…` asks for authentication (declined off-session),
    `pm_declined…` is declined at charge, `pm_refused` at attach, `pm_unknown` is unknown."""

    name = "stripe"
    accepts_cards = False

    def __init__(self) -> None:
        super().__init__(MemoryLedger())
        self.intents: dict[str, dict[str, Any]] = {}  # by idempotency key
        self.charges: list[dict[str, Any]] = []
        self.cancelled: list[str] = []
        self.checks: list[tuple[str, str | None]] = []
        self.refunded: list[tuple[str, int]] = []
        self.refusing = False  # every charge a request Stripe refuses (a sandbox token)

    def attach(self, payment_method_id, customer_id, email, name) -> Method:
        if payment_method_id == "pm_unknown":
            raise InvalidCard("payment_method", "No such payment method.")
        if payment_method_id == "pm_refused":
            raise CardRefused("card_declined")
        last4 = "3184" if payment_method_id.startswith("pm_3ds") else "4242"
        return Method(payment_method_id, "visa", last4, 12, 2031, customer=f"cus_{customer_id}")

    def charge(self, amount, currency, payment_method, idempotency_key, **options) -> ChargeResult:
        self.charges.append({"method": payment_method, "key": idempotency_key, **options})
        if self.refusing:
            raise RequestRefused(f"no such payment method {payment_method}")
        if payment_method.startswith("pm_gone"):  # no answer, and Stripe made nothing
            raise ProviderUnavailable("connection reset")
        found = self.intents.get(idempotency_key)
        if found is None:
            status = SUCCEEDED
            if payment_method.startswith("pm_declined"):
                status = DECLINED
            elif payment_method.startswith("pm_3ds"):
                status = "canceled" if options.get("off_session") else REQUIRES_ACTION
            found = {"id": f"pi_{len(self.intents) + 1}", "status": status, "amount": amount}
            self.intents[idempotency_key] = found
        return self._result(found, currency)

    def _result(self, intent: dict[str, Any], currency: str = "EUR") -> ChargeResult:
        status, amount = intent["status"], intent["amount"]
        if status == REQUIRES_ACTION:
            secret = f"{intent['id']}_secret"
            return ChargeResult(intent["id"], REQUIRES_ACTION, amount, currency, None, secret)
        if status == SUCCEEDED:
            return ChargeResult(intent["id"], SUCCEEDED, amount, currency)
        code = {"canceled": "authentication_required", "failed": "authentication_failed"}
        return ChargeResult(intent["id"], DECLINED, amount, currency, code.get(status))

    def intent(self, intent_id: str) -> dict[str, Any]:
        return next(i for i in self.intents.values() if i["id"] == intent_id)

    def authenticate(self, intent_id: str, success: bool = True) -> None:
        self.intent(intent_id)["status"] = SUCCEEDED if success else "failed"

    def confirm(self, intent_id: str) -> ChargeResult:
        return self._result(self.intent(intent_id))

    def cancel(self, intent_id: str) -> bool:
        found = self.intent(intent_id)
        if found["status"] != REQUIRES_ACTION:  # paid (or failed) meanwhile: as Stripe refuses
            return False
        self.cancelled.append(intent_id)
        found["status"] = "canceled"
        return True

    def intent_result(self, intent: dict[str, Any]) -> ChargeResult:
        return stripe_provider.intent_result(intent)

    def paid(self, intent_id: str, **extra: Any) -> dict[str, Any]:
        """The PaymentIntent of a `payment_intent.succeeded` event, as Stripe sends it."""
        found = self.intent(intent_id)
        obj = {"id": intent_id, "status": SUCCEEDED, "amount": found["amount"], "currency": "eur"}
        return {**obj, **extra}

    def refund(self, charge_id, amount, currency, idempotency_key) -> RefundResult:
        self.refunded.append((charge_id, amount))
        return RefundResult(f"re_{len(self.refunded)}", charge_id, SUCCEEDED, amount, currency)

    def retrieve(self, idempotency_key: str) -> ChargeResult | None:
        found = self.intents.get(idempotency_key)
        return None if found is None else self._result(found)

    def authorize(self, payment_method, idempotency_key, customer=None) -> ChargeResult:
        self.checks.append((payment_method, customer))
        if payment_method.startswith("pm_3ds"):
            return ChargeResult("seti_1", DECLINED, 0, "XXX", "authentication_required")
        return ChargeResult("seti_1", SUCCEEDED, 0, "XXX")

    def parse_event(self, payload: str, signature: str | None) -> dict[str, Any]:
        if signature != GOOD:
            raise SignatureMismatch("bad")
        return json.loads(payload)


@pytest.fixture
def provider() -> ScriptedStripe:
    return ScriptedStripe()


def buy(service, method: str = "pm_ok", **extra: Any) -> dict[str, Any]:
    body = {"plan": "cad-m", "seats": 2, "payment_method": method, **extra}
    return service.purchase(CUSTOMER, body)


def charge_row(db) -> Charge:
    with db.transaction() as session:
        return session.scalars(select(Charge).order_by(Charge.id.desc())).first()


def event(event_type: str, obj: dict[str, Any], event_id: str = "evt_1") -> str:
    return json.dumps({"id": event_id, "type": event_type, "data": {"object": obj}})


# --- purchases -------------------------------------------------------------------------------


def test_a_purchase_with_a_payment_method_keeps_the_provider_customer(
    service, provider, db, events
) -> None:
    result = buy(service)
    assert result["payment"]["status"] == "paid" and result["recurring_payment"]
    [charged] = provider.charges
    assert (charged["customer"], charged.get("off_session")) == (f"cus_{CUSTOMER}", None)
    with db.transaction() as session:
        [method] = session.scalars(select(PaymentMethod)).all()
        assert (method.provider, method.token, method.provider_customer_id) == (
            "stripe",
            "pm_ok",
            f"cus_{CUSTOMER}",
        )
    assert len(events.of("payment_succeeded")) == 1


def test_a_card_number_is_not_accepted_by_a_provider_that_takes_payment_methods(
    service, provider
) -> None:
    error = raises_code(
        "card_not_accepted",
        service.purchase,
        CUSTOMER,
        {"plan": "cad-m", "seats": 2, "card": OK_CARD},
    )
    assert "card" in error.details["fields"]
    assert provider.charges == []


def test_neither_or_both_of_card_and_payment_method_is_a_validation_error(service) -> None:
    nothing = {"plan": "cad-m", "seats": 1}
    neither = raises_code("validation_error", service.purchase, CUSTOMER, nothing)
    assert "payment_method" in neither.details["fields"]
    both = {"plan": "cad-m", "seats": 1, "card": OK_CARD, "payment_method": "pm_ok"}
    raises_code("validation_error", service.purchase, CUSTOMER, both)
    bad = {"plan": "cad-m", "seats": 1, "payment_method": "card_123"}
    raises_code("validation_error", service.purchase, CUSTOMER, bad)


@pytest.mark.parametrize(
    ("method", "code"),
    [("pm_unknown", "validation_error"), ("pm_refused", "card_declined")],
)
def test_a_method_the_provider_refuses_is_refused_before_any_charge(
    service, provider, db, method, code
) -> None:
    raises_code(code, buy, service, method)
    assert provider.charges == [] and count(db, Charge) == 0


def test_a_decline_at_charge_leaves_only_the_charge_row(service, db) -> None:
    raises_code("card_declined", buy, service, "pm_declined")
    assert charge_row(db).status == "declined" and count(db, Payment) == 0


def test_three_d_secure_then_confirm_settles_once(service, provider, db, events) -> None:
    keyed(service, "key-1", "purchase")
    waiting = buy(service, "pm_3ds")
    assert waiting["status"] == "requires_action"
    assert waiting["client_secret"] == "pi_1_secret"
    purchase_id = waiting["purchase_id"]
    assert purchase_id.startswith("pur_") and len(purchase_id) == 28
    assert (charge_row(db).status, charge_row(db).provider_charge_id) == ("requires_action", "pi_1")
    # the same request again, and a confirmation before authenticating: still waiting
    assert buy(service, "pm_3ds") == waiting
    assert service.confirm_purchase(CUSTOMER, purchase_id) == waiting
    raises_code("purchase_not_found", service.confirm_purchase, OTHER, purchase_id)
    raises_code("purchase_not_found", service.confirm_purchase, CUSTOMER, "pur_nothing")
    assert events.of("payment_succeeded") == []

    provider.authenticate("pi_1")
    paid = service.confirm_purchase(CUSTOMER, purchase_id)
    assert paid["payment"]["status"] == "paid" and paid["recurring_payment"]["status"] == "active"
    assert service.confirm_purchase(CUSTOMER, purchase_id) == paid
    assert buy(service, "pm_3ds") == paid
    assert len(provider.charges) == 1 and len(events.of("payment_succeeded")) == 1


def test_failed_three_d_secure_is_authentication_failed(service, provider, db) -> None:
    waiting = buy(service, "pm_3ds")
    provider.authenticate("pi_1", success=False)
    raises_code("authentication_failed", service.confirm_purchase, CUSTOMER, waiting["purchase_id"])
    assert charge_row(db).decline_code == "authentication_failed"
    raises_code("authentication_failed", service.confirm_purchase, CUSTOMER, waiting["purchase_id"])
    assert count(db, Payment) == 0


def test_a_purchase_waiting_a_day_is_cancelled_by_the_renewal_pass(
    service, provider, clock, db
) -> None:
    waiting = buy(service, "pm_3ds")
    clock.advance(hours=23)
    assert service.run_renewals()["abandoned"] == 0
    clock.advance(hours=2)
    assert service.run_renewals()["abandoned"] == 1
    assert provider.cancelled == ["pi_1"] and charge_row(db).status == "abandoned"
    raises_code("authentication_failed", service.confirm_purchase, CUSTOMER, waiting["purchase_id"])


def test_a_purchase_authenticated_but_never_confirmed_is_settled_by_the_pass(
    service, provider, clock, events
) -> None:
    buy(service, "pm_3ds")
    provider.authenticate("pi_1")
    clock.advance(hours=25)
    assert service.run_renewals()["reconciled"] == 1
    assert provider.cancelled == [] and len(events.of("payment_succeeded")) == 1


# --- renewals and card changes --------------------------------------------------------------


def licensed(service, licensing, method: str = "pm_ok") -> dict[str, Any]:
    bought = buy(service, method)
    receipt = bought["payment"]["receipt_number"]
    service.on_license_issued(licensing.issue_for(receipt, CUSTOMER, T0 + timedelta(days=31)))
    return bought


def test_renewals_charge_the_saved_customer_off_session(
    service, provider, licensing, clock, events
) -> None:
    licensed(service, licensing)
    clock.advance(days=32)
    assert service.run_renewals()["succeeded"] == 1
    purchase, renewal = provider.charges
    assert (renewal["customer"], renewal["off_session"]) == (f"cus_{CUSTOMER}", True)
    # what the provider's dashboard shows: the receipt's line and the company, no codes
    assert purchase["description"] == f"CAD Pro, 2 seats, monthly (customer {CUSTOMER})"
    assert renewal["description"] == f"CAD Pro, 2 seats, monthly renewal (customer {CUSTOMER})"


def test_a_renewal_whose_bank_wants_authentication_goes_into_dunning(
    service, provider, licensing, clock, events
) -> None:
    waiting = buy(service, "pm_3ds")
    provider.authenticate("pi_1")
    receipt = service.confirm_purchase(CUSTOMER, waiting["purchase_id"])["payment"]
    service.on_license_issued(
        licensing.issue_for(receipt["receipt_number"], CUSTOMER, T0 + timedelta(days=31))
    )
    clock.advance(days=32)
    assert service.run_renewals()["declined"] == 1
    [failed] = events.of("payment_failed")
    assert failed["reason"] == "authentication_required"
    # no off-session try can get past the bank: past due at once, the customer acts
    assert failed["next_retry_at"] is None
    [recurring] = service.list_recurring_payments(CUSTOMER)
    assert recurring["status"] == "past_due"
    clock.advance(days=3)
    assert service.run_renewals()["charged"] == 0


def test_a_card_saved_with_the_sandbox_is_not_sent_to_stripe(db, events, clock, licensing) -> None:
    # a deployment that switched providers: the sandbox's saved card means nothing to Stripe
    sandbox = SandboxProvider(MemoryLedger())
    service = billing_worker(
        db=db, events=events, clock=clock, provider=sandbox, licensing=licensing
    )
    service.create_plan(
        {
            "code": "cad-m",
            "product_code": "CADPRO",
            "amount": 4900,
            "currency": "eur",
            "interval": "month",
        }
    )
    card = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}
    bought = service.purchase(CUSTOMER, {"plan": "cad-m", "seats": 2, "card": card})
    receipt = bought["payment"]["receipt_number"]
    service.on_license_issued(licensing.issue_for(receipt, CUSTOMER, T0 + timedelta(days=31)))
    stripe = ScriptedStripe()
    service.provider = stripe
    clock.advance(days=32)
    report = service.run_renewals()
    assert (report["charged"], report["declined"], report["past_due"]) == (1, 1, 1)
    assert stripe.charges == []  # nothing was sent
    [failed] = events.of("payment_failed")
    assert (failed["reason"], failed["next_retry_at"]) == ("payment_method_unavailable", None)


def test_a_card_change_with_a_payment_method(service, provider, licensing) -> None:
    reference = licensed(service, licensing)["recurring_payment"]["id"]
    changed = service.replace_card(reference, CUSTOMER, payment_method="pm_new")
    assert changed["card_last4"] == "4242"
    assert provider.checks == [("pm_new", f"cus_{CUSTOMER}")]
    error = raises_code(
        "card_declined", service.replace_card, reference, CUSTOMER, payment_method="pm_3ds_b"
    )
    assert "confirm this card" in error.message
    raises_code("card_not_accepted", service.replace_card, reference, CUSTOMER, OK_CARD)
    raises_code("validation_error", service.replace_card, reference, CUSTOMER)


def test_the_sandbox_refuses_payment_methods_by_name(db, events, clock, licensing) -> None:
    sandbox = billing_worker(
        db=db, events=events, clock=clock, provider=SandboxProvider(MemoryLedger()),
        licensing=licensing,
    )  # fmt: skip
    sandbox.create_plan(
        {"code": "cad-m", "product_code": "CADPRO", "amount": 4900, "currency": "EUR",
         "interval": "month"}
    )  # fmt: skip
    error = raises_code("validation_error", buy, sandbox, "pm_ok")
    assert "payment_method" in error.details["fields"]
    raises_code("not_found", sandbox.handle_stripe_webhook, "{}", GOOD)


# --- webhooks --------------------------------------------------------------------------------


def test_a_bad_signature_records_nothing(service, db) -> None:
    payload = event("payment_intent.succeeded", {"id": "pi_1"})
    for signature in (None, "forged"):
        raises_code("invalid_signature", service.handle_stripe_webhook, payload, signature)
    assert count(db, WebhookEvent) == 0


def test_payment_intent_succeeded_settles_a_waiting_purchase_once(
    service, provider, db, events
) -> None:
    waiting = buy(service, "pm_3ds")
    provider.authenticate("pi_1")
    payload = event("payment_intent.succeeded", provider.paid("pi_1"))
    answer = service.handle_stripe_webhook(payload, GOOD)
    assert answer == {"received": True, "duplicate": False, "type": "payment_intent.succeeded"}
    assert service.handle_stripe_webhook(payload, GOOD)["duplicate"] is True
    assert len(events.of("payment_succeeded")) == 1 and count(db, Payment) == 1
    paid = service.confirm_purchase(CUSTOMER, waiting["purchase_id"])
    assert paid["payment"]["status"] == "paid" and count(db, Payment) == 1


def test_payment_intent_failed_declines_a_waiting_purchase(service, provider, db) -> None:
    waiting = buy(service, "pm_3ds")
    failure = {"code": "payment_intent_authentication_failure"}
    obj = {"id": "pi_1", "status": "requires_payment_method", "last_payment_error": failure}
    obj.update({"amount": provider.intent("pi_1")["amount"], "currency": "eur"})
    service.handle_stripe_webhook(event("payment_intent.payment_failed", obj), GOOD)
    assert charge_row(db).status == "declined"
    provider.authenticate("pi_1", success=False)
    raises_code("authentication_failed", service.confirm_purchase, CUSTOMER, waiting["purchase_id"])


def refunded_charge(amount_refunded: int, refunds: list[dict] | None = None) -> dict:
    return {
        "id": "ch_1",
        "object": "charge",
        "payment_intent": "pi_1",
        "amount": 9800,
        "amount_refunded": amount_refunded,
        "refunds": {"data": refunds or [{"id": "re_1", "amount": amount_refunded}]},
    }


def test_charge_refunded_partial_then_full(service, db, events) -> None:
    bought = buy(service)
    service.handle_stripe_webhook(event("charge.refunded", refunded_charge(1000)), GOOD)
    with db.transaction() as session:
        payment = session.scalars(select(Payment)).one()
        assert (payment.status, payment.refunded_amount) == ("paid", 1000)
    assert events.of("payment_refunded") == []
    service.handle_stripe_webhook(event("charge.refunded", refunded_charge(9800), "evt_2"), GOOD)
    [listed] = service.list_payments(CUSTOMER)
    assert (listed["status"], listed["refund_reason"]) == ("refunded", "refunded_by_provider")
    [refunded] = events.of("payment_refunded")
    assert refunded["receipt_number"] == bought["payment"]["receipt_number"]
    [recurring] = service.list_recurring_payments(CUSTOMER)
    assert (recurring["status"], recurring["cancelled_by"]) == ("cancelled", "refund")
    # another event of the same refund changes nothing
    service.handle_stripe_webhook(event("charge.refunded", refunded_charge(9800), "evt_3"), GOOD)
    assert len(events.of("payment_refunded")) == 1


def test_charge_refunded_of_our_own_refund_is_left_to_its_flow(service, db, events) -> None:
    buy(service)
    ours = [{"id": "re_1", "amount": 9800, "metadata": {"refund_key": "billing-refund-1"}}]
    service.handle_stripe_webhook(event("charge.refunded", refunded_charge(9800, ours)), GOOD)
    assert service.list_payments(CUSTOMER)[0]["status"] == "paid"
    assert events.of("payment_refunded") == []


def test_a_dispute_created_then_won(service, licensing, db, events) -> None:
    bought = licensed(service, licensing)
    dispute = {"id": "dp_1", "payment_intent": "pi_1", "charge": "ch_1", "amount": 9800}
    dispute.update({"reason": "fraudulent", "status": "needs_response"})
    service.handle_stripe_webhook(event("charge.dispute.created", dispute), GOOD)
    service.handle_stripe_webhook(event("charge.dispute.created", dispute, "evt_2"), GOOD)
    with db.transaction() as session:
        payment = session.scalars(select(Payment)).one()
        assert (payment.status, payment.dispute_status, payment.disputed_at) == (
            "disputed",
            "needs_response",
            T0,
        )
    [disputed] = events.of("payment_disputed")
    assert disputed["event_id"] and disputed["occurred_at"]
    stamps = ("event_id", "occurred_at")
    assert {key: value for key, value in disputed.items() if key not in stamps} == {
        "customer_id": CUSTOMER,
        "receipt_number": bought["payment"]["receipt_number"],
        "license_id": "L-0001",
        "amount": 9800,
        "currency": "EUR",
        "reason": "fraudulent",
        "product_name": "CAD Pro",
    }
    [recurring] = service.list_recurring_payments(CUSTOMER)
    assert (recurring["status"], recurring["cancelled_by"]) == ("cancelled", "dispute")
    closed = {**dispute, "status": "won"}
    service.handle_stripe_webhook(event("charge.dispute.closed", closed, "evt_3"), GOOD)
    assert service.list_payments(CUSTOMER)[0]["status"] == "paid"
    [outcome] = events.of("payment_dispute_closed")
    assert (outcome["status"], outcome["receipt_number"]) == ("won", disputed["receipt_number"])


def test_a_dispute_lost_leaves_it_disputed(service, db, events) -> None:
    buy(service)
    dispute = {"id": "dp_1", "payment_intent": "pi_1", "reason": "general"}
    service.handle_stripe_webhook(event("charge.dispute.created", dispute), GOOD)
    lost = {**dispute, "status": "lost"}
    service.handle_stripe_webhook(event("charge.dispute.closed", lost, "evt_2"), GOOD)
    assert service.list_payments(CUSTOMER)[0]["status"] == "disputed"
    assert events.of("payment_dispute_closed")[0]["status"] == "lost"
    assert service.list_all_payments("disputed", CUSTOMER)[0]["status"] == "disputed"


def test_events_of_other_types_and_unknown_charges_change_nothing(service, db) -> None:
    answer = service.handle_stripe_webhook(event("customer.created", {"id": "cus_1"}), GOOD)
    assert answer["type"] == "customer.created" and count(db, WebhookEvent) == 1
    unknown = event("charge.dispute.created", {"id": "dp_9", "payment_intent": "pi_9"}, "evt_2")
    service.handle_stripe_webhook(unknown, GOOD)
    assert count(db, WebhookEvent) == 2


# --- after review -----------------------------------------------------------------------------


def test_a_purchase_authenticated_while_it_is_given_up_is_settled(
    service, provider, clock, db, events
) -> None:
    buy(service, "pm_3ds")
    cancel = provider.cancel

    def too_late(intent_id: str) -> bool:
        provider.authenticate(intent_id)  # the customer authenticates just now
        return cancel(intent_id)

    provider.cancel = too_late
    clock.advance(hours=25)
    report = service.run_renewals()
    assert (report["abandoned"], report["reconciled"]) == (0, 1)
    assert charge_row(db).status == "succeeded" and len(events.of("payment_succeeded")) == 1


def test_a_purchase_given_up_then_paid_at_the_provider_is_settled(
    service, provider, clock, db, events
) -> None:
    waiting = buy(service, "pm_3ds")
    clock.advance(hours=25)
    assert service.run_renewals()["abandoned"] == 1
    provider.authenticate("pi_1")  # Stripe took the money all the same
    service.handle_stripe_webhook(event("payment_intent.succeeded", provider.paid("pi_1")), GOOD)
    assert charge_row(db).status == "succeeded" and len(events.of("payment_succeeded")) == 1
    paid = service.confirm_purchase(CUSTOMER, waiting["purchase_id"])
    assert paid["payment"]["status"] == "paid" and count(db, Payment) == 1


def test_a_success_that_cannot_be_settled_is_an_error_in_the_log(
    service, provider, db, caplog
) -> None:
    raises_code("card_declined", buy, service, "pm_declined")
    paid = event("payment_intent.succeeded", provider.paid("pi_1"))
    with caplog.at_level("ERROR"):
        service.handle_stripe_webhook(paid, GOOD)
    assert charge_row(db).status == "declined" and count(db, Payment) == 0
    [record] = [r for r in caplog.records if r.levelname == "ERROR"]
    assert charge_row(db).idempotency_key in record.getMessage() and "pi_1" in record.getMessage()


def test_charge_keys_are_random_per_row_and_kept(service, provider, db) -> None:
    buy(service)
    key = charge_row(db).idempotency_key
    assert re.fullmatch(r"billing-charge-\d+-[0-9a-f]{12}", key)
    assert provider.charges[0]["key"] == key


@pytest.mark.parametrize(
    "other",
    [{"amount": 1}, {"currency": "usd"}, {"customer": "cus_someone_else"}],
    ids=["amount", "currency", "customer"],
)
def test_an_intent_that_is_not_the_charge_settles_nothing(
    service, provider, db, events, caplog, other
) -> None:
    buy(service, "pm_3ds")
    provider.authenticate("pi_1")
    with caplog.at_level("ERROR"):
        obj = provider.paid("pi_1", **other)
        service.handle_stripe_webhook(event("payment_intent.succeeded", obj), GOOD)
    assert charge_row(db).status == "requires_action" and events.of("payment_succeeded") == []
    assert any(r.levelname == "ERROR" for r in caplog.records)
    mine = provider.paid("pi_1", customer=f"cus_{CUSTOMER}")
    service.handle_stripe_webhook(event("payment_intent.succeeded", mine, "evt_2"), GOOD)
    assert charge_row(db).status == "succeeded"


def test_a_lookup_that_does_not_match_the_charge_settles_nothing(
    service, provider, clock, db, caplog
) -> None:
    raises_code("payment_unconfirmed", buy, service, "pm_gone")
    key = charge_row(db).idempotency_key
    provider.intents[key] = {"id": "pi_9", "status": SUCCEEDED, "amount": 1}
    clock.advance(minutes=11)
    with caplog.at_level("ERROR"):
        service.run_renewals()
    assert charge_row(db).status == "unknown" and count(db, Payment) == 0
    assert any(r.levelname == "ERROR" for r in caplog.records)


def test_a_charge_the_lookup_does_not_find_waits_for_the_providers_lag(
    service, provider, clock, db
) -> None:
    provider.lookup_lag = timedelta(hours=24)
    raises_code("payment_unconfirmed", buy, service, "pm_gone")
    clock.advance(minutes=11)
    assert service.run_renewals()["abandoned"] == 0 and charge_row(db).status == "unknown"
    clock.advance(hours=24)
    assert service.run_renewals()["abandoned"] == 1 and charge_row(db).status == "abandoned"


def test_a_request_the_provider_refuses_is_rechecked_not_declined(
    service, provider, licensing, clock, events, db
) -> None:
    licensed(service, licensing)
    provider.refusing = True  # a card saved with the sandbox, charged by Stripe
    clock.advance(days=32)
    report = service.run_renewals()
    assert (report["unknown"], report["declined"]) == (1, 0)
    assert events.of("payment_failed") == [] and charge_row(db).status == "unknown"
    raises_code("payment_unconfirmed", buy, service)


def test_our_own_refund_is_recorded_by_its_flow_whatever_the_webhook_says(
    service, provider, db, events
) -> None:
    receipt = buy(service)["payment"]["receipt_number"]
    refund = provider.refund

    def with_webhook(charge_id, amount, currency, key) -> RefundResult:
        done = refund(charge_id, amount, currency, key)
        # real Stripe's Charge lists no refunds; its event may come before our answer
        obj = {k: v for k, v in refunded_charge(9800).items() if k != "refunds"}
        service.handle_stripe_webhook(event("charge.refunded", obj), GOOD)
        return done

    provider.refund = with_webhook
    service.on_payment_not_applied(not_applied(receipt))
    [payment] = service.list_payments(CUSTOMER)
    assert (payment["status"], payment["refund_reason"]) == ("refunded", "product_archived")
    [refunded] = events.of("payment_refunded")
    assert refunded["receipt_number"] == receipt


def test_a_partial_refund_is_never_lowered_and_the_rest_is_what_billing_refunds(
    service, provider, db
) -> None:
    receipt = buy(service)["payment"]["receipt_number"]
    service.handle_stripe_webhook(event("charge.refunded", refunded_charge(3000)), GOOD)
    late = event("charge.refunded", refunded_charge(1000), "evt_2")  # an older event, late
    service.handle_stripe_webhook(late, GOOD)
    assert service.list_payments(CUSTOMER)[0]["refunded_amount"] == 3000
    service.on_payment_not_applied(not_applied(receipt))
    assert provider.refunded == [("pi_1", 9800 - 3000)]
    assert service.list_payments(CUSTOMER)[0]["status"] == "refunded"


def test_a_partial_refund_of_the_rest_refunds_the_payment(service, events) -> None:
    buy(service)
    service.handle_stripe_webhook(event("charge.refunded", refunded_charge(3000)), GOOD)
    rest = event("charge.refunded", refunded_charge(9800), "evt_2")
    service.handle_stripe_webhook(rest, GOOD)
    assert service.list_payments(CUSTOMER)[0]["status"] == "refunded"
    assert len(events.of("payment_refunded")) == 1


def dispute_of(status: str) -> dict[str, Any]:
    return {"id": "dp_1", "payment_intent": "pi_1", "reason": "general", "status": status}


@pytest.mark.parametrize("inquiry", ["warning_needs_response", "warning_under_review"])
def test_an_inquiry_is_only_noted(service, licensing, db, events, inquiry) -> None:
    licensed(service, licensing)
    service.handle_stripe_webhook(event("charge.dispute.created", dispute_of(inquiry)), GOOD)
    [payment] = service.list_payments(CUSTOMER)
    assert (payment["status"], payment["dispute_status"]) == ("paid", inquiry)
    [recurring] = service.list_recurring_payments(CUSTOMER)
    assert recurring["status"] == "active"
    closed = event("charge.dispute.closed", dispute_of("warning_closed"), "evt_2")
    service.handle_stripe_webhook(closed, GOOD)
    [payment] = service.list_payments(CUSTOMER)
    assert (payment["status"], payment["dispute_status"]) == ("paid", "warning_closed")
    assert events.of("payment_disputed") == events.of("payment_dispute_closed") == []


def test_a_dispute_closed_before_it_was_created_is_never_reopened(service, db, events) -> None:
    buy(service)
    service.handle_stripe_webhook(event("charge.dispute.closed", dispute_of("won")), GOOD)
    created = event("charge.dispute.created", dispute_of("needs_response"), "evt_2")
    service.handle_stripe_webhook(created, GOOD)
    [payment] = service.list_payments(CUSTOMER)
    assert (payment["status"], payment["dispute_status"]) == ("paid", "won")
    assert events.of("payment_disputed") == events.of("payment_dispute_closed") == []


def test_a_decided_dispute_never_moves_back(service, db, events) -> None:
    buy(service)
    created = event("charge.dispute.created", dispute_of("needs_response"))
    service.handle_stripe_webhook(created, GOOD)
    service.handle_stripe_webhook(event("charge.dispute.closed", dispute_of("lost"), "e2"), GOOD)
    service.handle_stripe_webhook(event("charge.dispute.closed", dispute_of("won"), "e3"), GOOD)
    again = event("charge.dispute.created", dispute_of("needs_response"), "e4")
    service.handle_stripe_webhook(again, GOOD)
    [payment] = service.list_payments(CUSTOMER)
    assert (payment["status"], payment["dispute_status"]) == ("disputed", "lost")
    assert len(events.of("payment_disputed")) == len(events.of("payment_dispute_closed")) == 1
