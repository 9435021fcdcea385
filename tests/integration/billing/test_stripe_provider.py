"""billing paying through Stripe (the local Stripe server of tests/support/stripe_server.py) on
the real bus and PostgreSQL: purchases with payment methods, declines, 3-D Secure and its
confirmation, renewals charged off-session, card changes and refunds."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from nameko.standalone.events import event_dispatcher
from sqlalchemy import create_engine, text

from common.errors import PortalError
from services.billing.stripe_provider import plain
from tests.integration.billing.conftest import OK_CARD, license_for
from tests.support.stripe import StripeServer, running_stripe_server, stripe_env

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

OK = "4242424242424242"
DECLINED_AT_CHARGE = "4000000000000341"
NO_FUNDS = "4000000000009995"
DECLINED_AT_ATTACH = "4000000000000002"
THREE_D_SECURE = "4000002760003184"


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[StripeServer]:
    with running_stripe_server(tmp_path_factory.mktemp("stripe")) as running:
        yield running


@pytest.fixture
def billing(start_billing, licensing, server):
    """billing with PAYMENT_PROVIDER=stripe (overrides the sandbox billing of conftest)."""
    return start_billing(**stripe_env(server))


@pytest.fixture
def age_charges(config):
    """`age_charges(customer_id, hours)`: the company's charges made `hours` ago."""
    engine = create_engine(config["BILLING_DATABASE_URL"])

    def age(customer_id: str, hours: float) -> None:
        at = datetime.now(UTC) - timedelta(hours=hours)
        with engine.begin() as connection:
            connection.execute(
                text("UPDATE charges SET created_at = :t WHERE customer_id = :c"),
                {"t": at, "c": customer_id},
            )

    yield age
    engine.dispose()


def customer() -> str:
    return "C" + uuid.uuid4().hex[:7].upper()


def buy(rpc, who: str, plan: dict, payment_method: str, **extra: Any) -> dict[str, Any]:
    body = {"plan": plan["code"], "seats": 2, "payment_method": payment_method, **extra}
    return rpc.call("billing", "purchase", who, body)


def error_of(call, *args, **kwargs) -> PortalError:
    with pytest.raises(PortalError) as caught:
        call(*args, **kwargs)
    return caught.value


def intent(server: StripeServer, intent_id: str) -> dict[str, Any]:
    return plain(server.client().v1.payment_intents.retrieve(intent_id))


def test_a_purchase_with_a_payment_method_charges_the_companys_stripe_customer(
    rpc, plan, server, sql, billing_events
) -> None:
    who = customer()
    result = buy(rpc, who, plan, server.payment_method(OK))
    payment = result["payment"]
    assert (payment["amount"], payment["status"], payment["card_last4"]) == (9800, "paid", OK[-4:])
    assert result["recurring_payment"]["status"] == "active"
    [(charge_id,)] = sql("SELECT provider_charge_id FROM payments WHERE customer_id = :c", c=who)
    [(stripe_customer,)] = sql(
        "SELECT provider_customer_id FROM provider_customers WHERE customer_id = :c", c=who
    )
    assert sql(
        "SELECT provider, provider_customer_id FROM payment_methods WHERE customer_id = :c", c=who
    ) == [("stripe", stripe_customer)]
    charged = intent(server, charge_id)
    assert (charged["status"], charged["amount"], charged["currency"]) == ("succeeded", 9800, "eur")
    assert charged["customer"] == stripe_customer
    assert charged["metadata"]["charge_key"].startswith("billing-charge-")
    made = plain(server.client().v1.customers.retrieve(stripe_customer))
    assert made["metadata"] == {"company_id": who}
    [event] = billing_events.wait_for("payment_succeeded")
    assert event["payment"]["receipt_number"] == payment["receipt_number"]

    # a second purchase of the company: the same Stripe customer
    buy(rpc, who, plan, server.payment_method(OK))
    assert sql("SELECT count(*) FROM provider_customers WHERE customer_id = :c", c=who) == [(1,)]


def test_card_numbers_are_not_accepted_with_stripe(rpc, plan, sql) -> None:
    who = customer()
    body = {"plan": plan["code"], "seats": 2, "card": OK_CARD}
    error = error_of(rpc.call, "billing", "purchase", who, body)
    assert error.code == "card_not_accepted"
    assert error.details["fields"]["card"]
    assert sql("SELECT count(*) FROM charges WHERE customer_id = :c", c=who) == [(0,)]


