"""Team accounts' emails with the real auth service: the invitation whose link auth makes at
send time, the emails to the user concerned, and the notices that go to each user who has
them on (`auth.notice_recipients`), one message per recipient."""

from __future__ import annotations

import re
from email.message import EmailMessage

import pytest

from services.auth.service import AuthService
from tests.support.smtp_sink import html_body, text_body
from tests.support.waiting import eventually
from tests.unit.notify import payloads

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

ACCEPT = re.compile(r"http://portal\.test/accept-invitation#token=[A-Za-z0-9_\-]+")
PASSWORD = "Harbour-Lantern-97"


def _to(message: EmailMessage) -> str:
    return message["To"].addresses[0].addr_spec


@pytest.fixture
def auth(config, container_factory):
    container = container_factory(AuthService)
    container.start()
    return container


@pytest.fixture
def company(auth, rpc) -> dict:
    """A company whose contact has set the password: an active owner, every notice on."""
    return rpc.call(
        "auth",
        "create_company",
        {
            "name": "Orbital Tooling",
            "contact_name": "Grace Hopper",
            "contact_email": payloads.unique_email("grace"),
            "password": PASSWORD,
        },
    )


def _invite(rpc, sink, customer_id: str, role: str, name: str) -> tuple[dict, EmailMessage]:
    email = payloads.unique_email(role)
    user = rpc.call(
        "auth", "invite_user", customer_id, {"email": email, "name": name, "role": role}
    )
    invitation = sink.wait_for(lambda m: "invited you" in m["Subject"], to=email, timeout=15)
    return user, invitation


def _join(rpc, sink, customer_id: str, role: str, name: str) -> dict:
    """Invite a user and accept the emailed invitation: an active user of `role`."""
    user, invitation = _invite(rpc, sink, customer_id, role, name)
    token = ACCEPT.search(text_body(invitation)).group(0).split("#token=", 1)[1]
    assert rpc.call("auth", "accept_invitation", {"token": token, "password": PASSWORD}) is None
    return user


def test_the_invitee_gets_a_link_that_accepts_the_invitation(
    company, start_notify, sink, rpc, tables
) -> None:
    start_notify()
    user, invitation = _invite(rpc, sink, company["customer_id"], "billing", "Lin Wu")
    assert _to(invitation) == user["email"]
    body = text_body(invitation)
    assert "invited you to Orbital Tooling's license portal as Billing." in body
    assert "Hello Lin Wu," in body
    # the link auth made at send time, valid 7 days, and until when
    link = ACCEPT.search(body).group(0)
    assert f'href="{link}"' in html_body(invitation)
    assert "This link is valid for 7 days (until " in body
    assert eventually(lambda: tables.emails_sent(invitation_event(tables, user["email"])))
    stored = [r for r in tables.deliveries() if r.recipient == user["email"]]
    assert link.split("#token=", 1)[1] not in repr(stored)  # the token is stored nowhere

    token = link.split("#token=", 1)[1]
    assert rpc.call("auth", "accept_invitation", {"token": token, "password": PASSWORD}) is None
    session = rpc.call("auth", "login", {"login": user["email"], "password": PASSWORD})
    assert session["user"]["role"] == "billing"


def invitation_event(tables, email: str) -> str:
    (row,) = [r for r in tables.deliveries() if r.recipient == email and r.kind == "user_invited"]
    return row.event_id


def test_a_role_change_and_a_disabled_access_are_emailed_to_the_user(
    company, start_notify, sink, rpc
) -> None:
    start_notify()
    customer_id = company["customer_id"]
    user = _join(rpc, sink, customer_id, "viewer", "Lin Wu")
    rpc.call("auth", "update_user", customer_id, user["user_id"], {"role": "license_admin"})
    changed = sink.wait_for(lambda m: "role" in m["Subject"], to=user["email"], timeout=15)
    assert changed["Subject"] == "Your role at Orbital Tooling is now License admin"
    assert "from Viewer to License admin" in text_body(changed)
    assert "As License admin you can view licenses and their activation passwords" in (
        text_body(changed)
    )

    rpc.call("auth", "disable_user", customer_id, user["user_id"])
    disabled = sink.wait_for(lambda m: "disabled" in m["Subject"], to=user["email"], timeout=15)
    assert disabled["Subject"] == "Your access to Orbital Tooling's license portal was disabled"
    assert "can no longer sign in" in text_body(disabled)
    # the contact was not copied on either
    assert [m["Subject"] for m in sink.messages(to=company["contact_email"])] == [
        "Welcome to License Portal"
    ]


def test_a_users_password_reset_is_emailed_to_that_user(company, start_notify, sink, rpc):
    start_notify()
    user = _join(rpc, sink, company["customer_id"], "billing", "Lin Wu")
    rpc.call("auth", "request_password_reset", {"login": user["email"].upper()})
    reset = sink.wait_for(lambda m: "Reset" in m["Subject"], to=user["email"], timeout=15)
    assert "Hello Lin Wu," in text_body(reset)
    assert "http://portal.test/reset-password#token=" in text_body(reset)
    assert not [m for m in sink.messages(to=company["contact_email"]) if "Reset" in m["Subject"]]


