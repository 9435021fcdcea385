"""Billing's audit trail on the real bus and PostgreSQL (fixtures: conftest.py).

A portal user acts as the gateway makes them act (the actor in the RPC's context data),
staff as `portalctl` does (here: an administrator's client saying staff). Each change's
audit row is written with it, once, and survives a crash before its event is published.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from nameko.testing.services import replace_dependencies
from sqlalchemy import create_engine, text

from common.audit import encode_cursor
from common.rpc import standalone_client
from services.billing.service import BillingService
from tests.integration.billing.conftest import OK_CARD, QUIET, license_for
from tests.integration.licensing.support import redeliver_as
from tests.support.bus import watch_events
from tests.support.waiting import eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

USER = {"type": "user", "user_id": "U-AAAA-BBBB", "email": "x@y.test"}
MASTERCARD = {"number": "5555555555554444", "exp_month": 6, "exp_year": 2031, "cvc": "321"}
DETAILS = {"company_name": "Acme GmbH", "address": "Main St 1\n1010 Vienna"}


def customer() -> str:
    return "C" + uuid.uuid4().hex[:7].upper()


@pytest.fixture
def as_user(billing) -> Iterator[Any]:
    with standalone_client(timeout=10, context_data={"actor": USER}) as client:
        yield client


@pytest.fixture
def write(config) -> Iterator[Any]:
    """`write("UPDATE …", name=value)`: a statement on billing's database, committed."""
    engine = create_engine(config["BILLING_DATABASE_URL"])

    def run(statement: str, **params: Any) -> None:
        with engine.begin() as connection:
            connection.execute(text(statement), params)

    yield run
    engine.dispose()


def new_plan(client) -> dict:
    body = {"code": f"cad-{uuid.uuid4().hex[:8]}", "product_code": "CADPRO", "amount": 4900,
            "currency": "EUR", "interval": "month"}  # fmt: skip
    return client.call("billing", "create_plan", body)


def audit_rows(sql, customer_id: str) -> list:
    return sql(
        "SELECT action, actor_type, actor_user_id, target_id, details FROM audit_events "
        "WHERE customer_id = :c ORDER BY id",
        c=customer_id,
    )


def buy(client, customer_id: str, plan: dict, **extra: Any) -> dict:
    body = {"plan": plan["code"], "seats": 2, "card": OK_CARD, **extra}
    return client.call("billing", "purchase", customer_id, body)


def test_a_users_purchase_and_changes_and_the_systems_renewal(rpc, as_user, plan, sql) -> None:
    who = customer()
    bought = buy(as_user, who, plan)
    receipt = bought["payment"]["receipt_number"]
    reference = bought["recurring_payment"]["id"]
    license_for(rpc, receipt, who)
    as_user.call("billing", "cancel_recurring_payment", reference, who)
    as_user.call("billing", "resume_recurring_payment", reference, who)
    as_user.call("billing", "replace_card", reference, who, MASTERCARD)
    as_user.call("billing", "update_billing_details", who, DETAILS)
    due = datetime.fromisoformat(bought["recurring_payment"]["next_charge_at"])
    report = rpc.call("billing", "run_renewals", (due + timedelta(minutes=1)).isoformat())
    assert report["succeeded"] >= 1
    rows = audit_rows(sql, who)
    assert [(r.action, r.actor_type, r.actor_user_id) for r in rows] == [
        ("purchase", "user", "U-AAAA-BBBB"),
        ("recurring_payment_cancelled", "user", "U-AAAA-BBBB"),
        ("recurring_payment_resumed", "user", "U-AAAA-BBBB"),
        ("recurring_payment_card_changed", "user", "U-AAAA-BBBB"),
        ("billing_details_changed", "user", "U-AAAA-BBBB"),
        ("purchase", "system", None),
    ]
    assert json.loads(rows[0].details) == {
        "receipt_number": receipt,
        "plan": plan["code"],
        "seats": 2,
        "amount": 9800,
        "currency": "EUR",
        "kind": "new",
        "automatic": False,
    }
    renewal = json.loads(rows[-1].details)
    assert (renewal["kind"], renewal["automatic"]) == ("renewal", True)
    assert json.loads(rows[3].details)["card_last4"] == "4444"
    dumped = json.dumps([r.details for r in rows])
    assert "4242424242424242" not in dumped and "5555555555554444" not in dumped
    # as the gateway reads it: newest first, the user's own
    mine = as_user.call("billing", "list_audit_events", who, {"user_id": "U-AAAA-BBBB"})
    assert [e["action"] for e in mine][:1] == ["billing_details_changed"] and len(mine) == 5
    assert mine[-1]["target"] == {"type": "payment", "id": receipt}


