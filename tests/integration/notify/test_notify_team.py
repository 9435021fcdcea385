"""Team accounts' emails from the real bus at a real SMTP server: to the user an auth event
is about (role changed, access disabled, their own password), once per event."""

from __future__ import annotations

import pytest

from tests.support.smtp_sink import html_body, text_body
from tests.support.waiting import eventually
from tests.unit.notify import payloads

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def test_a_role_change_and_a_disabled_access_reach_the_user(
    start_notify, dispatch, sink, rpc
) -> None:
    start_notify()
    email = payloads.unique_email("lin")
    changed = payloads.user_role_changed(email, old_role="viewer", new_role="license_admin")
    dispatch("auth", "user_role_changed", changed)
    disabled = payloads.user_disabled(email, disabled_by="staff")
    dispatch("auth", "user_disabled", disabled)

    role = sink.wait_for(lambda m: "role" in m["Subject"], to=email)
    assert role["Subject"] == "Your role at Acme is now License admin"
    assert role["Message-ID"] == f"<{changed['event_id']}.user_role_changed@portal.test>"
    assert "from Viewer to License admin by an owner of the account (ada@acme.test)" in (
        text_body(role)
    )
    assert "As License admin you can view licenses and their activation passwords" in (
        html_body(role)
    )
    gone = sink.wait_for(lambda m: "disabled" in m["Subject"], to=email)
    assert "was disabled by our support team" in text_body(gone)

    def both_sent() -> list[dict] | None:
        rows = rpc.call("notify", "list_deliveries", 10, email)
        return rows if len(rows) == 2 and {r["status"] for r in rows} == {"sent"} else None

    rows = eventually(both_sent)
    assert {r["kind"] for r in rows} == {"user_role_changed", "user_disabled"}


def test_a_users_password_emails_go_to_that_user_and_old_events_to_the_contact(
    start_notify, dispatch, sink
) -> None:
    start_notify()
    contact = payloads.unique_email("contact")
    user_email = payloads.unique_email("bob")
    user = payloads.user(user_email, name="Bob Lee")
    dispatch("auth", "password_changed", payloads.password_changed(contact, user=user))
    # an event published before team accounts: no user, the contact is told
    old = payloads.password_changed(contact)
    dispatch("auth", "password_changed", old)

    message = sink.wait_for(to=user_email)
    assert "Hello Bob Lee," in text_body(message)
    assert "your other sessions have been signed out" in text_body(message)
    sink.wait_for(to=contact)
    assert len(sink.messages(to=contact)) == 1
    assert sink.messages(to=contact)[0]["Message-ID"].startswith(f"<{old['event_id']}.")


def test_a_redelivered_user_event_sends_one_email(start_notify, dispatch, sink) -> None:
    start_notify()
    email = payloads.unique_email("lin")
    payload = payloads.user_disabled(email)
    dispatch("auth", "user_disabled", payload)
    sink.wait_for(to=email)
    dispatch("auth", "user_disabled", payload)
    marker = payloads.unique_email("marker")
    dispatch("auth", "user_disabled", payloads.user_disabled(marker))
    sink.wait_for(to=marker)
    assert len(sink.messages(to=email)) == 1


def test_an_invitation_without_its_user_is_parked(start_notify, dispatch, tables) -> None:
    start_notify()
    payload = payloads.user_invited()
    del payload["user"]
    dispatch("auth", "user_invited", payload)
    (parked,) = eventually(lambda: tables.parked(payload["event_id"]))
    assert "user: Missing data for required field." in parked.error
