"""Team accounts in headless Chromium against the real suite: an owner invites colleagues on
the Users page, each accepts the emailed link and sees only what their role may use; the
Activity page names who did what; each user picks their email notifications. Every page of
the portal, old and new, is checked with axe-core (no serious or critical violation) on a
desktop and at phone width (no horizontal scroll).

Each journey has its own company (`portalctl`, licenses bought through the API), so the
tests do not depend on order. Pages are saved under test-artifacts/ui/ to be looked at.
"""

from __future__ import annotations

import csv
import io
import re
import uuid

import pytest

from tests.e2e.test_portal_ui import PASSWORD, confirm_dialog, licensed_company, log_in
from tests.e2e.ui_browser import DESKTOP, PHONE
from tests.support import axe

pytestmark = pytest.mark.e2e

USER_PASSWORD = "Copper-Meadow-58"
INVITE_LINK = re.compile(r"(https?://\S+/accept-invitation#token=[A-Za-z0-9_\-]+)")
BILLING_PAGES = ["/payments", "/recurring-payments", "/buy"]
NAV = {
    "owner": ["/licenses", *BILLING_PAGES, "/users", "/activity", "/account"],
    "license_admin": ["/licenses", "/account"],
    "billing": ["/licenses", *BILLING_PAGES, "/account"],
    "viewer": ["/licenses", "/account"],
}
# axe-core from this disk: npm's current copy (`make install`), else selenium-axe-python's
AXE_PACKAGE = axe.PACKAGE
HAS_AXE = axe.available()


@pytest.fixture(scope="module")
def catalog(suite):
    """The demo product and plans (`portalctl demo` is idempotent)."""
    return suite.portalctl("demo")


@pytest.fixture
def ui(browser):
    browser.reset()
    return browser


# --- helpers ----------------------------------------------------------------------------


def new_email(tag: str) -> str:
    return f"{tag}.{uuid.uuid4().hex[:10]}@example.test"


def invitation_link(smtp_sink, email: str, after: int = 0) -> str:
    """The accept link of the (`after`+1)-th invitation email sent to `email`."""
    found: list[str] = []

    def invitation(message) -> bool:
        if email.lower() not in (message["To"] or "").lower():
            return False
        body = message.get_body(preferencelist=("plain",)).get_content()
        match = INVITE_LINK.search(body)
        if match and match.group(1) not in found:
            found.append(match.group(1))
        return len(found) > after

    smtp_sink.wait_for(invitation, timeout=20)
    return found[after]


def add_user(api, smtp_sink, owner_token: str, role: str, name: str) -> dict:
    """A user of the owner's company with `role` who accepted the invitation (through the API)."""
    email = new_email(role)
    response = api.post(
        "/api/v1/users", token=owner_token, json={"email": email, "name": name, "role": role}
    )
    assert response.status_code == 201, response.text
    token = invitation_link(smtp_sink, email).split("#token=", 1)[1]
    accepted = api.post(
        "/api/v1/invitations/accept", json={"token": token, "password": USER_PASSWORD}
    )
    assert accepted.status_code == 204, accepted.text
    return {**response.json(), "email": email, "password": USER_PASSWORD}


def nav_links(ui) -> list[str]:
    return [link.get_attribute("pathname") for link in ui.find_all(".mainnav a")]


def events(ui) -> list[dict]:
    """The rows of the activity table as the page shows them now (read in one go, so a
    table redrawn meanwhile cannot leave stale elements)."""
    return ui.js(
        """
        return [...document.querySelectorAll("#events tbody tr")].map((row) => ({
          id: row.dataset.eventId, action: row.dataset.action,
          at: row.querySelector("time")?.getAttribute("datetime"),
          who: row.cells[1].textContent, text: row.innerText}));
        """
    )


def log_out(ui) -> None:
    ui.click("#logout")
    ui.at("/login")


def axe_problems(ui) -> list[tuple[str, str, list[str]]]:
    """The serious and critical axe violations of the page as it is now."""
    return axe.problems(ui)


def page_is_clean(ui, name: str) -> None:
    """No horizontal scroll, no CSP or script error, no serious axe violation; saved."""
    assert ui.horizontal_overflow() <= 0, (name, ui.horizontal_overflow())
    problems = [m for m in ui.console() if "Content Security Policy" in m or "Uncaught" in m]
    assert not problems, (name, problems)
    if HAS_AXE:
        assert axe_problems(ui) == [], name
    ui.screenshot(name)


