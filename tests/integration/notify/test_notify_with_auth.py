"""notify with the real auth service: events from auth itself, recipients looked up over RPC."""

from __future__ import annotations

import re

import pytest
from nameko.standalone.events import event_dispatcher

from common.errors import PortalError
from common.events import declare_subscriptions
from services.auth.service import AuthService
from tests.support.smtp_sink import text_body
from tests.support.waiting import eventually
from tests.unit.notify import payloads

pytestmark = pytest.mark.integration

LINK = re.compile(r"http://portal\.test/reset-password#token=[A-Za-z0-9_\-]+")
PASSWORD = "Harbour-Lantern-97"


def _start_auth(container_factory):
    container = container_factory(AuthService)
    container.start()
    return container


def _new_company(rpc, password: str | None = None) -> dict:
    """A company; with `password` its contact is an active owner, without one `invited`."""
    payload = {
        "name": "Orbital Tooling",
        "contact_name": "Grace Hopper",
        "contact_email": payloads.unique_email("grace"),
    }
    if password is not None:
        payload["password"] = password
    return rpc.call("auth", "create_company", payload)


def test_events_published_while_notify_is_down_are_emailed_when_it_starts(
    config, container_factory, start_notify, sink, rpc, tables
) -> None:
    # producers declare notify's queues at their start: auth does so itself, and the
    # licensing service (not running here) is stood in for by declare_subscriptions
    _start_auth(container_factory)
    declare_subscriptions(source="licensing")
    company = _new_company(rpc)  # auth publishes company_created with a set-up request
    email = company["contact_email"]
    rpc.call("auth", "request_password_reset", {"login": email})
    events = payloads.licensing_events(company["customer_id"])
    dispatch = event_dispatcher()
    for event_type, payload in events.items():
        dispatch("licensing", event_type, payload)
    assert sink.messages(to=email) == []

    start_notify()

    expected = {
        "Welcome to License Portal",
        "Reset your License Portal password",
        "Your new CAD Pro license is ready",
        "Your CAD Pro license has been extended",
        "New activation on WS-042",
        "Your CAD Pro license expires in 7 days",
        f"Your CAD Pro license {events['license_suspended']['license_id']} is suspended",
        f"Your CAD Pro license {events['license_resumed']['license_id']} is active again",
        f"Modules of your CAD Pro license {events['license_features_changed']['license_id']}"
        " changed",
        "All 2 seats of CAD Pro are in use",  # the contact is an owner: on by default
    }
    eventually(lambda: {m["Subject"] for m in sink.messages(to=email)} == expected, timeout=15)
    by_subject = {m["Subject"]: m for m in sink.messages(to=email)}
    assert len(sink.messages(to=email)) == len(expected)
    # the licensing emails went to the contact that auth knows, greeting them by name
    activation = by_subject["New activation on WS-042"]
    assert activation["To"].addresses[0].display_name == "Grace Hopper"
    assert "Hello Grace Hopper," in text_body(activation)
    license_id = events["installation_activated"]["license"]["license_id"]
    assert f"http://portal.test/licenses/{license_id}" in text_body(activation)
    # the notices went to the users auth names for them: the contact (its address of record,
    # even before it set a password), each as a delivery of its own beside the event's row
    for kind in ("installation_activated", "license_expiring"):
        assert eventually(lambda k=kind: tables.emails_sent(events[k]["event_id"]))
        rows = tables.deliveries_of(events[kind]["event_id"])
        assert [(r.status, r.recipient) for r in rows] == [("done", None), ("sent", email)]
    # the links auth made at send time are the ones that arrive
    welcome = text_body(by_subject["Welcome to License Portal"])
    assert "http://portal.test/reset-password#token=" in welcome
    assert company["customer_id"] in welcome
    reset = text_body(by_subject["Reset your License Portal password"])
    assert "http://portal.test/reset-password#token=" in reset and "30 minutes" in reset


def test_an_unknown_customer_fails_with_a_clear_error(
    container_factory, start_notify, dispatch, rpc, tables
) -> None:
    _start_auth(container_factory)
    start_notify()
    payload = payloads.license_issued("C0000000")
    dispatch("licensing", "license_issued", payload)

    def finished():
        row = tables.delivery(payload["event_id"])
        return row if row is not None and row.status == "failed" else None

    row = eventually(finished)
    assert row.attempts == 1 and row.next_attempt_at is None
    assert "No company with customer ID C0000000 (company_not_found)" in row.last_error


def test_auth_down_is_retried_until_auth_answers(
    container_factory, start_notify, dispatch, sink, rpc, tables
) -> None:
    auth = _start_auth(container_factory)
    company = _new_company(rpc, PASSWORD)
    auth.stop()
    # a short RPC timeout: the lookup fails fast while auth is down
    start_notify(RPC_TIMEOUT=0.5)
    payload = payloads.license_expiring(company["customer_id"], days_left=1)
    dispatch("licensing", "license_expiring", payload)

    def retried():
        row = tables.delivery(payload["event_id"])
        return row if row is not None and row.last_error else None

    row = eventually(retried)
    assert row.status in ("pending", "sending")
    assert "auth answered service_unavailable" in row.last_error

    _start_auth(container_factory)
    message = sink.wait_for(
        lambda m: m["Subject"] == "Your CAD Pro license expires tomorrow",
        to=company["contact_email"],
        timeout=15,
    )
    assert "expires tomorrow" in text_body(message)
    assert eventually(lambda: tables.emails_sent(payload["event_id"]))


def test_the_link_is_made_at_send_time_works_once_and_is_stored_nowhere(
    container_factory, start_notify, sink, rpc, tables
) -> None:
    _start_auth(container_factory)
    start_notify()
    company = _new_company(rpc)
    email = company["contact_email"]
    welcome = sink.wait_for(lambda m: m["Subject"] == "Welcome to License Portal", to=email)
    link = LINK.search(text_body(welcome)).group(0)
    token = link.split("#token=", 1)[1]
    rpc.call("auth", "request_password_reset", {"login": email})
    reset = sink.wait_for(lambda m: "Reset" in m["Subject"], to=email, timeout=15)
    reset_token = LINK.search(text_body(reset)).group(0).split("#token=", 1)[1]
    assert reset_token != token

    # notify kept neither the link nor the token
    def sent() -> list:
        rows = [r for r in tables.deliveries() if r.recipient == email.lower()]
        return rows if len(rows) == 2 and {r.status for r in rows} == {"sent"} else []

    rows = eventually(sent)
    assert token not in repr(rows) and reset_token not in repr(rows)
    # the emailed link sets the password once; then the other link is void too
    confirm = {"token": token, "new_password": "Harbour-Lantern-97"}
    assert rpc.call("auth", "confirm_password_reset", confirm) is None
    with pytest.raises(PortalError) as caught:
        rpc.call("auth", "confirm_password_reset", {**confirm, "token": reset_token})
    assert caught.value.code == "invalid_token"