@pytest.mark.parametrize(
    ("number", "code"),
    [
        (DECLINED_AT_CHARGE, "card_declined"),
        (NO_FUNDS, "insufficient_funds"),
        (DECLINED_AT_ATTACH, "card_declined"),
    ],
)
def test_a_declined_card_creates_nothing(rpc, plan, server, sql, number, code) -> None:
    who = customer()
    error = error_of(buy, rpc, who, plan, server.payment_method(number))
    assert error.code == code
    assert rpc.call("billing", "list_payments", who) == []
    for table in ("payments", "recurring_payments", "payment_methods"):
        assert sql(f"SELECT count(*) FROM {table} WHERE customer_id = :c", c=who) == [(0,)]
    statuses = sql("SELECT status FROM charges WHERE customer_id = :c", c=who)
    # declined at attach: no charge was even tried
    assert statuses == ([] if number == DECLINED_AT_ATTACH else [("declined",)])


def test_three_d_secure_answers_requires_action_then_confirm_settles_once(
    rpc, plan, server, sql, billing_events
) -> None:
    who = customer()
    key = uuid.uuid4().hex
    method = server.payment_method(THREE_D_SECURE)
    waiting = buy(rpc, who, plan, method, request_key=key)
    assert waiting["status"] == "requires_action"
    assert re.fullmatch(r"pur_[0-9a-f]{24}", waiting["purchase_id"])
    assert waiting["client_secret"].startswith("pi_")
    assert sql("SELECT status FROM charges WHERE customer_id = :c", c=who) == [("requires_action",)]
    # the same request again while the bank waits: the same answer, no second charge
    assert buy(rpc, who, plan, method, request_key=key) == waiting
    # confirmed before the customer authenticated: still waiting
    purchase_id = waiting["purchase_id"]
    assert rpc.call("billing", "confirm_purchase", who, purchase_id) == waiting
    # another company's confirmation finds nothing
    error = error_of(rpc.call, "billing", "confirm_purchase", customer(), purchase_id)
    assert error.code == "purchase_not_found"

    server.authenticate(waiting["client_secret"], success=True)
    paid = rpc.call("billing", "confirm_purchase", who, purchase_id)
    assert paid["payment"]["status"] == "paid" and paid["payment"]["amount"] == 9800
    assert paid["recurring_payment"]["status"] == "active"
    assert rpc.call("billing", "confirm_purchase", who, purchase_id) == paid
    assert buy(rpc, who, plan, method, request_key=key) == paid
    [event] = billing_events.wait_for("payment_succeeded")
    assert event["payment"]["receipt_number"] == paid["payment"]["receipt_number"]
    assert sql("SELECT count(*) FROM payments WHERE customer_id = :c", c=who) == [(1,)]


def test_failed_three_d_secure_is_authentication_failed_and_charges_nothing(
    rpc, plan, server, sql
) -> None:
    who = customer()
    waiting = buy(rpc, who, plan, server.payment_method(THREE_D_SECURE))
    server.authenticate(waiting["client_secret"], success=False)
    error = error_of(rpc.call, "billing", "confirm_purchase", who, waiting["purchase_id"])
    assert error.code == "authentication_failed"
    assert sql("SELECT status, decline_code FROM charges WHERE customer_id = :c", c=who) == [
        ("declined", "authentication_failed")
    ]
    assert rpc.call("billing", "list_payments", who) == []


def test_a_purchase_left_waiting_a_day_is_cancelled_by_the_renewal_pass(
    rpc, plan, server, sql, age_charges
) -> None:
    who = customer()
    waiting = buy(rpc, who, plan, server.payment_method(THREE_D_SECURE))
    [(intent_id,)] = sql("SELECT provider_charge_id FROM charges WHERE customer_id = :c", c=who)
    age_charges(who, 25)
    report = rpc.call("billing", "run_renewals")
    assert report["abandoned"] >= 1
    assert intent(server, intent_id)["status"] == "canceled"
    assert sql("SELECT status FROM charges WHERE customer_id = :c", c=who) == [("abandoned",)]
    error = error_of(rpc.call, "billing", "confirm_purchase", who, waiting["purchase_id"])
    assert error.code == "authentication_failed"


