"""Stripe's answers racing each other in billing, on the real bus and PostgreSQL with the local
Stripe server: the customer's confirmation against the webhook of the same payment, and one
event delivered to two billing instances at once. Whatever wins, one receipt and one
`payment_succeeded`.

Workers of one process never overlap inside a transaction (psycopg2 blocks the process), so
the last test runs the two flows in two OS threads, as two instances would, in the order
that once made two receipts: the webhook finds the charge, the confirmation locks it, the
webhook waits for that lock and must then see the charge settled."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import eventlet
import eventlet.event
import eventlet.patcher
import pytest
from nameko import config as nameko_config
from sqlalchemy.orm import sessionmaker

from common.db import Db
from common.timeutil import utcnow
from common.unit_of_work import UnitOfWork
from services.billing.dependencies import stripe_provider
from services.billing.models import AuditEvent, EventOutbox, HandledRequest
from services.billing.repository import BillingRepository
from services.billing.stripe_provider import StripeProvider
from services.billing.use_cases import purchases, webhooks
from tests.support.stripe import StripeServer, running_stripe_server, stripe_env

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

THREE_D_SECURE = "4000002760003184"


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[StripeServer]:
    with running_stripe_server(tmp_path_factory.mktemp("stripe-races")) as running:
        yield running


@pytest.fixture
def billing(start_billing, licensing, server):
    return start_billing(**stripe_env(server))


def run_at_once(calls: list[tuple[Any, str, tuple]]) -> list:
    """Start each `(container, method, args)` in a worker at once; every result (or the
    exception raised), in order."""
    done = [eventlet.event.Event() for _ in calls]

    def handler(index: int):
        def handle_result(worker_ctx, result, exc_info):
            done[index].send(result if exc_info is None else exc_info[1])
            return result, exc_info

        return handle_result

    for index, (container, method, args) in enumerate(calls):
        [entrypoint] = [ep for ep in container.entrypoints if ep.method_name == method]
        container.spawn_worker(entrypoint, args, {}, handle_result=handler(index))
    with eventlet.Timeout(60):
        return [event.wait() for event in done]


def authenticated_purchase(rpc, plan: dict, server: StripeServer) -> tuple[str, dict, str]:
    """`(customer, the 202 answer, payment_intent.succeeded's payload)` of a purchase whose
    customer authenticated at Stripe and has not confirmed yet."""
    who = "C" + uuid.uuid4().hex[:7].upper()
    method = server.payment_method(THREE_D_SECURE)
    body = {"plan": plan["code"], "seats": 2, "payment_method": method}
    waiting = rpc.call("billing", "purchase", who, body)
    assert waiting["status"] == "requires_action"
    succeeded = server.authenticate(waiting["client_secret"], success=True)
    return who, waiting, json.dumps(server.event("payment_intent.succeeded", succeeded))


def succeeded_events(sql, who: str) -> int:
    """How many `payment_succeeded` of the company billing staged (its outbox keeps them in
    the transaction of the receipt, so this counts what is published, without waiting)."""
    [(staged,)] = sql(
        "SELECT count(*) FROM event_outbox WHERE event_type = 'payment_succeeded'"
        " AND payload LIKE :who",
        who=f"%{who}%",
    )
    return staged


def test_confirmation_and_webhook_of_one_payment_at_once_settle_once(
    rpc, plan, server, sql, billing, monkeypatch
) -> None:
    who, waiting, payload = authenticated_purchase(rpc, plan, server)
    confirm = StripeProvider.confirm

    def slow_confirm(self, intent_id: str):
        result = confirm(self, intent_id)
        eventlet.sleep(0.05)  # the webhook settles while the confirmation is on its way
        return result

    monkeypatch.setattr(StripeProvider, "confirm", slow_confirm)
    confirmed, hooked = run_at_once(
        [
            (billing, "confirm_purchase", (who, waiting["purchase_id"])),
            (billing, "handle_stripe_webhook", (payload, server.sign(payload.encode()))),
        ]
    )
    assert not isinstance(confirmed, Exception), confirmed
    assert hooked == {"received": True, "duplicate": False, "type": "payment_intent.succeeded"}
    [(receipt,)] = sql("SELECT receipt_number FROM payments WHERE customer_id = :c", c=who)
    assert confirmed["payment"]["receipt_number"] == receipt
    assert succeeded_events(sql, who) == 1


def test_one_event_delivered_to_two_instances_at_once_is_applied_once(
    rpc, plan, server, sql, billing, start_billing
) -> None:
    second = start_billing(**stripe_env(server))
    who, _, payload = authenticated_purchase(rpc, plan, server)
    signature = server.sign(payload.encode())
    answers = run_at_once(
        [
            (billing, "handle_stripe_webhook", (payload, signature)),
            (second, "handle_stripe_webhook", (payload, signature)),
        ]
    )
    assert sorted(answer["duplicate"] for answer in answers) == [False, True], answers
    assert sql("SELECT count(*) FROM payments WHERE customer_id = :c", c=who) == [(1,)]
    assert succeeded_events(sql, who) == 1


def test_two_instances_settling_one_payment_in_the_same_instant_make_one_receipt(
    rpc, plan, server, sql, config, billing, monkeypatch
) -> None:
    who, waiting, payload = authenticated_purchase(rpc, plan, server)
    threading = eventlet.patcher.original("threading")
    webhook_found, confirm_locked = threading.Event(), threading.Event()
    find, read = BillingRepository.charge_of_provider, BillingRepository.charge

    def find_then_signal(self, *args):
        found = find(self, *args)
        webhook_found.set()  # the webhook has its charge loaded, as it was before any lock
        return found

    def read_in_turn(self, charge_id: int, lock: bool = False):
        if not lock:
            return read(self, charge_id, lock)
        if threading.current_thread().name == "webhook":
            confirm_locked.wait(10)  # then waits for the confirmation's row lock
            return read(self, charge_id, lock)
        webhook_found.wait(10)
        found = read(self, charge_id, lock)
        confirm_locked.set()
        eventlet.patcher.original("time").sleep(0.3)  # the webhook now waits for our lock
        return found

    monkeypatch.setattr(BillingRepository, "charge_of_provider", find_then_signal)
    monkeypatch.setattr(BillingRepository, "charge", read_in_turn)
    published: list = []
    results: dict[str, Any] = {}

    def instance(name: str, flow) -> None:
        provider, engine = stripe_provider(config["BILLING_DATABASE_URL"])
        uow = UnitOfWork(
            Db(sessionmaker(bind=engine)),
            BillingRepository,
            EventOutbox,
            lambda kind, body: published.append((kind, body)),
            ledger=HandledRequest,
            audit_table=AuditEvent,
        )
        try:
            results[name] = flow(uow, provider)
        except Exception as exc:
            results[name] = exc
        finally:
            engine.dispose()

    signature = server.sign(payload.encode())
    flows = {
        "confirm": lambda uow, provider: purchases.confirm_purchase(
            uow, provider, utcnow(), who, waiting["purchase_id"]
        ),
        "webhook": lambda uow, provider: webhooks.handle(
            uow, provider, payload, signature, utcnow()
        ),
    }
    with nameko_config.patch({**config, **stripe_env(server)}):
        threads = [
            threading.Thread(target=instance, args=item, name=item[0]) for item in flows.items()
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    assert not any(isinstance(result, Exception) for result in results.values()), results
    assert results["webhook"]["duplicate"] is False
    [(receipt,)] = sql("SELECT receipt_number FROM payments WHERE customer_id = :c", c=who)
    assert results["confirm"]["payment"]["receipt_number"] == receipt
    assert succeeded_events(sql, who) == 1
    assert [kind for kind, _ in published].count("payment_succeeded") == 1
