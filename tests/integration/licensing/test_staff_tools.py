"""Staff's tools and money integrity over the real bus and PostgreSQL, with the real auth.

Guardrails with and without `force`, identifiers in any spelling, suspension reasons and
their events, `payment_not_applied` for a payment that cannot be delivered, and requests
delivered twice (fixtures: conftest.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from nameko.extensions import DependencyProvider
from nameko.standalone.events import event_dispatcher
from sqlalchemy import create_engine, text

from common.errors import PortalError
from common.rpc import standalone_client
from services.licensing.schemas import (
    LicenseResumedEvent,
    LicenseSuspendedEvent,
    PaymentNotAppliedEvent,
)
from services.licensing.service import LicensingService
from tests.integration.licensing.support import (
    COMPANY_PASSWORD,
    Rpc,
    issue,
    new_company,
    payload,
)
from tests.support.bus import BusEvents, deliver_again, watch_events
from tests.support.waiting import eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

PAST = "2020-01-01"


def licensing_rows(config: dict, sql: str, **params: Any) -> list[tuple]:
    engine = create_engine(config["LICENSING_DATABASE_URL"])
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text(sql), params)]
    finally:
        engine.dispose()


# --- guardrails ---------------------------------------------------------------------------


def test_each_issue_guardrail_with_and_without_force(rpc, company, product) -> None:
    body = {"customer_id": company, "product": product, "seats": 1, "expires_at": PAST}
    error = rpc.error("expires_in_past", "issue_license", body)
    assert error.details["expires_at"] == "2020-01-01T23:59:59+00:00"
    assert rpc("list_licenses", company) == []
    expired = rpc("issue_license", {**body, "force": True})
    assert expired["status"] == "expired"

    rpc("archive_product", product)
    fresh = {**body, "expires_at": None}
    rpc.error("product_archived", "issue_license", fresh)
    assert rpc("issue_license", {**fresh, "force": True})["status"] == "active"
    rpc.error("company_not_found", "issue_license", {**fresh, "customer_id": "C0000000"})
    assert len(rpc("list_licenses", company)) == 2


def test_each_extend_guardrail_with_and_without_force(rpc, company, product, bus_events) -> None:
    perpetual, _ = issue(rpc, company, product)
    rpc.error("license_is_perpetual", "extend_license", perpetual, "2030-01-01")
    assert rpc("extend_license", perpetual, "2030-01-01", True)["expires_at"].startswith("2030")
    dated, _ = issue(rpc, company, product, expires_at="2031-12-31")
    error = rpc.error("extension_shortens", "extend_license", dated, "2031-06-30")
    assert error.details["requested"] == "2031-06-30T23:59:59+00:00"
    rpc.error("extension_shortens", "extend_license", dated, PAST)
    shorter = rpc("extend_license", dated, "2031-06-30", force=True)
    assert shorter["expires_at"] == "2031-06-30T23:59:59+00:00"
    extended = bus_events.wait_for("license_extended", count=2)
    assert [e["license"]["license_id"] for e in extended] == [perpetual, dated]


# --- identifiers --------------------------------------------------------------------------


def test_every_spelling_of_an_id_reaches_the_same_license(rpc, company, bus_events) -> None:
    code = f"CAD-{uuid.uuid4().hex[:6].upper()}"
    created = rpc("create_product", {"code": code, "name": "CAD Pro"})
    assert created == {"code": code.lower(), "name": "CAD Pro", "active": True, "features": []}
    assert rpc("get_product", f" {code} ") == created
    license = rpc(
        "issue_license", {"customer_id": f" {company.lower()} ", "product": code, "seats": 2}
    )
    license_id = license["license_id"]
    assert (license["customer_id"], license["product"]["code"]) == (company, code.lower())
    [issued] = bus_events.wait_for("license_issued")
    assert issued["customer_id"] == company
    for lid, cid in [
        (license_id, company),
        (license_id.lower(), company.lower()),
        (f"  {license_id.lower()}", f"{company}\n"),
    ]:
        assert rpc("get_license", lid, cid)["license_id"] == license_id
        assert [item["license_id"] for item in rpc("list_licenses", cid)] == [license_id]
    password = rpc("rotate_activation_password", license_id.lower(), company.lower())
    rpc("activate", payload(license_id.lower(), password["activation_password"]))
    rpc("activate", payload(f" {license_id} ", COMPANY_PASSWORD, "inst-2"))
    assert len(rpc("list_installations", license_id.lower(), company.lower())) == 2
    gone = rpc("deactivate_installation", company.lower(), license_id.lower(), "inst-2")
    assert gone["status"] == "deactivated"
    stranger = new_company(rpc)
    rpc.error("license_not_found", "get_license", license_id.lower(), stranger.lower())


# --- suspension ---------------------------------------------------------------------------


def test_a_suspension_reason_is_shown_and_sent(rpc, company, product, bus_events) -> None:
    license_id, password = issue(rpc, company, product)
    suspended = rpc("suspend_license", license_id.lower(), "Chargeback on your last payment.")
    assert suspended["suspension_reason"] == "Chargeback on your last payment."
    assert rpc("get_license", license_id, company)["suspension_reason"] == (
        "Chargeback on your last payment."
    )
    [listed] = rpc("list_licenses", company)
    assert (listed["status"], listed["suspension_reason"]) == (
        "suspended",
        "Chargeback on your last payment.",
    )
    rpc.error("license_suspended", "activate", payload(license_id, password))
    [event] = bus_events.wait_for("license_suspended")
    LicenseSuspendedEvent().load(event)
    assert (event["license_id"], event["customer_id"], event["reason"]) == (
        license_id,
        company,
        "Chargeback on your last payment.",
    )
    assert event["product"] == {"code": product, "name": "CAD Pro"}
    resumed = rpc("resume_license", license_id)
    assert (resumed["status"], resumed["suspension_reason"]) == ("active", None)
    [event] = bus_events.wait_for("license_resumed")
    LicenseResumedEvent().load(event)
    assert (event["license_id"], event["customer_id"]) == (license_id, company)
    rpc("activate", payload(license_id, password))
    rpc.error("validation_error", "suspend_license", license_id, "x" * 501)


# --- payments that cannot be delivered ------------------------------------------------------

PAYMENTS_HANDLED: list[str] = []  # event_id of each payment_succeeded licensing finished


class PaymentsHandled(DependencyProvider):
    """Records each `payment_succeeded` a licensing worker finished: a queue's depth does
    not count a message a worker holds, so a duplicate may still be running when it is 0."""

    def worker_result(self, worker_ctx, result=None, exc_info=None) -> None:
        if worker_ctx.entrypoint.method_name == "on_payment_succeeded" and exc_info is None:
            PAYMENTS_HANDLED.append(worker_ctx.args[0]["event_id"])


class WatchedLicensing(LicensingService):
    payments_handled = PaymentsHandled()


@pytest.fixture
def watched(config, auth, container_factory) -> Iterator[tuple[Rpc, BusEvents]]:
    """The only licensing instance, watched, and the events it publishes."""
    PAYMENTS_HANDLED.clear()
    container_factory(WatchedLicensing).start()
    with (
        standalone_client(timeout=15) as client,
        watch_events(config["AMQP_URI"], "licensing") as events,
    ):
        yield Rpc(client), events


def paid(customer: str, product: str, kind: str = "new", license_id: str | None = None) -> dict:
    """A `payment_succeeded` as billing publishes it."""
    now = datetime.now(UTC).replace(microsecond=0)
    return {
        "event_id": uuid.uuid4().hex,
        "occurred_at": now.isoformat(),
        "customer_id": customer,
        "payment": {
            "receipt_number": f"R-2099-{uuid.uuid4().int % 10**6:06d}",
            "amount": 4900,
            "currency": "EUR",
        },
        "purchase": {
            "kind": kind,
            "plan": "monthly",
            "product_code": product,
            "seats": 1,
            "period_start": now.isoformat(),
            "period_end": (now + timedelta(days=30)).isoformat(),
            "license_id": license_id,
        },
    }


def test_a_product_archived_before_the_payment_is_applied_is_refunded_once(config, watched) -> None:
    rpc, bus_events = watched
    product = f"cad-{uuid.uuid4().hex[:8]}"
    rpc("create_product", {"code": product, "name": "CAD Pro"})
    company = new_company(rpc)
    soon = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    existing, _ = issue(rpc, company, product.upper(), expires_at=soon)
    # the customer buys; staff archive the product before the payment event is applied
    event = paid(company, product)
    rpc("archive_product", product)
    renewal = paid(company.lower(), product, "renewal", existing.lower())
    sent = [event, event, {**event, "event_id": uuid.uuid4().hex}, renewal]
    dispatch = event_dispatcher()
    for message in sent:
        dispatch("billing", "payment_succeeded", message)
    eventually(
        lambda: sorted(PAYMENTS_HANDLED) == sorted(m["event_id"] for m in sent),
        what="every delivery handled",
    )
    [told] = bus_events.wait_for("payment_not_applied")
    PaymentNotAppliedEvent().load(told)
    assert told == {
        **told,
        "receipt_number": event["payment"]["receipt_number"],
        "customer_id": company,
        "reason": "product_archived",
    }
    # a sentinel published after every delivery was handled: a duplicate came before it
    sentinel = paid(company, "no-such-product")
    dispatch("billing", "payment_succeeded", sentinel)
    bus_events.wait_until(lambda events: len(events.of("payment_not_applied")) == 2)
    assert [e["reason"] for e in bus_events.of("payment_not_applied")] == [
        "product_archived",
        "product_not_found",
    ]
    rows = licensing_rows(
        config,
        "SELECT status, error FROM payment_events WHERE receipt_number = :r",
        r=event["payment"]["receipt_number"],
    )
    assert rows == [("not_applied", "product_archived: " + told["message"])]
    assert rpc("license_for_payment", event["payment"]["receipt_number"], company) is None
    # the renewal of a license bought before goes on (an archived product's licenses work)
    extended = rpc("license_for_payment", renewal["payment"]["receipt_number"], company)
    assert extended["license_id"] == existing
    assert extended["expires_at"] == renewal["purchase"]["period_end"]
    assert [item["license_id"] for item in rpc("list_licenses", company)] == [existing]


# --- requests delivered twice -------------------------------------------------------------


def test_a_redelivered_rotation_keeps_the_password_the_user_was_shown(
    config, rpc, company, product
) -> None:
    license_id, old = issue(rpc, company, product)
    replies = deliver_again(
        config["AMQP_URI"], "licensing", "rotate_activation_password", [license_id, company], 3
    )
    passwords = {reply["result"]["activation_password"] for reply in replies}
    assert len(replies) == 3 and len(passwords) == 1, replies
    [shown] = passwords
    assert shown != old
    assert rpc("get_license", license_id, company)["activation_password"] == shown
    rpc("activate", payload(license_id, shown))
    rpc.error("invalid_credentials", "activate", payload(license_id, old, "inst-2"))


def keyed(key: str, method: str, *args: Any) -> Any:
    """One run of a client (portalctl, the gateway) whose request key is `key`: run again
    with the same key, its calls carry the same keys."""
    with standalone_client(timeout=15, context_data={"request_key": key}) as client:
        return Rpc(client)(method, *args)


def test_one_request_key_is_one_request(config, licensing, company, product) -> None:
    key = f"portalctl-{uuid.uuid4().hex}"
    body = {"customer_id": company, "product": product, "seats": 2}
    first = keyed(key, "issue_license", body)
    assert keyed(key, "issue_license", {**body, "customer_id": company.lower()}) == first
    with pytest.raises(PortalError) as reused:
        keyed(key, "issue_license", {**body, "seats": 3})
    assert reused.value.code == "idempotency_key_reused"
    assert reused.value.details["operation"] == "licensing.issue_license"
    suspended = keyed(key, "suspend_license", first["license_id"], "why")  # another operation
    assert keyed(key, "suspend_license", first["license_id"].lower(), "why") == suspended
    with standalone_client(timeout=15) as client:
        assert len(Rpc(client)("list_licenses", company)) == 1
    rows = licensing_rows(
        config,
        "SELECT scope, operation FROM handled_requests WHERE key LIKE :k ORDER BY id",
        k=key + "%",
    )
    assert rows == [("staff", "licensing.issue_license"), ("staff", "licensing.suspend_license")]