def test_notices_go_to_each_user_who_has_them_on(
    company, start_notify, dispatch, sink, rpc, tables
) -> None:
    start_notify()
    customer_id = company["customer_id"]
    contact = company["contact_email"]
    admin = _join(rpc, sink, customer_id, "license_admin", "Lin Wu")
    billing = _join(rpc, sink, customer_id, "billing", "Bo Chen")
    viewer = _join(rpc, sink, customer_id, "viewer", "Vi Park")  # every notice off by default

    activation = payloads.installation_activated(customer_id, machine_name="LAB-9")
    dispatch("licensing", "installation_activated", activation)
    receipt = payloads.billing_events(customer_id)["payment_succeeded"]
    dispatch("billing", "payment_succeeded", receipt)

    def subjects(email: str) -> set[str]:
        return {m["Subject"] for m in sink.messages(to=email)}

    eventually(lambda: "New activation on LAB-9" in subjects(admin["email"]), timeout=15)
    eventually(lambda: "Your receipt R-2026-000123" in subjects(billing["email"]), timeout=15)
    eventually(lambda: tables.emails_sent(activation["event_id"]))
    eventually(lambda: tables.emails_sent(receipt["event_id"]))
    # defaults: owner all four; license_admin the license notices; billing the billing ones
    assert {"New activation on LAB-9", "Your receipt R-2026-000123"} <= subjects(contact)
    assert "Your receipt R-2026-000123" not in subjects(admin["email"])
    assert "New activation on LAB-9" not in subjects(billing["email"])
    assert all("invited you" in subject for subject in subjects(viewer["email"]))

    # one message per recipient, each greeting its own user, with its own Message-ID
    [to_admin] = [m for m in sink.messages(to=admin["email"]) if "LAB-9" in m["Subject"]]
    [to_contact] = [m for m in sink.messages(to=contact) if "LAB-9" in m["Subject"]]
    assert "Hello Lin Wu," in text_body(to_admin)
    assert "Hello Grace Hopper," in text_body(to_contact)
    assert to_admin["Message-ID"] != to_contact["Message-ID"]
    license_id = activation["license"]["license_id"]
    assert f"http://portal.test/licenses/{license_id}" in text_body(to_admin)
    rows = tables.deliveries_of(activation["event_id"])
    assert [r.status for r in rows] == ["done", "sent", "sent"]
    assert {r.recipient for r in rows[1:]} == {contact.lower(), admin["email"].lower()}

    # the license admin turns the notice off: the next activation reaches only the contact
    rpc.call(
        "auth",
        "update_notification_preferences",
        customer_id,
        admin["user_id"],
        {"preferences": {"installation_activated": False}},
    )
    again = payloads.installation_activated(customer_id, machine_name="LAB-10")
    dispatch("licensing", "installation_activated", again)
    eventually(lambda: "New activation on LAB-10" in subjects(contact), timeout=15)
    eventually(lambda: tables.emails_sent(again["event_id"]))
    assert "New activation on LAB-10" not in subjects(admin["email"])
    assert len(tables.deliveries_of(again["event_id"])) == 2


def test_a_notice_nobody_wants_sends_nothing(
    company, start_notify, dispatch, sink, rpc, tables
) -> None:
    start_notify()
    customer_id = company["customer_id"]
    session = rpc.call("auth", "login", {"login": company["contact_email"], "password": PASSWORD})
    rpc.call(
        "auth",
        "update_notification_preferences",
        customer_id,
        session["user"]["user_id"],
        {"preferences": {"license_expiring": False}},
    )
    payload = payloads.license_expiring(customer_id, days_left=1)
    dispatch("licensing", "license_expiring", payload)
    (row,) = eventually(
        lambda: [r for r in tables.deliveries_of(payload["event_id"]) if r.status == "done"]
    )
    assert (row.recipient, row.last_error, row.next_attempt_at) == (None, None, None)
    assert len(tables.deliveries_of(payload["event_id"])) == 1
    assert not [m for m in sink.messages(to=company["contact_email"]) if "expires" in m["Subject"]]


def test_seats_all_in_use_reach_the_owners_and_a_license_admin_who_asks(
    company, start_notify, dispatch, sink, rpc, tables
) -> None:
    start_notify()
    customer_id = company["customer_id"]
    contact = company["contact_email"]
    admin = _join(rpc, sink, customer_id, "license_admin", "Lin Wu")

    def news(email: str) -> list[EmailMessage]:
        return [m for m in sink.messages(to=email) if "are in use" in m["Subject"]]

    first = payloads.seats_exhausted(customer_id, seats=3)
    dispatch("licensing", "seats_exhausted", first)
    eventually(lambda: tables.emails_sent(first["event_id"]))
    # owners by default; a license admin may have it, but has it off until they turn it on
    [to_contact] = news(contact)
    assert to_contact["Subject"] == "All 3 seats of CAD Pro are in use"
    body = text_body(to_contact)
    assert "Hello Grace Hopper," in body and "WS-01: borrowed until" in body
    assert f"http://portal.test/licenses/{first['license_id']}" in body
    assert "http://portal.test/buy" in body
    assert news(admin["email"]) == []

    rpc.call(
        "auth",
        "update_notification_preferences",
        customer_id,
        admin["user_id"],
        {"preferences": {"seats_exhausted": True}},
    )
    again = payloads.seats_exhausted(customer_id, seats=3)
    dispatch("licensing", "seats_exhausted", again)
    eventually(lambda: tables.emails_sent(again["event_id"]))
    assert len(news(admin["email"])) == 1 and len(news(contact)) == 2
    assert len(tables.deliveries_of(again["event_id"])) == 3  # its own row, two recipients
