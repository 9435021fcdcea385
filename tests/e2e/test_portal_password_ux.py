"""Issue 16, password links in headless Chromium, at desktop and phone width: a reset or
invitation link is checked as the page opens, so a used or expired one says so at once,
before any typing, with the way to a new link (said once, never twice); the form's heading
follows the link's purpose ("Set your password" for a new company's welcome link and an
invitation, "Choose a new password" for a reset, the only one that mentions signing out
sessions); the check's outage message has a Retry that works once the service is back.

Each journey has its own company, so the tests do not depend on order; every page is
checked (no horizontal scroll, no CSP or script error, no serious axe violation) and saved
under test-artifacts/ui/.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, text

from services.auth.domain import hash_token
from tests.e2e.test_portal_team_ui import INVITE_LINK, USER_PASSWORD, page_is_clean
from tests.e2e.test_portal_ui import NEW_PASSWORD, PASSWORD, RESET_LINK, new_company
from tests.e2e.ui_browser import DESKTOP, PHONE

pytestmark = pytest.mark.e2e

SIZES = pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["desktop", "phone"])


@pytest.fixture
def ui(browser):
    browser.reset()
    yield browser
    browser.set_size(DESKTOP)


# --- helpers ----------------------------------------------------------------------------


def emailed_link(smtp_sink, email: str, pattern: re.Pattern, seen: tuple[str, ...] = ()) -> str:
    """The first link matching `pattern` in an email to `email` that is not in `seen`."""
    found: list[str] = []

    def has_link(message) -> bool:
        if email.lower() not in (message["To"] or "").lower():
            return False
        body = message.get_body(preferencelist=("plain",)).get_content()
        for link in pattern.findall(body):
            if link not in seen and link not in found:
                found.append(link)
        return bool(found)

    smtp_sink.wait_for(has_link, timeout=20)
    return found[0]


def reset_link(api, smtp_sink, email: str, seen: tuple[str, ...] = ()) -> str:
    response = api.post("/api/v1/password-resets", json={"login": email})
    assert response.status_code in (202, 204), response.text
    return emailed_link(smtp_sink, email, RESET_LINK, seen)


def token_of(link: str) -> str:
    return link.split("#token=", 1)[1]


def expire(suite, link: str) -> None:
    """The link's token expired an hour ago (as if 30 minutes had passed long since)."""
    engine = create_engine(suite.env["AUTH_DATABASE_URL"])
    past = datetime.now(UTC) - timedelta(hours=1)
    try:
        with engine.begin() as connection:
            changed = connection.execute(
                text("UPDATE password_tokens SET expires_at = :past WHERE token_hash = :hash"),
                {"past": past, "hash": hash_token(token_of(link))},
            ).rowcount
        assert changed == 1
    finally:
        engine.dispose()


def said_once(ui, selector: str = "main") -> None:
    """No sentence of the page is said twice."""
    sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+|\n", ui.find(selector).text)]
    sentences = [s for s in sentences if s]
    assert len(sentences) == len(set(sentences)), sentences


def dead_link_at_once(ui, link: str, words: str) -> str:
    """Opens `link`: the dead link's message is shown without typing anything; its text."""
    ui.open(link)
    message = ui.text_in("#link-dead", words)
    assert not ui.find_all("#new-password") or not ui.find("#new-password").is_displayed()
    return message


# --- reset links --------------------------------------------------------------------------


@SIZES
def test_a_used_reset_link_says_so_before_any_typing(ui, suite, api, smtp_sink, size):
    company = new_company(suite)
    email = company["contact_email"]
    link = reset_link(api, smtp_sink, email)
    used = api.post(
        "/api/v1/password-resets/confirm",
        json={"token": token_of(link), "new_password": NEW_PASSWORD},
    )
    assert used.status_code == 204, used.text
    ui.set_size(size)
    message = dead_link_at_once(ui, link, "already used")
    assert "This link was already used." in message
    button = ui.find("#new-link")
    assert button.text == "Ask for a new link"
    assert button.get_attribute("pathname") == "/forgot-password"
    assert "#token" not in ui.driver.current_url
    said_once(ui)
    page_is_clean(ui, f"ux-reset-used-{size[0]}")
    button.click()
    ui.at("/forgot-password")


@SIZES
def test_an_expired_reset_link_says_so_and_a_working_one_says_sessions_end(
    ui, suite, api, smtp_sink, size
):
    company = new_company(suite)
    email = company["contact_email"]
    old = reset_link(api, smtp_sink, email)
    expire(suite, old)
    ui.set_size(size)
    message = dead_link_at_once(ui, old, "expired")
    assert "This link has expired." in message
    said_once(ui)
    page_is_clean(ui, f"ux-reset-expired-{size[0]}")

    # a fresh reset link: "Choose a new password", and only a reset signs sessions out
    link = reset_link(api, smtp_sink, email, seen=(old,))
    ui.open(link)
    ui.visible("#new-password")
    assert ui.find("#heading").text == "Choose a new password"
    intro = ui.find("#intro").text
    assert email.lower() in intro.lower() and "signed out" in intro
    page_is_clean(ui, f"ux-reset-form-{size[0]}")
    ui.fill("#new-password", NEW_PASSWORD)
    ui.fill("#confirm-password", NEW_PASSWORD)
    ui.click("#reset-form button[type=submit]")
    done = ui.text_in("#done", "password is set")
    assert "signed out" in done