def test_staff_cancelling_is_staff(rpc, plan, sql) -> None:
    who = customer()
    reference = buy(rpc, who, plan)["recurring_payment"]["id"]
    with standalone_client(timeout=10, context_data={"actor": {"type": "staff"}}) as staff:
        staff.call("billing", "cancel_recurring_payment", reference)
    [purchase, cancelled] = audit_rows(sql, who)
    assert (purchase.action, purchase.actor_type) == ("purchase", "system")  # nobody named
    assert (cancelled.action, cancelled.actor_type) == ("recurring_payment_cancelled", "staff")


def test_a_redelivered_cancellation_is_recorded_once(config, rpc, plan, sql) -> None:
    who = customer()
    reference = buy(rpc, who, plan)["recurring_payment"]["id"]
    replies = redeliver_as(
        config["AMQP_URI"], USER, "billing", "cancel_recurring_payment", [reference, who]
    )
    assert len(replies) == 3 and {r["result"]["status"] for r in replies} == {"cancelled"}
    assert [r.action for r in audit_rows(sql, who)] == ["purchase", "recurring_payment_cancelled"]


class BrokerAway:
    """Publishing fails after the commit (the broker went away, or the process died)."""

    def __init__(self) -> None:
        self.tried: list[str] = []

    def __call__(self, event_type: str, payload: dict[str, Any]) -> dict[str, Any]:
        self.tried.append(event_type)
        raise ConnectionError("the broker went away after the commit")


def test_a_purchase_whose_event_was_not_published_keeps_its_audit_row_and_event(
    config, container_factory, licensing, start_billing, rpc, sql, write
) -> None:
    broken = container_factory(BillingService, QUIET)  # the only instance, for now
    publish = BrokerAway()
    replace_dependencies(broken, events=publish)
    broken.start()
    plan = new_plan(rpc)
    who = customer()
    with standalone_client(timeout=10, context_data={"actor": USER}) as client:
        receipt = buy(client, who, plan)["payment"]["receipt_number"]
    assert publish.tried == ["payment_succeeded"]
    [row] = audit_rows(sql, who)
    assert (row.action, row.actor_type, row.target_id) == ("purchase", "user", receipt)
    staged = sql(
        "SELECT event_id, published_at FROM event_outbox WHERE event_type = 'payment_succeeded'"
        " AND payload LIKE :receipt",
        receipt=f"%{receipt}%",
    )
    assert len(staged) == 1 and staged[0].published_at is None
    broken.stop()
    # the relay leaves young rows to their request: make this one old enough
    write("UPDATE event_outbox SET created_at = created_at - interval '1 minute'")
    with watch_events(config["AMQP_URI"], "billing") as events:
        start_billing()  # a healthy instance: its relay publishes what was left
        events.wait_until(
            lambda seen: any(
                e["payment"]["receipt_number"] == receipt for e in seen.of("payment_succeeded")
            ),
            timeout=30,
        )
    eventually(
        lambda: (
            sql("SELECT published_at FROM event_outbox WHERE event_id = :e", e=staged[0].event_id)[
                0
            ].published_at
            is not None
        )
    )
    assert len(audit_rows(sql, who)) == 1


def test_pages_with_before_and_the_filters(rpc, as_user, billing, write) -> None:
    who = customer()
    for number in range(5):
        as_user.call(
            "billing", "update_billing_details", who, {**DETAILS, "company_name": f"Acme {number}"}
        )
    # rows of one instant would tie on `at` and order by event ID: spread them a second apart
    write(
        "UPDATE audit_events SET at = at + (id * interval '1 second') WHERE customer_id = :c",
        c=who,
    )
    names: list[str] = []
    before = None
    while True:
        page = as_user.call("billing", "list_audit_events", who, {"limit": 2, "before": before})
        names.extend(e["details"]["company_name"] for e in page)
        if len(page) < 2:
            break
        before = encode_cursor(datetime.fromisoformat(page[-1]["at"]), page[-1]["event_id"])
    assert names == [f"Acme {n}" for n in (4, 3, 2, 1, 0)]
    newest = as_user.call("billing", "list_audit_events", who, {"limit": 1})[0]
    since = {"since": newest["at"]}
    assert len(as_user.call("billing", "list_audit_events", who, since)) == 1
    until = {"until": newest["at"], "action": "billing_details_changed"}
    assert len(as_user.call("billing", "list_audit_events", who, until)) == 4
    assert as_user.call("billing", "list_audit_events", who, {"action": "purchase"}) == []
    assert as_user.call("billing", "list_audit_events", who, {"user_id": "U-NOPE-NOPE"}) == []
