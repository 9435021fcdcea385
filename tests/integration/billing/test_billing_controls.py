"""billing on the real bus and PostgreSQL (stand-in licensing): what is on sale, requests
delivered twice, identifiers in any case, recurring payments a customer controls, billing
details on receipts, and payment history in pages."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import eventlet
import pytest

from common.errors import PortalError
from common.idempotency import REQUEST_KEY
from common.rpc import standalone_client
from services.billing.providers import SandboxProvider
from tests.integration.billing.conftest import OK_CARD, PRODUCTS, license_for
from tests.support.bus import answers, deliver_again

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

MASTERCARD = {"number": "5555555555554444", "exp_month": 6, "exp_year": 2031, "cvc": "321"}
DECLINED = {**OK_CARD, "number": "4000000000000002"}


def customer() -> str:
    return "C" + uuid.uuid4().hex[:7].upper()


def buy(rpc, customer_id: str, plan: dict, card=OK_CARD, seats: int = 2, **extra) -> dict:
    body = {"plan": plan["code"], "seats": seats, "card": card, **extra}
    return rpc.call("billing", "purchase", customer_id, body)


def error_of(call, *args, **kwargs) -> PortalError:
    with pytest.raises(PortalError) as caught:
        call(*args, **kwargs)
    return caught.value


def deliver_twice(amqp_uri: str, method: str, *args: Any) -> list[Any]:
    """The same billing request message delivered twice, as when the acknowledgement of a
    delivery is lost: the same correlation ID, no request key. The answers of both."""
    return answers(deliver_again(amqp_uri, "billing", method, list(args)), "billing")


# --- what is on sale --------------------------------------------------------------------------


def test_a_plan_for_an_unknown_product_is_refused(rpc, billing, sql) -> None:
    code = f"ghost-{uuid.uuid4().hex[:6]}"
    body = {"code": code, "product_code": "GHOST", "amount": 100, "currency": "EUR",
            "interval": "month"}  # fmt: skip
    assert error_of(rpc.call, "billing", "create_plan", body).code == "product_not_found"
    assert sql("SELECT count(*) FROM plans WHERE code = :c", c=code)[0][0] == 0


def test_an_archived_plan_leaves_the_catalog_while_its_recurring_payments_go_on(
    rpc, plan, sql
) -> None:
    who = customer()
    bought = buy(rpc, who, plan)
    license_for(rpc, bought["payment"]["receipt_number"], who)
    archived = rpc.call("billing", "archive_plan", plan["code"].upper())
    assert archived["active"] is False
    assert plan["code"] not in [p["code"] for p in rpc.call("billing", "list_plans")]
    error = error_of(buy, rpc, customer(), plan)
    assert error.code == "validation_error" and "plan" in error.details["fields"]
    due = datetime.fromisoformat(bought["recurring_payment"]["next_charge_at"])
    report = rpc.call("billing", "run_renewals", (due + timedelta(minutes=1)).isoformat())
    assert report["succeeded"] >= 1
    renewals = "SELECT count(*) FROM payments WHERE customer_id = :c AND kind = 'renewal'"
    assert sql(renewals, c=who)[0][0] == 1
    rpc.call("billing", "unarchive_plan", plan["code"])
    assert plan["code"] in [p["code"] for p in rpc.call("billing", "list_plans")]


def test_plans_of_a_product_licensing_no_longer_sells_are_off_sale(rpc, plan, sql) -> None:
    PRODUCTS["cadpro"]["active"] = False
    try:
        assert plan["code"] not in [p["code"] for p in rpc.call("billing", "list_plans")]
        who = customer()
        assert error_of(buy, rpc, who, plan).code == "product_archived"
        assert sql("SELECT count(*) FROM charges WHERE customer_id = :c", c=who)[0][0] == 0
    finally:
        PRODUCTS["cadpro"]["active"] = True


# --- charged once, whatever the bus does ------------------------------------------------------


def test_a_purchase_delivered_twice_is_charged_once(config, rpc, plan, sql, monkeypatch) -> None:
    original = SandboxProvider.charge

    def slow_charge(self, *args, **kwargs):
        eventlet.sleep(0.5)  # the twin delivery arrives while the first is charging
        return original(self, *args, **kwargs)

    monkeypatch.setattr(SandboxProvider, "charge", slow_charge)
    who = customer()
    body = {"plan": plan["code"], "seats": 2, "card": OK_CARD}
    first, second = deliver_twice(config["AMQP_URI"], "purchase", who, body)
    assert first == second and first["payment"]["amount"] == 9800
    assert sql("SELECT count(*) FROM payments WHERE customer_id = :c", c=who)[0][0] == 1
    assert sql("SELECT count(*) FROM charges WHERE customer_id = :c", c=who)[0][0] == 1
    assert sql("SELECT count(*) FROM recurring_payments WHERE customer_id = :c", c=who)[0][0] == 1
    charged = "SELECT count(*) FROM sandbox_charges WHERE kind = 'charge' AND charge_id = :i"
    provider_charge = sql("SELECT provider_charge_id FROM payments WHERE customer_id = :c", c=who)[
        0
    ][0]
    assert sql(charged, i=provider_charge)[0][0] == 1


def attempt(key: str, customer_id: str, plan: dict, seats: int = 2) -> dict:
    """A purchase sent by a client that runs with request key `key` (as `portalctl` or the
    gateway does): its first call's key is derived from it, the same on every retry."""
    with standalone_client(timeout=10, context_data={REQUEST_KEY: key}) as client:
        return buy(client, customer_id, plan, seats=seats)