def test_a_renewal_charges_the_saved_customer_off_session(
    rpc, plan, server, sql, billing_events
) -> None:
    who = customer()
    first = buy(rpc, who, plan, server.payment_method(OK))["payment"]
    license_for(rpc, first["receipt_number"], who)
    as_of = (datetime.now(UTC) + timedelta(days=40)).isoformat()
    report = rpc.call("billing", "run_renewals", as_of)
    assert report["succeeded"] >= 1
    rows = sql(
        "SELECT kind, provider_charge_id FROM payments WHERE customer_id = :c ORDER BY id", c=who
    )
    assert [kind for kind, _ in rows] == ["new", "renewal"]
    renewal = intent(server, rows[1][1])
    [(stripe_customer,)] = sql(
        "SELECT provider_customer_id FROM provider_customers WHERE customer_id = :c", c=who
    )
    assert (renewal["status"], renewal["customer"]) == ("succeeded", stripe_customer)
    assert rows[0][1] != rows[1][1]


def test_a_renewal_whose_bank_wants_authentication_goes_into_dunning(
    rpc, plan, server, billing_events
) -> None:
    who = customer()
    waiting = buy(rpc, who, plan, server.payment_method(THREE_D_SECURE))
    server.authenticate(waiting["client_secret"], success=True)
    first = rpc.call("billing", "confirm_purchase", who, waiting["purchase_id"])["payment"]
    license_for(rpc, first["receipt_number"], who)
    as_of = (datetime.now(UTC) + timedelta(days=40)).isoformat()
    report = rpc.call("billing", "run_renewals", as_of)
    assert report["declined"] >= 1
    failed = [e for e in billing_events.wait_for("payment_failed") if e["customer_id"] == who]
    assert failed[0]["reason"] == "authentication_required"


def test_a_card_change_attaches_and_checks_the_new_payment_method(rpc, plan, server) -> None:
    who = customer()
    bought = buy(rpc, who, plan, server.payment_method(OK))
    reference = bought["recurring_payment"]["id"]
    changed = rpc.call(
        "billing",
        "replace_card",
        reference,
        who,
        None,
        payment_method=server.payment_method("5555555555554444"),
    )
    assert changed["card_last4"] == "4444"
    # a card whose bank wants 3-D Secure cannot be confirmed here: declined, with a word why
    error = error_of(
        rpc.call,
        "billing",
        "replace_card",
        reference,
        who,
        None,
        payment_method=server.payment_method(THREE_D_SECURE),
    )
    assert error.code == "card_declined" and "confirm this card" in error.message
    # a typed card is not accepted with Stripe
    error = error_of(rpc.call, "billing", "replace_card", reference, who, OK_CARD)
    assert error.code == "card_not_accepted"
    [recurring] = rpc.call("billing", "list_recurring_payments", who)
    assert recurring["card_last4"] == "4444"


def test_a_payment_licensing_cannot_apply_is_refunded_through_stripe(
    rpc, plan, server, sql, billing_events
) -> None:
    who = customer()
    paid = buy(rpc, who, plan, server.payment_method(OK))["payment"]
    event = {
        "event_id": uuid.uuid4().hex,
        "occurred_at": datetime.now(UTC).isoformat(),
        "receipt_number": paid["receipt_number"],
        "customer_id": who,
        "reason": "product_archived",
        "message": "The product CAD Pro is no longer sold.",
    }
    event_dispatcher()("licensing", "payment_not_applied", event)
    [refunded] = billing_events.wait_for("payment_refunded", timeout=10)
    assert (refunded["receipt_number"], refunded["reason"]) == (
        paid["receipt_number"],
        "product_archived",
    )
    [(intent_id, refund_id)] = sql(
        "SELECT provider_charge_id, provider_refund_id FROM payments WHERE customer_id = :c",
        c=who,
    )
    refunds = plain(server.client().v1.refunds.list({"payment_intent": intent_id}))["data"]
    assert [(r["id"], r["amount"]) for r in refunds] == [(refund_id, 9800)]
