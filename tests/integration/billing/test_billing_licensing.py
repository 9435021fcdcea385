"""billing and the real licensing service on the real bus: a paid purchase issues a license,
billing learns it from `license_issued` (it never asks licensing), a paid renewal extends
it, and a redelivered `payment_succeeded` changes nothing twice."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from nameko.extensions import DependencyProvider
from nameko.rpc import Rpc
from nameko.standalone.events import event_dispatcher
from sqlalchemy import create_engine, text

from common.rpc import standalone_client
from services.billing.service import BillingService
from services.licensing.service import LicensingService
from tests.integration.billing.conftest import OK_CARD, QUIET
from tests.support.waiting import eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

CALLS_FROM_BILLING: list[str] = []
PAYMENTS_HANDLED: list[str] = []  # event_id of each payment_succeeded licensing handled and acked


class CallsFromBilling(DependencyProvider):
    """Records every RPC method of licensing that a billing worker called."""

    def worker_setup(self, worker_ctx) -> None:
        parent = worker_ctx.immediate_parent_call_id or ""
        if isinstance(worker_ctx.entrypoint, Rpc) and parent.startswith("billing."):
            CALLS_FROM_BILLING.append(worker_ctx.entrypoint.method_name)


class PaymentsHandled(DependencyProvider):
    """Records each `payment_succeeded` a licensing worker finished, after nameko acked it.

    A queue's depth counts only messages not yet delivered: licensing's consumer takes
    several at once (prefetch) and runs them side by side, so an empty queue does not mean
    a redelivered payment is done; this does. A failed try is requeued, not recorded.
    """

    def worker_result(self, worker_ctx, result=None, exc_info=None) -> None:
        if worker_ctx.entrypoint.method_name == "on_payment_succeeded" and exc_info is None:
            PAYMENTS_HANDLED.append(worker_ctx.args[0]["event_id"])


class WatchedLicensing(LicensingService):
    """The real licensing service, watched."""

    calls_from_billing = CallsFromBilling()
    payments_handled = PaymentsHandled()


@pytest.fixture
def suite(config, container_factory):
    """Real billing and licensing, and a product with a monthly plan."""
    CALLS_FROM_BILLING.clear()
    PAYMENTS_HANDLED.clear()
    for service in (WatchedLicensing, BillingService):
        container = container_factory(service, QUIET)
        container.start()
    with standalone_client(timeout=10) as client:
        product = f"cad{uuid.uuid4().hex[:8]}"
        client.call("licensing", "create_product", {"code": product, "name": "CAD Pro"})
        plan = client.call(
            "billing",
            "create_plan",
            {
                "code": f"plan-{product}",
                "product_code": product,
                "amount": 4900,
                "currency": "EUR",
                "interval": "month",
            },
        )
        yield client, product, plan


def licensing_rows(config, statement: str, **params: Any) -> list:
    engine = create_engine(config["LICENSING_DATABASE_URL"])
    try:
        with engine.connect() as connection:
            return connection.execute(text(statement), params).all()
    finally:
        engine.dispose()


def payment_rows(config, receipt: str) -> list:
    return licensing_rows(
        config, "SELECT status, license_id FROM payment_events WHERE receipt_number = :r", r=receipt
    )


def test_a_purchase_issues_a_license_and_a_renewal_extends_it(suite, config) -> None:
    client, product, plan = suite
    who = "C" + uuid.uuid4().hex[:7].upper()
    body = {"plan": plan["code"], "seats": 3, "card": OK_CARD}
    bought = client.call("billing", "purchase", who, body)
    receipt = bought["payment"]["receipt_number"]
    license = eventually(lambda: client.call("licensing", "license_for_payment", receipt, who))
    assert (license["product"]["code"], license["seats"]) == (product, 3)
    assert license["expires_at"] == bought["payment"]["period_end"]
    assert client.call("licensing", "license_for_payment", receipt, "C0000000") is None
    renewed = client.call("billing", "purchase", who, {**body, "license_id": license["license_id"]})
    assert renewed["payment"]["period_start"] == license["expires_at"]
    receipt2 = renewed["payment"]["receipt_number"]
    extended = eventually(lambda: client.call("licensing", "license_for_payment", receipt2, who))
    assert extended["license_id"] == license["license_id"]
    assert extended["expires_at"] == renewed["payment"]["period_end"]
    # billing learns the license of the purchase and shows it
    listed = client.call("billing", "list_payments", who)
    assert {p["license_id"] for p in listed} == {license["license_id"]}
    # the plan's product, each purchase's product, the renewal's license, and nothing else
    assert CALLS_FROM_BILLING == ["get_product", "get_product", "get_product", "get_license"]


def test_billing_learns_the_license_from_the_event_without_asking_licensing(suite, config) -> None:
    client, _, plan = suite
    who = "C" + uuid.uuid4().hex[:7].upper()
    bought = client.call(
        "billing", "purchase", who, {"plan": plan["code"], "seats": 2, "card": OK_CARD}
    )
    receipt = bought["payment"]["receipt_number"]

    def known() -> str | None:
        return client.call("billing", "get_receipt", receipt, who)["license_id"]

    license_id = eventually(known)
    CALLS_FROM_BILLING.clear()  # the plan and the purchase asked for their product
    [applied] = payment_rows(config, receipt)
    assert applied == ("applied", license_id)
    [listed] = client.call("billing", "list_payments", who)
    [recurring] = client.call("billing", "list_recurring_payments", who)
    assert listed["license_id"] == recurring["license_id"] == license_id
    # the renewal pass charges it without asking licensing which license it is
    due = datetime.fromisoformat(recurring["next_charge_at"])
    client.call("billing", "run_renewals", (due + timedelta(minutes=1)).isoformat())
    renewal, _ = client.call("billing", "list_payments", who)
    assert (renewal["kind"], renewal["license_id"]) == ("renewal", license_id)
    extended = eventually(
        lambda: client.call("licensing", "license_for_payment", renewal["receipt_number"], who)
    )
    assert extended["expires_at"] == renewal["period_end"]
    assert CALLS_FROM_BILLING == []


def test_a_redelivered_payment_event_issues_or_extends_once(suite, config) -> None:
    client, product, _ = suite
    who = "C" + uuid.uuid4().hex[:7].upper()
    receipt = f"R-2099-{uuid.uuid4().int % 10**6:06d}"
    period_end = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
    event = {
        "event_id": uuid.uuid4().hex,
        "occurred_at": datetime.now(UTC).isoformat(),
        "customer_id": who,
        "payment": {"receipt_number": receipt, "amount": 4900, "currency": "EUR"},
        "purchase": {
            "kind": "new",
            "plan": "p",
            "product_code": product,
            "seats": 1,
            "period_start": datetime.now(UTC).isoformat(),
            "period_end": period_end.isoformat(),
            "license_id": None,
        },
    }
    dispatched = event_dispatcher()
    sent: list[str] = []

    def dispatch(payload: dict[str, Any]) -> None:
        dispatched("billing", "payment_succeeded", payload)
        sent.append(payload["event_id"])

    def settled() -> None:
        """Every payment sent so far is handled and acked: a duplicate may finish last."""
        eventually(lambda: sorted(PAYMENTS_HANDLED) == sorted(sent), what="all handled")

    poison = {"event_id": uuid.uuid4().hex, "customer_id": who, "payment": "not an object"}
    for payload in (poison, event, event, {**event}):
        dispatch(payload)
    license = eventually(lambda: client.call("licensing", "license_for_payment", receipt, who))
    settled()
    assert len(client.call("licensing", "list_licenses", who)) == 1
    assert payment_rows(config, receipt) == [("applied", license["license_id"])]
    # the same renewal delivered twice extends once
    renewal_end = period_end + timedelta(days=30)
    renewal = {
        **event,
        "event_id": uuid.uuid4().hex,
        "payment": {**event["payment"], "receipt_number": receipt[:-1] + "x"},
        "purchase": {
            **event["purchase"],
            "kind": "renewal",
            "license_id": license["license_id"],
            "period_end": renewal_end.isoformat(),
        },
    }
    dispatch(renewal)
    dispatch(renewal)
    extended = eventually(
        lambda: client.call("licensing", "license_for_payment", receipt[:-1] + "x", who)
    )
    settled()
    assert datetime.fromisoformat(extended["expires_at"]) == renewal_end
    [current] = client.call("licensing", "list_licenses", who)
    assert datetime.fromisoformat(current["expires_at"]) == renewal_end
    parked = licensing_rows(
        config, "SELECT status FROM payment_events WHERE event_id = :e", e=poison["event_id"]
    )
    assert parked == [("parked",)]


def test_a_purchase_gives_the_license_its_plans_features_and_a_renewal_adds_them(
    suite, config
) -> None:
    client, product, _ = suite
    for code, name in (("steel", "Steel design"), ("dynamics", "Dynamic analysis")):
        client.call("licensing", "add_product_feature", product, {"code": code, "name": name})
    plan = {"product_code": product, "amount": 4900, "currency": "EUR", "interval": "month"}
    steel = client.call(
        "billing", "create_plan", {**plan, "code": f"s-{product}", "features": ["steel"]}
    )
    both = client.call(
        "billing",
        "create_plan",
        {**plan, "code": f"b-{product}", "features": ["dynamics", "steel"]},
    )
    assert (steel["features"], both["features"]) == (["steel"], ["dynamics", "steel"])
    who = "C" + uuid.uuid4().hex[:7].upper()
    body = {"plan": steel["code"], "seats": 1, "card": OK_CARD}
    receipt = client.call("billing", "purchase", who, body)["payment"]["receipt_number"]
    license = eventually(lambda: client.call("licensing", "license_for_payment", receipt, who))
    assert license["features"] == [{"code": "steel", "name": "Steel design"}]
    renewal = {**body, "plan": both["code"], "license_id": license["license_id"]}
    receipt2 = client.call("billing", "purchase", who, renewal)["payment"]["receipt_number"]
    extended = eventually(lambda: client.call("licensing", "license_for_payment", receipt2, who))
    assert [item["code"] for item in extended["features"]] == ["dynamics", "steel"]
