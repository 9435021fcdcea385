"""Licensing's audit trail on the real bus and PostgreSQL, with the real auth (fixtures:
conftest.py).

A portal user acts as the gateway makes them act: the actor rides the RPC's context data
(`{"actor": {"type": "user", …}}`). The trail is written in the transaction of each change:
a redelivered request writes nothing twice, and a crash between the commit and the
publication of the change's event loses neither the audit row nor the event (the relay
publishes it later).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from nameko.testing.services import replace_dependencies

from common import bus
from common.audit import encode_cursor
from common.rpc import standalone_client
from services.licensing.service import LicensingService
from tests.integration.licensing.support import Rpc, issue, new_company, payload, redeliver_as
from tests.support import infra
from tests.support.bus import watch_events
from tests.support.waiting import eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

STAFF = {"type": "staff"}


def audit_rows(sql, customer_id: str, action: str | None = None) -> list:
    rows = sql(
        "SELECT action, actor_type, actor_user_id, actor_email, target_id, details "
        "FROM audit_events WHERE customer_id = :c ORDER BY id",
        c=customer_id,
    )
    return [row for row in rows if action is None or row.action == action]


# --- who acted --------------------------------------------------------------------------------


def test_a_user_viewing_and_freeing_a_seat_is_in_the_trail_and_the_history(
    rpc, as_user, portal_user, sql, company, product, clock
) -> None:
    license_id, password = issue(rpc, company, product)  # staff's read: no trace
    rpc("activate", payload(license_id, password, "inst-1", "PC-1"))
    clock.advance(seconds=1)  # the instances' clock: the trail is newest first
    shown = as_user("get_license", license_id, company)
    clock.advance(seconds=1)
    assert shown["activation_password"] == password
    hidden = as_user("get_license", license_id, company, reveal_password=False)
    assert hidden["activation_password"] is None
    as_user("deactivate_installation", company, license_id, "inst-1", "portal")
    rows = audit_rows(sql, company)
    assert [(r.action, r.actor_type, r.actor_user_id) for r in rows] == [
        ("license_issued", "system", None),
        ("installation_activated", "product", None),
        ("activation_password_viewed", "user", "U-AAAA-BBBB"),
        ("installation_deactivated", "user", "U-AAAA-BBBB"),
    ]
    assert password not in json.dumps([r.details for r in rows])
    history = rpc("history", license_id, company)["events"]
    assert [(e["type"], e["actor"]) for e in history] == [
        ("deactivated", portal_user),
        ("activated", {"type": "product"}),
    ]
    # the trail as the gateway reads it
    events = as_user("list_audit_events", company, {"user_id": "U-AAAA-BBBB"})
    assert [e["action"] for e in events] == [
        "installation_deactivated",
        "activation_password_viewed",
    ]
    assert events[0]["actor"] == portal_user
    assert events[0]["target"] == {"type": "license", "id": license_id}


def test_staff_changes_name_staff(rpc, sql, company, product) -> None:
    with standalone_client(timeout=15, context_data={"actor": STAFF}) as client:
        staff = Rpc(client)
        license_id, _ = issue(staff, company, product, expires_at="2031-12-31")
        staff("suspend_license", license_id, "Payment disputed")
        staff("resume_license", license_id)
        staff("extend_license", license_id, "2032-12-31")
    rows = audit_rows(sql, company)
    assert [(r.action, r.actor_type) for r in rows] == [
        ("license_issued", "staff"),
        ("license_suspended", "staff"),
        ("license_resumed", "staff"),
        ("license_extended", "staff"),
    ]
    assert json.loads(rows[1].details) == {"reason": "Payment disputed"}


# --- once, and never without the change ------------------------------------------------------


def test_a_redelivered_request_writes_its_audit_row_once(
    config, rpc, licensing, portal_user, sql, company, product
) -> None:
    license_id, password = issue(rpc, company, product)
    replies = redeliver_as(
        config["AMQP_URI"],
        portal_user,
        "licensing",
        "rotate_activation_password",
        [license_id, company],
    )
    assert len(replies) == 3, replies
    assert len({reply["result"]["activation_password"] for reply in replies}) == 1
    [rotated] = audit_rows(sql, company, "activation_password_rotated")
    assert (rotated.actor_type, rotated.actor_email) == ("user", "x@y.test")
    views = redeliver_as(
        config["AMQP_URI"], portal_user, "licensing", "get_license", [license_id, company]
    )
    assert len(views) == 3 and {v["result"]["activation_password"] for v in views} == {
        replies[0]["result"]["activation_password"]
    }
    assert len(audit_rows(sql, company, "activation_password_viewed")) == 1


class BrokerAway:
    """The events dependency of an instance whose broker connection fails to publish (the
    process dies, or the broker goes away, between the commit and the publication)."""

    def __init__(self) -> None:
        self.tried: list[str] = []

    def __call__(self, event_type: str, payload: dict[str, Any]) -> dict[str, Any]:
        self.tried.append(event_type)
        raise ConnectionError("the broker went away after the commit")


def test_the_audit_trail_survives_a_crash_between_the_change_and_its_publication(
    config, auth, container_factory, another_licensing, clock, sql, portal_user
) -> None:
    broken = container_factory(LicensingService)
    publish = BrokerAway()
    replace_dependencies(broken, clock=clock, events=publish)
    broken.start()
    with standalone_client(timeout=15) as client:
        rpc = Rpc(client)
        company = new_company(rpc)
        product = f"cad-{uuid.uuid4().hex[:8]}"
        rpc("create_product", {"code": product, "name": "CAD Pro"})
        license_id, password = issue(rpc, company, product)
        rpc("activate", payload(license_id, password, "inst-9", "PC-9"))
    with standalone_client(timeout=15, context_data={"actor": portal_user}) as client:
        freed = Rpc(client)("deactivate_installation", company, license_id, "inst-9", "portal")
    assert freed["status"] == "deactivated"  # committed: the caller hears of its success
    assert "installation_deactivated" in publish.tried
    broken.stop()

    # both the change's audit row and its event are there, the event not yet published
    [row] = audit_rows(sql, company, "installation_deactivated")
    assert (row.actor_type, row.actor_user_id) == ("user", "U-AAAA-BBBB")
    staged = sql(
        "SELECT event_id, published_at FROM event_outbox WHERE event_type = :t "
        "AND payload LIKE :license",
        t="installation_deactivated",
        license=f"%{license_id}%",
    )
    assert len(staged) == 1 and staged[0].published_at is None
    # the relay leaves young rows to their request: make this one old enough
    sql(
        "UPDATE event_outbox SET created_at = created_at - interval '1 minute' "
        "WHERE published_at IS NULL"
    )

    with watch_events(config["AMQP_URI"], "licensing") as events:
        another_licensing()  # a healthy instance: its relay publishes what was left
        events.wait_until(
            lambda seen: any(
                e["license"]["license_id"] == license_id
                for e in seen.of("installation_deactivated")
            ),
            timeout=30,
        )
        [event] = [
            e
            for e in events.of("installation_deactivated")
            if e["license"]["license_id"] == license_id
        ]
    assert event["event_id"] == staged[0].event_id
    assert "actor" not in event  # events never carry who acted
    eventually(
        lambda: (
            sql("SELECT published_at FROM event_outbox WHERE event_id = :e", e=event["event_id"])[
                0
            ].published_at
            is not None
        )
    )
    assert len(audit_rows(sql, company, "installation_deactivated")) == 1


# --- reading the trail --------------------------------------------------------------------------


def test_pages_with_before_and_the_filters(rpc, as_user, company, product, clock) -> None:
    license_id, _ = issue(rpc, company, product)
    for _ in range(6):
        clock.advance(seconds=1)  # the instances' clock: one view a second
        as_user("get_license", license_id, company)
    everything: list[dict] = []
    before = None
    while True:
        page = as_user("list_audit_events", company, {"limit": 3, "before": before})
        everything.extend(page)
        if len(page) < 3:
            break
        before = encode_cursor(datetime.fromisoformat(page[-1]["at"]), page[-1]["event_id"])
    assert [e["action"] for e in everything] == ["activation_password_viewed"] * 6 + [
        "license_issued"
    ]
    assert len({e["event_id"] for e in everything}) == 7
    viewed = as_user("list_audit_events", company, {"action": "activation_password_viewed"})
    assert len(viewed) == 6
    assert as_user("list_audit_events", company, {"user_id": "U-ZZZZ-ZZZZ"}) == []
    last = clock.now()
    assert len(as_user("list_audit_events", company, {"since": last.isoformat()})) == 1
    assert len(as_user("list_audit_events", company, {"until": last.isoformat()})) == 6
    window = {"since": (last - timedelta(seconds=2)).isoformat(), "until": last.isoformat()}
    assert len(as_user("list_audit_events", company, window)) == 2
    error = as_user.error("validation_error", "list_audit_events", company, {"before": "x"})
    assert "before" in error.details["fields"]
    assert as_user("list_audit_events", new_company(rpc), {}) == []


# --- callers the broker verified ---------------------------------------------------------------


@pytest.fixture
def bus_users(config, tmp_path) -> Iterator[dict]:
    """Per-kind bus users of this test alone (`portalctl bus grant`), deleted afterwards."""
    prefix = f"lp-{infra.RUN_ID}-{uuid.uuid4().hex[:6]}-"
    store = tmp_path / bus.CREDENTIALS_FILE
    yield bus.grant(config["AMQP_URI"], prefix=prefix, api_uri=infra.RABBIT_API, store=store)
    bus.revoke(config["AMQP_URI"], prefix=prefix, api_uri=infra.RABBIT_API, store=store)


def test_staff_is_staff_whatever_it_writes_and_the_gateway_is_never_staff(
    rpc, bus_users, portal_user, sql, company, product
) -> None:
    license_id, password = issue(rpc, company, product, seats=2)
    rpc("activate", payload(license_id, password, "inst-1"))
    rpc("activate", payload(license_id, password, "inst-2"))
    staff_uri = bus_users["staff"]["amqp_uri"]
    with standalone_client(
        timeout=15, uri=staff_uri, context_data={"actor": portal_user}
    ) as client:
        Rpc(client)("suspend_license", license_id, "Chargeback")
    gateway_uri = bus_users["gateway"]["amqp_uri"]
    with standalone_client(timeout=15, uri=gateway_uri, context_data={"actor": STAFF}) as client:
        Rpc(client)("deactivate_installation", company, license_id, "inst-1", "portal")
    with standalone_client(
        timeout=15, uri=gateway_uri, context_data={"actor": portal_user}
    ) as client:
        Rpc(client)("deactivate_installation", company, license_id, "inst-2", "portal")
    rows = audit_rows(sql, company)
    assert [(r.action, r.actor_type, r.actor_user_id) for r in rows[-3:]] == [
        ("license_suspended", "staff", None),
        ("installation_deactivated", "user", None),  # claimed staff: only what source says
        ("installation_deactivated", "user", "U-AAAA-BBBB"),
    ]