def test_a_request_key_reused_for_another_purchase_is_refused(rpc, plan, sql) -> None:
    who = customer()
    key = f"portal-attempt-{uuid.uuid4().hex}"
    first = attempt(key, who, plan)
    assert attempt(key, who, plan) == first  # the same attempt, retried
    error = error_of(attempt, key, who, plan, 3)
    assert error.code == "idempotency_key_reused"
    assert sql("SELECT count(*) FROM charges WHERE customer_id = :c", c=who)[0][0] == 1
    # keys are per company
    assert attempt(key, customer(), plan)["payment"] != first["payment"]


def test_a_redelivered_cancel_does_not_undo_a_later_resume(config, rpc, plan) -> None:
    who = customer()
    reference = buy(rpc, who, plan)["recurring_payment"]["id"]
    cancelled = deliver_twice(config["AMQP_URI"], "cancel_recurring_payment", reference, who)
    assert cancelled[0] == cancelled[1] and cancelled[0]["status"] == "cancelled"
    assert rpc.call("billing", "resume_recurring_payment", reference, who)["status"] == "active"


# --- identifiers in any case ---------------------------------------------------------------


def test_identifiers_in_any_case_reach_one_record_and_one_recurring_payment(rpc, plan) -> None:
    who = customer()
    bought = buy(rpc, f" {who.lower()} ", {"code": plan["code"].upper()})
    receipt = bought["payment"]["receipt_number"]
    license = license_for(rpc, receipt, who)
    assert (
        rpc.call("billing", "get_receipt", receipt.lower(), who.lower())["license_id"]
        == (license["license_id"])
    )
    renewed = buy(rpc, who, plan, license_id=license["license_id"].lower())
    [recurring] = rpc.call("billing", "list_recurring_payments", who.lower())
    assert recurring["id"] == bought["recurring_payment"]["id"]
    assert recurring["next_charge_at"] == renewed["recurring_payment"]["next_charge_at"]
    assert recurring["next_charge_at"] == renewed["payment"]["period_end"]
    assert len(rpc.call("billing", "list_payments", f"{who.lower()} ")) == 2


def test_a_suspended_license_is_not_renewed(rpc, plan, sql) -> None:
    who = customer()
    bought = buy(rpc, who, plan)
    license = license_for(rpc, bought["payment"]["receipt_number"], who)
    license["status"] = "suspended"
    error = error_of(buy, rpc, who, plan, OK_CARD, 2, license_id=license["license_id"])
    assert error.code == "license_suspended"
    assert sql("SELECT count(*) FROM charges WHERE customer_id = :c", c=who)[0][0] == 1


# --- recurring payments a customer controls --------------------------------------------------


def test_cancel_resume_and_a_new_card(rpc, plan, sql, billing_events) -> None:
    who = customer()
    reference = buy(rpc, who, plan)["recurring_payment"]["id"]
    rpc.call("billing", "cancel_recurring_payment", reference, who)
    resumed = rpc.call("billing", "resume_recurring_payment", reference, who)
    assert (resumed["status"], resumed["cancelled_by"]) == ("active", None)
    error = error_of(rpc.call, "billing", "replace_card", reference, who, DECLINED)
    assert error.code == "card_declined"
    changed = rpc.call("billing", "replace_card", reference, who, MASTERCARD)
    assert (changed["card_brand"], changed["card_last4"]) == ("mastercard", "4444")
    [event] = [
        e
        for e in billing_events.wait_for("recurring_payment_card_changed")
        if e["customer_id"] == who
    ]
    assert event["previous_card_last4"] == "4242"
    [resumed_event] = [
        e for e in billing_events.wait_for("recurring_payment_resumed") if e["customer_id"] == who
    ]
    assert resumed_event["recurring_payment"]["id"] == reference
    checks = sql("SELECT amount, status FROM sandbox_charges WHERE kind = 'authorization'")
    assert (0, "succeeded") in checks and (0, "declined") in checks
    # staff's cancellation is not the customer's to undo
    rpc.call("billing", "cancel_recurring_payment", reference)
    error = error_of(rpc.call, "billing", "resume_recurring_payment", reference, who)
    assert error.code == "recurring_payment_ended"


# --- receipts and history ------------------------------------------------------------------


def test_receipts_name_the_buyer_as_when_paid_and_history_comes_in_pages(rpc, plan) -> None:
    who = customer()
    details = {"company_name": "Acme GmbH", "address": "Main St 1\n1010 Vienna", "vat_id": None}
    saved = rpc.call("billing", "update_billing_details", who, details)
    assert saved["company_name"] == "Acme GmbH"
    receipts = [buy(rpc, who, plan)["payment"]["receipt_number"] for _ in range(5)]
    receipt = rpc.call("billing", "get_receipt", receipts[0], who)
    assert receipt["buyer"] == details
    assert receipt["product"]["name"] == "CAD Pro"
    seen: list[str] = []
    before = None
    while True:
        page = rpc.call("billing", "list_payments", who, 2, before)
        seen += [p["receipt_number"] for p in page]
        if len(page) < 2:
            break
        before = page[-1]["receipt_number"]
    assert seen == receipts[::-1]