# --- welcome and invitation links ---------------------------------------------------------


@SIZES
def test_a_new_companys_welcome_link_sets_your_password(ui, suite, smtp_sink, size):
    email = f"welcome.{uuid.uuid4().hex[:10]}@example.test"
    company = suite.portalctl(
        "company", "create", "--name", "Welcome Works", "--contact-name", "Ada Lovelace",
        "--email", email,
    )  # fmt: skip
    link = emailed_link(smtp_sink, email, RESET_LINK)
    ui.set_size(size)
    ui.open(link)
    ui.visible("#new-password")
    assert ui.find("#heading").text == "Set your password"
    main = ui.find("main").text
    assert "signed out" not in main and "new password" not in main.lower(), main
    assert email in ui.find("#intro").text
    page_is_clean(ui, f"ux-welcome-link-{size[0]}")
    ui.fill("#new-password", PASSWORD)
    ui.fill("#confirm-password", PASSWORD)
    ui.click("#reset-form button[type=submit]")
    done = ui.text_in("#done", "password is set")
    assert "signed out" not in done
    assert company["customer_id"]


def test_an_accepted_invitation_link_says_so_and_a_new_one_sets_your_password(
    ui, suite, api, smtp_sink
):
    company = new_company(suite)
    owner = api.login(company["customer_id"], PASSWORD)
    email = f"invitee.{uuid.uuid4().hex[:10]}@example.test"
    invited = api.post(
        "/api/v1/users", token=owner, json={"email": email, "name": "Grace", "role": "viewer"}
    )
    assert invited.status_code == 201, invited.text
    link = emailed_link(smtp_sink, email, INVITE_LINK)
    for size in (DESKTOP, PHONE):
        ui.reset()
        ui.set_size(size)
        ui.open(link)
        ui.visible("#new-password")
        assert ui.find("#heading").text == "Set your password"
        assert email in ui.find("#intro").text
        page_is_clean(ui, f"ux-invitation-{size[0]}")
    accepted = api.post(
        "/api/v1/invitations/accept", json={"token": token_of(link), "password": USER_PASSWORD}
    )
    assert accepted.status_code == 204, accepted.text
    for size in (DESKTOP, PHONE):
        ui.reset()
        ui.set_size(size)
        message = dead_link_at_once(ui, link, "already used")
        assert "log in" in message.lower()
        assert ui.find("#heading").text == "Invitation already accepted"
        said_once(ui)
        page_is_clean(ui, f"ux-invitation-used-{size[0]}")


def test_a_garbled_link_is_dead_at_once_and_points_to_the_forgot_password_form(ui, api):
    # longer than any token: the check refuses it as invalid input (422), not invalid_token
    token = "x" * 300
    refused = api.post("/api/v1/password-resets/check", json={"token": token})
    assert refused.status_code == 422, refused.text
    message = dead_link_at_once(ui, f"/reset-password#token={token}", "This link is not valid")
    assert ui.find("#heading").text == "This link does not work"
    # the button opens the forgot-password form, where the email address is typed: nothing
    # is emailed "at once"
    assert "at once" not in message and "enter your email address" in message, message
    assert ui.find("#new-link").get_attribute("pathname") == "/forgot-password"
    said_once(ui)
    page_is_clean(ui, "ux-reset-garbled")


# --- outage -------------------------------------------------------------------------------


def test_the_link_check_outage_has_a_retry_that_works_once_auth_is_back(ui, suite, api, smtp_sink):
    company = new_company(suite)
    link = reset_link(api, smtp_sink, company["contact_email"])
    for size in (DESKTOP, PHONE):
        ui.reset()
        ui.set_size(size)
        suite.stop("auth")
        try:
            ui.open(link)
            message = ui.text_in("#link-error", "temporarily unavailable", timeout=20)
            assert "Retry" in message
            assert not ui.find("#new-password").is_displayed()
            page_is_clean(ui, f"ux-reset-check-outage-{size[0]}")
        finally:
            suite.start("auth")
            suite.wait_ready(timeout=90)
        ui.click("#link-error button.retry")
        ui.visible("#new-password")
        assert not ui.find("#link-error").is_displayed()
        # the keyboard is in the form the Retry opened, not lost on the page
        assert ui.js("return document.activeElement.id") == "new-password"
        assert ui.find("#heading").text == "Choose a new password"
