"""billing's `payment_disputed` and `payment_dispute_closed` over the real bus and PostgreSQL,
with the real auth: the company's license is suspended while its payment is disputed and
resumed when the dispute is won; another company's license is left alone; redeliveries
change nothing twice (fixtures: conftest.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from nameko.extensions import DependencyProvider
from nameko.standalone.events import event_dispatcher
from sqlalchemy import create_engine, text

from common.events import declare_subscriptions
from common.rpc import standalone_client
from services.licensing.schemas import LicenseResumedEvent, LicenseSuspendedEvent
from services.licensing.service import LicensingService
from tests.integration.licensing.support import Rpc, issue, new_company, payload
from tests.support.bus import BusEvents, watch_events
from tests.support.waiting import eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

HANDLED: list[str] = []  # event_id of each dispute event a licensing worker finished


class DisputesHandled(DependencyProvider):
    """Records each dispute event a worker finished: a queue's depth does not count a
    message a worker holds, so a duplicate may still be running when it is 0."""

    def worker_result(self, worker_ctx, result=None, exc_info=None) -> None:
        name = worker_ctx.entrypoint.method_name
        if name in ("on_payment_disputed", "on_payment_dispute_closed") and exc_info is None:
            HANDLED.append(worker_ctx.args[0]["event_id"])


class WatchedLicensing(LicensingService):
    disputes_handled = DisputesHandled()


@pytest.fixture
def watched(config, auth, container_factory) -> Iterator[tuple[Rpc, BusEvents]]:
    """The only licensing instance, watched, and the events it publishes."""
    HANDLED.clear()
    container_factory(WatchedLicensing).start()
    with (
        standalone_client(timeout=15) as client,
        watch_events(config["AMQP_URI"], "licensing") as events,
    ):
        yield Rpc(client), events


def disputed(customer: str, license_id: str | None) -> dict:
    """A `payment_disputed` as billing publishes it."""
    return {
        "event_id": uuid.uuid4().hex,
        "occurred_at": "2026-12-03T08:00:00+00:00",
        "customer_id": customer,
        "receipt_number": f"R-2099-{uuid.uuid4().int % 10**6:06d}",
        "license_id": license_id,
        "amount": 4900,
        "currency": "EUR",
        "reason": "fraudulent",
        "product_name": "CAD Pro",
    }


def closed(opened: dict, status: str) -> dict:
    return {**opened, "event_id": uuid.uuid4().hex, "status": status}


def of(events: list[dict], license_id: str) -> list[dict]:
    return [event for event in events if event["license_id"] == license_id]


def test_a_dispute_suspends_the_companys_license_once_and_winning_it_resumes_it(
    config, watched
) -> None:
    rpc, bus_events = watched
    product = f"cad-{uuid.uuid4().hex[:8]}"
    rpc("create_product", {"code": product, "name": "CAD Pro"})
    company, stranger = new_company(rpc), new_company(rpc)
    license_id, password = issue(rpc, company, product)
    theirs, _ = issue(rpc, stranger, product)

    declare_subscriptions()
    dispatch = event_dispatcher()
    opened = disputed(company, license_id.lower())
    foreign = disputed(company, theirs)  # names another company's license
    sent = [opened, opened, {**opened, "event_id": uuid.uuid4().hex}, foreign]
    for message in sent:
        dispatch("billing", "payment_disputed", message)
    eventually(
        lambda: sorted(HANDLED) == sorted(m["event_id"] for m in sent),
        what="every delivery handled",
    )
    [suspended] = of(bus_events.wait_for("license_suspended"), license_id)
    LicenseSuspendedEvent().load(suspended)
    assert suspended["customer_id"] == company
    assert opened["receipt_number"] in suspended["reason"]
    license = rpc("get_license", license_id, company)
    assert (license["status"], license["suspension_cause"]) == ("suspended", "payment_disputed")
    [listed] = rpc("list_licenses", company)
    assert listed["suspension_reason"] == suspended["reason"]
    rpc.error("license_suspended", "activate", payload(license_id, password))
    assert rpc("get_license", theirs, stranger)["status"] == "active"

    won = closed(opened, "won")
    for message in (won, won, closed(foreign, "won")):
        dispatch("billing", "payment_dispute_closed", message)
    eventually(lambda: len(HANDLED) == len(sent) + 3, what="every closing handled")
    [resumed] = of(bus_events.wait_for("license_resumed"), license_id)
    LicenseResumedEvent().load(resumed)
    license = rpc("get_license", license_id, company)
    assert (license["status"], license["suspension_reason"], license["suspension_cause"]) == (
        "active",
        None,
        None,
    )
    rpc("activate", payload(license_id, password))
    # a marker published after every delivery was handled: a duplicate came before it
    rpc("suspend_license", theirs, "Marker.")
    bus_events.wait_until(lambda events: of(events.of("license_suspended"), theirs))
    assert of(bus_events.of("license_suspended"), license_id) == [suspended]
    assert bus_events.of("license_resumed") == [resumed]
    trail = rpc("list_audit_events", company, {"action": "license_suspended"})
    assert [(e["actor"]["type"], e["details"]["receipt_number"]) for e in trail] == [
        ("system", opened["receipt_number"])
    ]
    engine = create_engine(config["LICENSING_DATABASE_URL"])
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT receipt_number, license_id, status FROM payment_disputes "
                    "WHERE receipt_number IN (:a, :b) ORDER BY id"
                ),
                {"a": opened["receipt_number"], "b": foreign["receipt_number"]},
            ).all()
    finally:
        engine.dispose()
    assert [tuple(row) for row in rows] == [
        (opened["receipt_number"], license_id, "won"),
        (foreign["receipt_number"], None, "won"),
    ]


def test_a_dispute_lost_leaves_the_license_suspended_for_staff(watched) -> None:
    rpc, bus_events = watched
    product = f"cad-{uuid.uuid4().hex[:8]}"
    rpc("create_product", {"code": product, "name": "CAD Pro"})
    company = new_company(rpc)
    license_id, _ = issue(rpc, company, product)
    declare_subscriptions()
    dispatch = event_dispatcher()
    opened = disputed(company, license_id)
    dispatch("billing", "payment_disputed", opened)
    bus_events.wait_for("license_suspended")
    dispatch("billing", "payment_dispute_closed", closed(opened, "lost"))
    eventually(lambda: len(HANDLED) == 2, what="the closing handled")
    assert rpc("get_license", license_id, company)["suspension_cause"] == "payment_disputed"
    assert bus_events.of("license_resumed") == []
    assert rpc("resume_license", license_id)["status"] == "active"