# --- invitations --------------------------------------------------------------------------


def test_owner_invites_a_user_who_accepts_logs_in_and_sees_only_their_pages(
    ui, suite, api, catalog, smtp_sink
):
    company = licensed_company(suite, api)
    log_in(ui, company["customer_id"])
    assert nav_links(ui) == NAV["owner"]
    assert ui.js("return document.body.dataset.role") == "owner"
    assert ui.find("#who-role").text == "Owner"
    ui.click("a[href='/users']")
    ui.at("/users")
    contact = ui.text_in("#users tbody tr", "Contact, always owner")
    assert company["contact_email"].lower() in contact.lower()
    contact_row = ui.find("#users tbody tr")
    assert not contact_row.find_elements("css selector", "button, select")  # nothing to break

    email = new_email("grace")
    ui.fill("#invite-email", "not an email")
    ui.fill("#invite-name", "Grace Hopper")
    ui.click("#invite-send")
    ui.text_in("#invite-error", "email address")
    ui.fill("#invite-email", email)
    ui.js("document.getElementById('invite-role').value = 'billing'")
    ui.click("#invite-send")
    ui.text_in("#invite-done", f"Invitation sent to {email}")
    row = ui.text_in(f"#users tr[data-email='{email}']", "Invited")
    assert "Grace Hopper" in row and "Never" in row
    select = ui.find(f"#users tr[data-email='{email}'] select")
    assert select.get_attribute("value") == "billing"
    ui.screenshot("team-users-invited")

    # the same address again: said in words, not a code
    ui.fill("#invite-email", email.upper())
    ui.fill("#invite-name", "Grace again")
    ui.click("#invite-send")
    ui.text_in("#invite-error", "already belongs to a user")
    assert ui.find("#invite-email").get_attribute("aria-invalid") == "true"

    link = invitation_link(smtp_sink, email)
    log_out(ui)
    ui.open(link)
    ui.visible("#new-password")
    assert "#token" not in ui.driver.current_url  # the token leaves the address bar
    page_is_clean(ui, "team-accept-invitation")
    ui.fill("#new-password", USER_PASSWORD)
    ui.fill("#confirm-password", USER_PASSWORD + "x")
    ui.click("#accept-form button[type=submit]")
    ui.text_in("#form-error", "not the same")
    ui.fill("#confirm-password", USER_PASSWORD)
    ui.click("#accept-form button[type=submit]")
    ui.text_in("#done", "Your account is ready")
    ui.screenshot("team-accept-invitation-done")
    ui.click("#done-login")
    ui.at("/login")

    log_in(ui, email, USER_PASSWORD)
    assert nav_links(ui) == NAV["billing"]
    assert ui.js("return document.body.dataset.role") == "billing"
    assert ui.find("#who-role").text == "Billing"
    assert "Grace Hopper" in ui.find("#who-user").text
    ui.screenshot("team-billing-licenses")
    ui.open("/users")
    message = ui.text_in("main", "not available for your role")
    assert "This page is not available for your role (Billing). Ask an owner of your account." in (
        " ".join(message.split())
    )
    assert nav_links(ui) == NAV["billing"]  # in the portal's layout
    page_is_clean(ui, "team-billing-users-forbidden")

    # the link a second time: used up, said at once, before any typing
    log_out(ui)
    ui.open(link)
    text = ui.text_in("#link-dead", "already used")
    assert "log in" in text.lower()
    assert not ui.find("#accept-form").is_displayed()

    # the owner sees the invitation accepted
    owner_token = api.login(company["customer_id"], PASSWORD)
    users = api.get("/api/v1/users", token=owner_token).json()["users"]
    grace = next(user for user in users if user["email"] == email)
    assert (grace["status"], grace["role"]) == ("active", "billing")


