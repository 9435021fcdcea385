"""billing over the real bus and PostgreSQL: purchases, isolation, idempotent charges, renewals
exactly once with two instances, and dunning to past due on a moved clock."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import eventlet
import eventlet.event
import pytest
from eventlet.greenpool import GreenPool
from nameko import config as nameko_config
from nameko.rpc import rpc as rpc_entrypoint
from sqlalchemy import create_engine, text

from common.errors import PortalError
from common.rpc import standalone_client
from services.billing.dependencies import sandbox_provider
from services.billing.providers import Card, SandboxProvider
from tests.integration.billing.conftest import OK_CARD, license_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]


class StandInAuth:
    name = "auth"

    @rpc_entrypoint
    def get_company(self, customer_id: str) -> dict:
        return {"customer_id": customer_id}


def customer() -> str:
    return "C" + uuid.uuid4().hex[:7].upper()


def buy(rpc, customer_id: str, plan: dict, card=OK_CARD, seats: int = 2, **extra) -> dict:
    body = {"plan": plan["code"], "seats": seats, "card": card, **extra}
    return rpc.call("billing", "purchase", customer_id, body)


def error_of(call, *args) -> PortalError:
    with pytest.raises(PortalError) as caught:
        call(*args)
    return caught.value


def test_a_purchase_makes_a_receipt_a_recurring_payment_and_an_event(
    rpc, plan, billing_events
) -> None:
    who = customer()
    result = buy(rpc, who, plan, seats=3)
    payment = result["payment"]
    assert payment["receipt_number"].startswith(f"R-{datetime.now(UTC).year}-")
    assert (payment["amount"], payment["currency"], payment["seats"]) == (14700, "EUR", 3)
    [listed] = rpc.call("billing", "list_payments", who)
    assert listed["receipt_number"] == payment["receipt_number"]
    [recurring] = rpc.call("billing", "list_recurring_payments", who)
    assert recurring["status"] == "active"
    assert recurring["next_charge_at"] == payment["period_end"]
    [event] = billing_events.wait_for("payment_succeeded")
    assert event["payment"]["receipt_number"] == payment["receipt_number"]
    assert event["purchase"]["kind"] == "new" and len(event["event_id"]) >= 32


@pytest.mark.parametrize(
    ("number", "code"),
    [("4000000000000002", "card_declined"), ("4000000000009995", "insufficient_funds")],
)
def test_a_declined_card_creates_nothing(rpc, plan, billing_events, sql, number, code) -> None:
    who = customer()
    error = error_of(buy, rpc, who, plan, {**OK_CARD, "number": number})
    assert error.code == code
    assert rpc.call("billing", "list_payments", who) == []
    assert rpc.call("billing", "list_recurring_payments", who) == []
    for table in ("payments", "recurring_payments", "payment_methods"):
        assert sql(f"SELECT count(*) FROM {table} WHERE customer_id = :c", c=who)[0][0] == 0
    assert sql("SELECT status FROM charges WHERE customer_id = :c", c=who) == [("declined",)]
    # a sentinel: billing publishes in order, so an event of the declined purchase (published
    # before its answer) would arrive before the event of a purchase made after it
    sentinel = customer()
    buy(rpc, sentinel, plan)
    [event] = billing_events.wait_for("payment_succeeded")
    assert event["customer_id"] == sentinel


def test_receipt_numbers_are_unique_and_gapless_under_concurrent_purchases(rpc, plan) -> None:
    who = customer()

    def one(_: int) -> dict:
        with standalone_client(timeout=20) as client:  # a client is not shared by greenlets
            return buy(client, who, plan)

    results = list(GreenPool(8).imap(one, range(8)))
    numbers = sorted(result["payment"]["receipt_number"] for result in results)
    sequences = [int(number.rsplit("-", 1)[1]) for number in numbers]
    assert len(set(numbers)) == 8
    assert sequences == list(range(sequences[0], sequences[0] + 8))


def test_another_company_gets_not_found_and_offline_payments_are_not_listed(rpc, plan) -> None:
    owner, stranger = customer(), customer()
    receipt = buy(rpc, owner, plan)["payment"]["receipt_number"]
    assert rpc.call("billing", "get_receipt", receipt, owner)["receipt_number"] == receipt
    assert error_of(rpc.call, "billing", "get_receipt", receipt, stranger).code == (
        "payment_not_found"
    )
    [recurring] = rpc.call("billing", "list_recurring_payments", owner)
    error = error_of(rpc.call, "billing", "cancel_recurring_payment", recurring["id"], stranger)
    assert error.code == "recurring_payment_not_found"
    assert rpc.call("billing", "list_recurring_payments", owner)[0]["status"] == "active"


def test_offline_payment_is_a_receipt_that_is_not_listed(
    rpc, billing, licensing, container_factory, billing_events
) -> None:
    container_factory(StandInAuth).start()
    who = customer()
    payment = rpc.call(
        "billing",
        "record_offline_payment",
        {"customer_id": who, "amount": 250000, "currency": "EUR", "description": "By phone"},
    )
    assert payment["channel"] == "offline"
    assert rpc.call("billing", "list_payments", who) == []
    assert rpc.call("billing", "get_receipt", payment["receipt_number"])["amount"] == 250000
    [event] = billing_events.wait_for("offline_payment_recorded")
    assert event["payment"]["receipt_number"] == payment["receipt_number"]


def test_the_sql_ledger_charges_once_per_key_even_when_raced(config, billing) -> None:
    one, engine_one = sandbox_provider()
    two, engine_two = sandbox_provider()
    try:
        token = one.tokenize(_card()).token
        key = f"test-{uuid.uuid4().hex}"
        pool = GreenPool(10)
        providers = [one, two] * 5
        results = list(pool.imap(lambda p: p.charge(4900, "EUR", token, key), providers))
        assert len({result.charge_id for result in results}) == 1
        assert two.retrieve(key) == results[0]
        assert one.retrieve(f"missing-{key}") is None
    finally:
        engine_one.dispose()
        engine_two.dispose()


def _card() -> Card:
    return Card(**OK_CARD)


def _bought_and_licensed(rpc, plan, who: str) -> dict:
    result = buy(rpc, who, plan)
    license_for(rpc, result["payment"]["receipt_number"], who)
    return result


def test_renewals_are_charged_exactly_once_with_two_instances_racing(
    start_billing, licensing, rpc, plan, sql, billing_events, monkeypatch
) -> None:
    second = start_billing()
    first = start_billing()
    buyers = [customer() for _ in range(6)]
    for who in buyers:
        _bought_and_licensed(rpc, plan, who)
    original = SandboxProvider.charge

    def slow_charge(self, *args, **kwargs):
        eventlet.sleep(0.02)  # widen the window in which the two passes overlap
        return original(self, *args, **kwargs)

    monkeypatch.setattr(SandboxProvider, "charge", slow_charge)
    as_of = (datetime.now(UTC) + timedelta(days=40)).isoformat()

    # four passes at once, two in each instance, each its own worker
    reports = _run_concurrently([first, second, first, second], "run_renewals", as_of)
    assert sum(report["succeeded"] for report in reports) >= len(buyers), reports
    assert sum(report["charged"] for report in reports) == sum(r["succeeded"] for r in reports)
    for who in buyers:
        rows = sql(
            "SELECT count(*) FROM payments WHERE customer_id = :c AND kind = 'renewal'", c=who
        )
        assert rows[0][0] == 1, (who, reports)
        charges = sql(
            "SELECT count(*) FROM charges WHERE customer_id = :c AND kind = 'invoice'", c=who
        )
        assert charges[0][0] == 1

    def renewals_of_buyers(events) -> list[dict]:
        return [
            event
            for event in events.of("payment_succeeded")
            if event["purchase"]["kind"] == "renewal" and event["customer_id"] in buyers
        ]

    billing_events.wait_until(lambda events: len(renewals_of_buyers(events)) >= len(buyers))
    # a sentinel published after every pass answered: any duplicate renewal event came before
    sentinel = customer()
    buy(rpc, sentinel, plan)
    billing_events.wait_until(
        lambda events: any(
            event["customer_id"] == sentinel for event in events.of("payment_succeeded")
        )
    )
    renewals = renewals_of_buyers(billing_events)
    assert len({event["event_id"] for event in renewals}) == len(buyers), renewals
    origins = sql("SELECT origin_receipt FROM recurring_payments")
    assert {event["purchase"]["license_id"] for event in renewals} <= {
        f"L-{origin}" for (origin,) in origins
    }
    again = rpc.call("billing", "run_renewals", as_of)
    assert (again["invoices_opened"], again["charged"]) == (0, 0)


def _run_concurrently(containers, method: str, *args) -> list:
    """Start `method` in a worker of each container at once; every result, in order.

    (`entrypoint_hook` cannot do this: two hooks on one container wait for the same worker.)
    """
    done = [eventlet.event.Event() for _ in containers]

    def handler(index: int):
        def handle_result(worker_ctx, result, exc_info):
            if exc_info is None:
                done[index].send(result)
            else:
                done[index].send_exception(exc_info[1])
            return result, exc_info

        return handle_result

    for index, container in enumerate(containers):
        [entrypoint] = [ep for ep in container.entrypoints if ep.method_name == method]
        container.spawn_worker(entrypoint, args, {}, handle_result=handler(index))
    with eventlet.Timeout(60):
        return [event.wait() for event in done]


def test_dunning_on_a_moved_clock_ends_past_due(rpc, plan, sql, billing_events) -> None:
    who = customer()
    result = _bought_and_licensed(rpc, plan, who)
    # the card starts failing after the purchase
    _execute(
        "UPDATE payment_methods SET token = 'pm_sandbox_card_declined_x' WHERE customer_id = :c",
        c=who,
    )
    due = datetime.fromisoformat(result["recurring_payment"]["next_charge_at"])
    now = datetime.now(UTC)
    attempts = []
    for days in (0, 1, 3, 5):
        offset = (due - now + timedelta(days=days, minutes=1)).total_seconds()
        with nameko_config.patch({"BILLING_CLOCK_OFFSET_SECONDS": offset}):
            report = rpc.call("billing", "run_renewals")
        attempts.append(report["declined"])
    assert attempts == [1, 1, 1, 1]
    failed = [e for e in billing_events.wait_for("payment_failed", 4) if e["customer_id"] == who]
    assert [e["attempt"] for e in failed] == [1, 2, 3, 4]
    assert failed[0]["reason"] == "card_declined"
    assert failed[0]["next_retry_at"] is not None and failed[-1]["next_retry_at"] is None
    [recurring] = rpc.call("billing", "list_recurring_payments", who)
    assert recurring["status"] == "past_due"
    renewals = "SELECT count(*) FROM payments WHERE customer_id = :c AND kind = 'renewal'"
    assert sql(renewals, c=who)[0][0] == 0


def _execute(statement: str, **params) -> None:
    engine = create_engine(nameko_config["BILLING_DATABASE_URL"])
    with engine.begin() as connection:
        connection.execute(text(statement), params)
    engine.dispose()


def test_cancel_stops_charges(rpc, plan, billing_events) -> None:
    who = customer()
    result = _bought_and_licensed(rpc, plan, who)
    reference = result["recurring_payment"]["id"]
    cancelled = rpc.call("billing", "cancel_recurring_payment", reference, who)
    assert cancelled["status"] == "cancelled"
    [event] = [
        e for e in billing_events.wait_for("recurring_payment_cancelled") if e["customer_id"] == who
    ]
    assert event["recurring_payment"]["id"] == reference
    as_of = (datetime.now(UTC) + timedelta(days=400)).isoformat()
    rpc.call("billing", "run_renewals", as_of)
    [payment] = rpc.call("billing", "list_payments", who)
    assert payment["kind"] == "new"
