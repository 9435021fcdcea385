"""A payment licensing cannot apply is refunded: the real licensing and billing on the real bus
and PostgreSQL.

The race a purchase can lose: licensing told billing the product was on sale, then staff
archived it before the paid payment reached licensing. Licensing publishes
`payment_not_applied`; billing refunds the payment through the sandbox, marks it refunded,
ends its recurring payment and publishes `payment_refunded`, within seconds, once.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from eventlet.greenpool import GreenPool
from nameko.extensions import DependencyProvider
from nameko.standalone.events import event_dispatcher

from common import identifiers
from common.errors import PortalError
from common.rpc import rpc, standalone_client
from services.billing.dependencies import sandbox_provider
from services.billing.providers import Card
from services.billing.service import BillingService
from services.licensing.service import LicensingService
from tests.integration.billing.conftest import OK_CARD, QUIET
from tests.support.bus import watch_events
from tests.support.waiting import eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

HANDLED: list[str] = []  # event_id of each payment_not_applied billing finished


class RefundsHandled(DependencyProvider):
    """Records each `payment_not_applied` a billing worker finished (then nameko acks it)."""

    def worker_result(self, worker_ctx, result=None, exc_info=None) -> None:
        if worker_ctx.entrypoint.method_name == "on_payment_not_applied" and exc_info is None:
            HANDLED.append(worker_ctx.args[0]["event_id"])


class WatchedBilling(BillingService):
    refunds_handled = RefundsHandled()


class LateLicensing(LicensingService):
    """The real licensing, whose product check still answers "on sale" as it did a moment
    before staff archived the product: the purchase wins the check and loses the race."""

    @rpc(expected_exceptions=PortalError)
    def get_product(self, code: str) -> dict[str, Any]:
        return {"code": identifiers.code(code), "name": "CAD Pro", "active": True}


@pytest.fixture
def raced(config, container_factory):
    """Real billing and (late) licensing, a product with a plan, archived after the plan."""
    HANDLED.clear()
    for service in (LateLicensing, WatchedBilling):
        container_factory(service, QUIET).start()
    with standalone_client(timeout=10) as client:
        product = f"CAD-{uuid.uuid4().hex[:8].upper()}"
        client.call("licensing", "create_product", {"code": product, "name": "CAD Pro"})
        plan = client.call(
            "billing",
            "create_plan",
            {
                "code": f"Plan-{product}",
                "product_code": product,
                "amount": 4900,
                "currency": "EUR",
                "interval": "month",
            },
        )
        assert plan["product_code"] == product.lower()
        client.call("licensing", "archive_product", product)
        yield client, plan


def test_a_paid_payment_licensing_cannot_apply_is_refunded_within_seconds(
    config, raced, sql
) -> None:
    client, plan = raced
    who = "C" + uuid.uuid4().hex[:7].upper()
    amqp_uri = config["AMQP_URI"]
    with watch_events(amqp_uri, "billing") as billing, watch_events(amqp_uri, "licensing") as ours:
        bought = client.call(
            "billing", "purchase", who, {"plan": plan["code"], "seats": 2, "card": OK_CARD}
        )
        receipt = bought["payment"]["receipt_number"]
        [refunded] = billing.wait_for("payment_refunded", timeout=10)
        [not_applied] = ours.wait_for("payment_not_applied")
    assert not_applied["reason"] == "product_archived"
    assert (refunded["receipt_number"], refunded["customer_id"]) == (receipt, who)
    assert (refunded["amount"], refunded["currency"], refunded["reason"]) == (
        9800,
        "EUR",
        "product_archived",
    )
    assert refunded["amount_formatted"] == "€98.00"
    assert refunded["description"].startswith("CAD Pro, 2 seats, monthly")
    [payment] = client.call("billing", "list_payments", who)
    assert (payment["status"], payment["refund_reason"]) == ("refunded", "product_archived")
    [recurring] = client.call("billing", "list_recurring_payments", who)
    assert (recurring["status"], recurring["cancelled_by"]) == ("cancelled", "refund")
    staff = client.call("billing", "list_all_payments", "refunded", who.lower())
    assert [p["receipt_number"] for p in staff] == [receipt]
    assert client.call("licensing", "license_for_payment", receipt, who) is None
    refunds = (
        "SELECT kind, amount FROM sandbox_charges WHERE refunded_charge_id ="
        " (SELECT provider_charge_id FROM payments WHERE receipt_number = :r)"
    )
    assert sql(refunds, r=receipt) == [("refund", 9800)]

    # the event delivered again (and once more at the same moment) refunds nothing twice
    dispatch = event_dispatcher()
    for _ in range(2):
        dispatch("licensing", "payment_not_applied", not_applied)
    eventually(lambda: HANDLED.count(not_applied["event_id"]) == 3, what="all handled")
    assert sql(refunds, r=receipt) == [("refund", 9800)]
    assert client.call("billing", "list_payments", who)[0]["refunded_at"] == payment["refunded_at"]


def test_the_sql_ledger_refunds_a_charge_once_even_when_raced(config, raced) -> None:
    one, engine_one = sandbox_provider()
    two, engine_two = sandbox_provider()
    try:
        token = one.tokenize(Card(**OK_CARD)).token
        charge = one.charge(4900, "EUR", token, f"test-{uuid.uuid4().hex}")
        providers = [one, two] * 4
        keys = [f"refund-{index % 3}-{charge.charge_id}" for index in range(len(providers))]
        results = list(
            GreenPool(8).imap(
                lambda p, k: p.refund(charge.charge_id, 4900, "EUR", k), providers, keys
            )
        )
        assert len({result.refund_id for result in results}) == 1
        assert {result.charge_id for result in results} == {charge.charge_id}
    finally:
        engine_one.dispose()
        engine_two.dispose()