def test_a_viewer_sees_no_activation_password_and_no_deactivate(ui, suite, api, catalog, smtp_sink):
    company = licensed_company(suite, api, machines=("WS-ENG-07",))
    viewer = add_user(api, smtp_sink, company["token"], "viewer", "Vera Viewer")
    log_in(ui, viewer["email"], viewer["password"])
    assert nav_links(ui) == NAV["viewer"]
    assert not ui.find_all("a[href='/buy']")  # no "Buy or renew" on the licenses page
    ui.click(f"#licenses a[href='/licenses/{company['license_id']}']")
    ui.visible("#details")
    ui.wait(lambda _: ui.find_all("#installations tbody tr"), what="installations")
    assert "WS-ENG-07" in ui.find("#installations").text
    assert not ui.find_all("#installations .cell-action button")  # no Deactivate
    assert not ui.find_all("#activation-password, #reveal, #copy, #rotate")
    assert not ui.find_all("#renew")
    assert ui.text_in("#password-unavailable", "Your role (Viewer) does not show")
    assert company["activation_password"] not in ui.driver.page_source
    page_is_clean(ui, "team-viewer-license")
    ui.open("/payments")
    ui.text_in("main", "not available for your role (Viewer)")
    ui.set_size(PHONE)
    ui.open(f"/licenses/{company['license_id']}")
    ui.visible("#details")
    page_is_clean(ui, "team-viewer-license-phone")
    ui.set_size(DESKTOP)


def test_users_page_changes_role_resends_disables_enables_and_removes(
    ui, suite, api, catalog, smtp_sink
):
    company = licensed_company(suite, api)
    colleague = add_user(api, smtp_sink, company["token"], "viewer", "Linus Colleague")
    invited = new_email("ivy")
    response = api.post(
        "/api/v1/users",
        token=company["token"],
        json={"email": invited, "name": "Ivy Invited", "role": "license_admin"},
    )
    assert response.status_code == 201, response.text
    first_link = invitation_link(smtp_sink, invited)
    log_in(ui, company["customer_id"])
    ui.open("/users")
    row = f"#users tr[data-email='{colleague['email']}']"
    ui.text_in(row, "Active")

    # change the role: saved at once, said in the status line
    select = ui.find(f"{row} select")
    assert select.get_attribute("aria-label") == "Role of Linus Colleague"
    ui.js(
        "const s = arguments[0]; s.value = 'license_admin'; s.dispatchEvent(new Event('change'));",
        select,
    )
    ui.text_in("#users-status", "Linus Colleague is now License admin")
    token = api.login(colleague["email"], colleague["password"])
    assert api.get("/api/v1/account", token=token).json()["user"]["role"] == "license_admin"

    # an answer the owner cannot cause here (the contact is an active owner), in words: the
    # gateway's 409 `last_owner`, as it would answer, and the select goes back
    ui.js(
        """
        const realFetch = window.fetch;
        window.fetch = async (url, options = {}) => {
          if (options.method === "PATCH") {
            window.fetch = realFetch;
            return new Response(JSON.stringify({error: {code: "last_owner",
              message: "The company would have no active owner.", details: {}}}),
              {status: 409, headers: {"Content-Type": "application/json"}});
          }
          return realFetch(url, options);
        };
        """
    )
    select = ui.find(f"{row} select")
    ui.js(
        "const s = arguments[0]; s.value = 'viewer'; s.dispatchEvent(new Event('change'));",
        select,
    )
    ui.text_in("#users-status", "Linus Colleague is the last active owner")
    assert ui.find(f"{row} select").get_attribute("value") == "license_admin"

    # resend the invitation: a new link, the old one void
    ui.click(f"#users tr[data-email='{invited}'] button[data-action=resend]")
    ui.text_in("#users-status", f"A new invitation was sent to {invited}")
    second_link = invitation_link(smtp_sink, invited, after=1)
    assert second_link != first_link

    # disable, with a confirmation; the colleague's session ends at once
    ui.click(f"{row} button[data-action=disable]")
    assert "logged out at once" in confirm_dialog(ui)
    ui.screenshot("team-users-disable-confirm")
    ui.click("#confirm-ok")
    ui.text_in("#users-status", "Linus Colleague is disabled")
    ui.text_in(row, "Disabled")
    assert api.get("/api/v1/account", token=token).status_code == 401
    ui.click(f"{row} button[data-action=enable]")
    ui.text_in("#users-status", "can log in again")
    ui.text_in(row, "Active")

    # remove: cancelling changes nothing; confirming takes the row away
    ui.click(f"{row} button[data-action=remove]")
    confirm_dialog(ui)
    ui.click("#confirm-cancel")
    assert ui.find_all(row)
    ui.click(f"{row} button[data-action=remove]")
    assert "Remove Linus Colleague" in ui.find("#confirm-ok").text
    ui.click("#confirm-ok")
    ui.text_in("#users-status", "Linus Colleague is removed")
    ui.wait(lambda _: not ui.find_all(row), what="the row removed")
    emails = [u["email"] for u in api.get("/api/v1/users", token=company["token"]).json()["users"]]
    assert colleague["email"] not in emails
    page_is_clean(ui, "team-users")
    ui.set_size(PHONE)
    ui.open("/users")
    ui.visible("#users")
    page_is_clean(ui, "team-users-phone")
    ui.set_size(DESKTOP)


