"""Stripe's webhooks reaching billing (`handle_stripe_webhook`, as the gateway hands them on) on
the real bus and PostgreSQL, with the local Stripe server: signatures, redeliveries, charges
settled late, refunds made at Stripe and disputes."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from common.errors import PortalError
from services.billing.stripe_provider import plain
from tests.integration.billing.conftest import license_for
from tests.support.stripe import StripeServer, running_stripe_server, stripe_env

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

OK = "4242424242424242"
THREE_D_SECURE = "4000002760003184"


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[StripeServer]:
    with running_stripe_server(tmp_path_factory.mktemp("stripe-webhooks")) as running:
        yield running


@pytest.fixture
def billing(start_billing, licensing, server):
    return start_billing(**stripe_env(server))


def customer() -> str:
    return "C" + uuid.uuid4().hex[:7].upper()


def buy(rpc, who: str, plan: dict, payment_method: str) -> dict[str, Any]:
    body = {"plan": plan["code"], "seats": 2, "payment_method": payment_method}
    return rpc.call("billing", "purchase", who, body)


def deliver(rpc, server: StripeServer, event: dict, signature: str | None = "sign") -> dict:
    """The event as Stripe posts it, handed on as the gateway does."""
    payload = json.dumps(event)
    if signature == "sign":
        signature = server.sign(payload.encode())
    return rpc.call("billing", "handle_stripe_webhook", payload, signature)


def charge_of(server: StripeServer, intent_id: str) -> dict[str, Any]:
    """The Stripe charge of a payment intent, as `charge.refunded` carries it."""
    client = server.client()
    intent = plain(client.v1.payment_intents.retrieve(intent_id))
    latest = intent["latest_charge"]
    return plain(client.v1.charges.retrieve(latest if isinstance(latest, str) else latest["id"]))


def paid_intent(sql, who: str) -> str:
    [(intent_id,)] = sql("SELECT provider_charge_id FROM payments WHERE customer_id = :c", c=who)
    return intent_id


def test_a_bad_or_missing_signature_is_refused_and_nothing_recorded(rpc, billing, server, sql):
    event = server.event("payment_intent.succeeded", {"id": "pi_none", "object": "payment_intent"})
    for signature in (None, "t=1,v1=00", server.sign(b"another body")):
        with pytest.raises(PortalError) as caught:
            deliver(rpc, server, event, signature)
        assert caught.value.code == "invalid_signature"
    wrong_secret = server.sign(json.dumps(event).encode(), secret="whsec_other")
    with pytest.raises(PortalError) as caught:
        deliver(rpc, server, event, wrong_secret)
    assert caught.value.code == "invalid_signature"
    assert sql("SELECT count(*) FROM webhook_events WHERE event_id = :e", e=event["id"]) == [(0,)]


def test_a_purchase_authenticated_but_never_confirmed_is_settled_by_the_webhook_once(
    rpc, plan, server, sql, billing_events
) -> None:
    who = customer()
    waiting = buy(rpc, who, plan, server.payment_method(THREE_D_SECURE))
    succeeded = server.authenticate(waiting["client_secret"], success=True)
    event = server.event("payment_intent.succeeded", succeeded)
    first = deliver(rpc, server, event)
    assert first == {"received": True, "duplicate": False, "type": "payment_intent.succeeded"}
    # Stripe retries until it hears 2xx: the same event again changes nothing
    assert deliver(rpc, server, event)["duplicate"] is True
    [payment] = rpc.call("billing", "list_payments", who)
    assert payment["status"] == "paid"
    [paid] = billing_events.wait_for("payment_succeeded")
    assert paid["payment"]["receipt_number"] == payment["receipt_number"]
    assert sql("SELECT count(*) FROM webhook_events WHERE event_id = :e", e=event["id"]) == [(1,)]
    # the customer's own confirmation, late: the same receipt
    confirmed = rpc.call("billing", "confirm_purchase", who, waiting["purchase_id"])
    assert confirmed["payment"]["receipt_number"] == payment["receipt_number"]
    assert sql("SELECT count(*) FROM payments WHERE customer_id = :c", c=who) == [(1,)]


def test_a_charge_given_up_here_but_paid_at_stripe_is_settled_by_the_webhook(
    rpc, plan, server, sql, config, billing
) -> None:
    # the renewal pass abandons a charge the provider's search does not find (its answer was
    # lost); the money was taken all the same, so the webhook that says so is settled
    who = customer()
    waiting = buy(rpc, who, plan, server.payment_method(THREE_D_SECURE))
    engine = create_engine(config["BILLING_DATABASE_URL"])
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE charges SET status = 'abandoned' WHERE purchase_id = :p"),
            {"p": waiting["purchase_id"]},
        )
    engine.dispose()
    succeeded = server.authenticate(waiting["client_secret"], success=True)
    deliver(rpc, server, server.event("payment_intent.succeeded", succeeded))
    [payment] = rpc.call("billing", "list_payments", who)
    assert payment["status"] == "paid"
    assert sql("SELECT status FROM charges WHERE purchase_id = :p", p=waiting["purchase_id"]) == [
        ("succeeded",)
    ]


def test_other_event_types_are_recorded_and_ignored(rpc, billing, server, sql) -> None:
    event = server.event("customer.created", {"id": "cus_x", "object": "customer"})
    assert deliver(rpc, server, event) == {
        "received": True,
        "duplicate": False,
        "type": "customer.created",
    }
    assert sql("SELECT type FROM webhook_events WHERE event_id = :e", e=event["id"]) == [
        ("customer.created",)
    ]


def test_a_refund_made_at_stripe_refunds_the_payment(
    rpc, plan, server, sql, billing_events
) -> None:
    who = customer()
    bought = buy(rpc, who, plan, server.payment_method(OK))
    receipt = bought["payment"]["receipt_number"]
    intent_id = paid_intent(sql, who)
    client = server.client()

    # a partial refund is noted; the payment stays paid
    client.v1.refunds.create({"payment_intent": intent_id, "amount": 1000})
    deliver(rpc, server, server.event("charge.refunded", charge_of(server, intent_id)))
    assert sql("SELECT status, refunded_amount FROM payments WHERE customer_id = :c", c=who) == [
        ("paid", 1000)
    ]
    # the rest refunded: the payment is refunded, its recurring payment ended, the customer told
    client.v1.refunds.create({"payment_intent": intent_id})
    event = server.event("charge.refunded", charge_of(server, intent_id))
    deliver(rpc, server, event)
    [payment] = rpc.call("billing", "list_payments", who)
    assert (payment["status"], payment["refund_reason"]) == ("refunded", "refunded_by_provider")
    [recurring] = rpc.call("billing", "list_recurring_payments", who)
    assert (recurring["status"], recurring["cancelled_by"]) == ("cancelled", "refund")
    [refunded] = billing_events.wait_for("payment_refunded")
    assert (refunded["receipt_number"], refunded["reason"]) == (receipt, "refunded_by_provider")
    # delivered again: one refund, one email
    assert deliver(rpc, server, event)["duplicate"] is True
    again = server.event("charge.refunded", charge_of(server, intent_id))
    assert deliver(rpc, server, again)["duplicate"] is False
    assert len(billing_events.of("payment_refunded")) == 1


def test_a_dispute_suspends_until_won(rpc, plan, server, sql, billing_events) -> None:
    who = customer()
    bought = buy(rpc, who, plan, server.payment_method(OK))
    receipt = bought["payment"]["receipt_number"]
    license = license_for(rpc, receipt, who)
    intent_id = paid_intent(sql, who)
    dispute = {
        "id": f"dp_{uuid.uuid4().hex[:14]}",
        "object": "dispute",
        "amount": 9800,
        "currency": "eur",
        "charge": charge_of(server, intent_id)["id"],
        "payment_intent": intent_id,
        "reason": "fraudulent",
        "status": "needs_response",
    }
    created = server.event("charge.dispute.created", dispute)
    deliver(rpc, server, created)
    assert deliver(rpc, server, created)["duplicate"] is True
    assert sql("SELECT status, dispute_status FROM payments WHERE customer_id = :c", c=who) == [
        ("disputed", "needs_response")
    ]
    [recurring] = rpc.call("billing", "list_recurring_payments", who)
    assert (recurring["status"], recurring["cancelled_by"]) == ("cancelled", "dispute")
    [disputed] = billing_events.wait_for("payment_disputed")
    assert {key: disputed[key] for key in ("customer_id", "receipt_number", "license_id")} == {
        "customer_id": who,
        "receipt_number": receipt,
        "license_id": license["license_id"],
    }
    assert (disputed["amount"], disputed["currency"], disputed["reason"]) == (
        9800,
        "EUR",
        "fraudulent",
    )
    assert disputed["product_name"] == "CAD Pro" and disputed["event_id"]

    deliver(rpc, server, server.event("charge.dispute.closed", {**dispute, "status": "won"}))
    assert sql("SELECT status, dispute_status FROM payments WHERE customer_id = :c", c=who) == [
        ("paid", "won")
    ]
    [closed] = billing_events.wait_for("payment_dispute_closed")
    assert (closed["receipt_number"], closed["status"]) == (receipt, "won")


def test_a_lost_dispute_leaves_the_payment_disputed(rpc, plan, server, sql, billing_events):
    who = customer()
    buy(rpc, who, plan, server.payment_method(OK))
    intent_id = paid_intent(sql, who)
    dispute = {"id": "dp_lost", "object": "dispute", "payment_intent": intent_id}
    dispute.update({"amount": 9800, "currency": "eur", "reason": "general"})
    deliver(rpc, server, server.event("charge.dispute.created", dispute))
    deliver(rpc, server, server.event("charge.dispute.closed", {**dispute, "status": "lost"}))
    assert sql("SELECT status, dispute_status FROM payments WHERE customer_id = :c", c=who) == [
        ("disputed", "lost")
    ]
    [closed] = billing_events.wait_for("payment_dispute_closed")
    assert closed["status"] == "lost"