# --- activity ---------------------------------------------------------------------------


def test_activity_lists_who_did_what_and_filters_by_user(ui, suite, api, catalog, smtp_sink):
    company = licensed_company(suite, api, machines=("WS-ENG-07", "LAPTOP-ADA"))
    admin = add_user(api, smtp_sink, company["token"], "license_admin", "Lena Admin")

    # the license admin deactivates a machine in the portal: the history names them
    log_in(ui, admin["email"], admin["password"])
    assert nav_links(ui) == NAV["license_admin"]
    ui.open(f"/licenses/{company['license_id']}")
    ui.visible("#details")
    ui.click("#reveal")  # a license admin sees the password
    assert ui.find("#activation-password").text == company["activation_password"]
    button = "#installations tr[data-installation-id='{}'] .cell-action button".format(
        company["installations"]["WS-ENG-07"]
    )
    ui.click(button)
    confirm_dialog(ui)
    ui.click("#confirm-ok")
    ui.text_in("#installations-status", "WS-ENG-07 is deactivated")
    ui.wait(lambda _: admin["email"] in ui.find("#history").text, what="the admin in the history")
    log_out(ui)

    log_in(ui, company["customer_id"])
    ui.click("a[href='/activity']")
    ui.at("/activity")
    ui.visible("#events")
    ui.wait(lambda _: "Deactivated a machine" in ui.find("#events").text, what="deactivation")
    shown = events(ui)
    actions = [row["action"] for row in shown]
    for action in ("installation_deactivated", "activation_password_viewed", "user_invited"):
        assert action in actions, actions
    deactivated = next(row for row in shown if row["action"] == "installation_deactivated")
    assert deactivated["who"] == admin["email"] and "WS-ENG-07" in deactivated["text"]
    activated = next(row for row in shown if row["action"] == "installation_activated")
    assert activated["who"] == "The product"
    assert "time zone" in ui.find("#zone").text
    times = [row["at"] for row in shown]
    assert times == sorted(times, reverse=True)  # newest first
    page_is_clean(ui, "team-activity")

    # filter by the admin: only what they did, and the CSV link says the same
    ui.js(
        "const s = document.getElementById('filter-user'); s.value = arguments[0];",
        admin["user_id"],
    )
    ui.click("#apply")
    ui.wait(
        lambda _: {row["who"] for row in events(ui)} == {admin["email"]},
        what="only the admin's events",
    )
    assert f"user_id={admin['user_id']}" in ui.path
    csv_link = ui.find("#csv").get_attribute("href")
    assert "format=csv" in csv_link and f"user_id={admin['user_id']}" in csv_link
    download = ui.fetch(csv_link)
    assert download["status"] == 200, download
    table = list(csv.DictReader(io.StringIO(download["body"])))
    assert table and {row["actor_email"] for row in table} == {admin["email"]}
    assert "installation_deactivated" in {row["action"] for row in table}
    ui.screenshot("team-activity-filtered")

    # by action and date: today (in the browser's zone) holds the deactivation
    ui.click("#clear")
    today = ui.js(
        "const d = new Date(); return d.getFullYear() + '-' +"
        " String(d.getMonth() + 1).padStart(2, '0') + '-' + String(d.getDate()).padStart(2, '0')"
    )
    ui.js(
        "document.getElementById('filter-action').value = 'installation_deactivated';"
        "document.getElementById('filter-since').value = arguments[0];"
        "document.getElementById('filter-until').value = arguments[0];",
        today,
    )
    ui.click("#apply")
    ui.wait(
        lambda _: {row["action"] for row in events(ui)} == {"installation_deactivated"},
        what="only deactivations",
    )
    ui.js(
        "document.getElementById('filter-since').value = '2001-01-01';"
        "document.getElementById('filter-until').value = '2001-01-02';"
    )
    ui.click("#apply")
    ui.text_in("#empty", "No activity matches")

    # a page at a time, newest first
    ui.open("/activity?limit=2")
    ui.wait(lambda _: len(events(ui)) == 2, what="the first page")
    first = [row["id"] for row in events(ui)]
    ui.click("#more")
    ui.wait(lambda _: len(events(ui)) == 4, what="the next page")
    shown = [row["id"] for row in events(ui)]
    assert shown[:2] == first and len(set(shown)) == 4
    ui.set_size(PHONE)
    ui.open("/activity")
    ui.visible("#events")
    page_is_clean(ui, "team-activity-phone")
    ui.set_size(DESKTOP)


# --- the account page -------------------------------------------------------------------


def test_notification_checkboxes_show_the_roles_notices_and_save(
    ui, suite, api, catalog, smtp_sink
):
    company = licensed_company(suite, api)
    billing = add_user(api, smtp_sink, company["token"], "billing", "Bill Payer")
    log_in(ui, billing["email"], billing["password"])
    ui.click("a[href='/account']")
    ui.at("/account")
    assert ui.find("#u-name").text == "Bill Payer"
    assert ui.find("#u-email").text == billing["email"]
    assert ui.find("#u-role").text.startswith("Billing")
    ui.visible("#notifications-form")
    boxes = ui.find_all("#notifications-list input[type=checkbox]")
    assert [box.get_attribute("name") for box in boxes] == ["receipts", "payment_failed"]
    assert all(box.is_selected() for box in boxes)  # billing's defaults
    ui.click("label[for='notice-receipts']")
    ui.click("#notifications-save")
    ui.text_in("#notifications-done", "saved")
    page_is_clean(ui, "team-account-notifications")
    token = api.login(billing["email"], billing["password"])
    saved = api.get("/api/v1/account/notifications", token=token).json()
    assert saved["preferences"]["receipts"] is False
    assert saved["preferences"]["payment_failed"] is True
    ui.open("/account")
    ui.visible("#notifications-form")
    ui.wait(lambda _: ui.find_all("#notice-receipts"), what="the checkboxes")
    assert not ui.find("#notice-receipts").is_selected()
    assert ui.find("#notice-payment_failed").is_selected()

    # an owner gets all five, and the billing details a viewer never sees
    log_out(ui)
    log_in(ui, company["customer_id"])
    ui.open("/account")
    ui.wait(lambda _: len(ui.find_all("#notifications-list input")) == 5, what="five notices")
    assert ui.find_all("#billing-form")
    ui.set_size(PHONE)
    ui.open("/account")
    ui.visible("#notifications-form")
    page_is_clean(ui, "team-account-phone")
    ui.set_size(DESKTOP)


# --- every page -------------------------------------------------------------------------


@pytest.mark.skipif(not HAS_AXE, reason=axe.describe())
def test_every_page_passes_axe_on_a_desktop_and_a_phone(ui, suite, api, catalog):
    company = licensed_company(suite, api, machines=("WS-ENG-07",))
    pages = {
        "licenses": ("/licenses", "#licenses"),
        "license": (f"/licenses/{company['license_id']}", "#installations"),
        "payments": ("/payments", "#payments"),
        "recurring-payments": ("/recurring-payments", "#recurring"),
        "buy": ("/buy", "#buy-form"),
        "users": ("/users", "#users"),
        "activity": ("/activity", "#events"),
        "account": ("/account", "#notifications-form"),
    }
    public = {
        "login": ("/login", "#login-form"),
        "forgot-password": ("/forgot-password", "#forgot-form"),
        # an unknown token: the dead link's message (the forms: test_portal_password_ux)
        "reset-password": ("/reset-password#token=x", "#link-dead"),
        "accept-invitation": ("/accept-invitation#token=x", "#link-dead"),
    }
    for size_name, size in (("desktop", DESKTOP), ("phone", PHONE)):
        ui.reset()
        ui.set_size(size)
        log_in(ui, company["customer_id"])
        for name, (path, ready) in pages.items():
            ui.open(path)
            ui.visible(ready)
            ui.wait(lambda _: not ui.find_all(".loading:not([hidden])"), what="loaded")
            page_is_clean(ui, f"axe-{size_name}-{name}")
        log_out(ui)
        for name, (path, ready) in public.items():
            ui.open(path)
            ui.visible(ready)
            page_is_clean(ui, f"axe-{size_name}-{name}")
    ui.set_size(DESKTOP)
