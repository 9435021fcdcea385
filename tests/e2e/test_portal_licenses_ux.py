"""The licenses list and a license's page answer an admin's questions at a glance (issue 16),
in headless Chromium against the real suite, on a desktop and at phone width:

- "Will this renew?": "Renews Dec 7, 2026 · €1,470.00" or "Auto-renew off · ends …" on the
  list, and the renewal panel on the license ("Renews automatically on … with Visa ····4242").
- "Why can't we use it?": a suspended license shows its reason, no countdown and no Renew; an
  expired one says "Renew to reactivate".
- "Which license is which?": a nickname and a note, edited on the license's page, name it on
  the list, where search, filters and sorting find it.
- "Which machines hold my seats?": active machines first with when each was last seen, the
  deactivated ones collapsed, short installation IDs with a Copy button, a search box; the
  deactivation dialog tells what the kit does offline (its grace period).
- Renew is offered only when a plan of the license's product is on sale.

Each journey has its own company (`portalctl`, licenses bought through the API), so the tests
do not depend on order. Every page is checked (no horizontal scroll, no CSP or script error,
no serious axe violation) and saved under test-artifacts/ui/.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from tests.e2e.test_portal_team_ui import add_user, page_is_clean
from tests.e2e.test_portal_ui import (
    PASSWORD,
    buy,
    confirm_dialog,
    licensed_company,
    log_in,
    new_company,
)
from tests.e2e.ui_browser import DESKTOP, PHONE

pytestmark = pytest.mark.e2e

SIZES = {"desktop": DESKTOP, "phone": PHONE}
DATE = r"[A-Z][a-z]{2} \d{1,2}, \d{4}"  # "Dec 7, 2026": formatDate in en-US


@pytest.fixture(scope="module")
def catalog(suite):
    """The demo product and plans (`portalctl demo` is idempotent)."""
    return suite.portalctl("demo")


@pytest.fixture
def ui(browser):
    browser.reset()
    return browser


# --- helpers ----------------------------------------------------------------------------


def in_days(days: int) -> str:
    return (datetime.now(UTC).date() + timedelta(days=days)).isoformat()


def issue(suite, customer_id: str, product: str = "cadpro", days: int | None = 200) -> dict:
    """A license issued by staff (no recurring payment), valid `days` from today."""
    args = ["license", "issue", "--customer", customer_id, "--product", product, "--seats", "2"]
    if days is not None:
        args += ["--expires", in_days(days)]
        if days < 0:
            args.append("--force")  # an expiry already past: staff must insist
    return suite.portalctl(*args)


def fetched_paths(ui) -> list[str]:
    """The paths the page has fetched so far, in order."""
    return ui.js(
        "return performance.getEntriesByType('resource').map((e) => new URL(e.name).pathname)"
    )


def row(license_id: str) -> str:
    return f"#licenses tr[data-license-id='{license_id}']"


def shown_rows(ui) -> list[str]:
    """The license IDs of the list's rows, top to bottom."""
    return ui.js(
        "return [...document.querySelectorAll('#licenses tbody tr')]"
        ".map((r) => r.dataset.licenseId)"
    )


def type_in(ui, selector: str, text: str) -> None:
    """Sets a field's value as typing would (an `input` event), also to empty it."""
    ui.js(
        "const f = document.querySelector(arguments[0]); f.value = arguments[1];"
        "f.dispatchEvent(new Event('input', {bubbles: true}))",
        selector,
        text,
    )


def choose(ui, selector: str, value: str) -> None:
    ui.js(
        "const s = document.querySelector(arguments[0]); s.value = arguments[1];"
        "s.dispatchEvent(new Event('change', {bubbles: true}))",
        selector,
        value,
    )


def loaded(ui) -> None:
    ui.wait(lambda _: not ui.find_all(".loading:not([hidden])"), what="the page loaded")


def open_license(ui, license_id: str) -> None:
    ui.open(f"/licenses/{license_id}")
    ui.visible("#details")
    loaded(ui)


def at_sizes(ui, name: str, path: str, ready: str) -> None:
    """The page is clean on a desktop and a phone (cards, no horizontal scroll, axe)."""
    for size_name, size in SIZES.items():
        ui.set_size(size)
        ui.open(path)
        ui.visible(ready)
        loaded(ui)
        page_is_clean(ui, f"licenses-ux-{name}-{size_name}")
    ui.set_size(DESKTOP)


# --- will this renew? -------------------------------------------------------------------


def test_renews_on_and_auto_renew_off_in_the_list_and_on_the_license(ui, suite, api, catalog):
    company = licensed_company(suite, api, machines=("WS-ENG-07",))
    token = company["token"]
    automatic = company["license_id"]
    second = buy(api, token, seats=1)
    cancelled = second["license"]["license_id"]
    recurring_id = second["recurring_payment"]["id"]
    answer = api.post(f"/api/v1/recurring-payments/{recurring_id}/cancel", token=token)
    assert answer.status_code == 200, answer.text
    listed = {
        item["license_id"]: item
        for item in api.get("/api/v1/licenses", token=token).json()["licenses"]
    }
    assert listed[automatic]["renewal"]["status"] == "automatic", listed[automatic]
    assert listed[cancelled]["renewal"]["status"] == "cancelled", listed[cancelled]

    log_in(ui, company["customer_id"])
    renews = ui.text_in(f"{row(automatic)} [data-renewal]", "Renews")
    # the plan's interval ("Yearly") once the gateway says it; never the plan's code
    assert re.fullmatch(rf"Renews {DATE} · ((Yearly|Monthly) · )?€[\d,]+\.\d\d", renews), renews
    off = ui.text_in(f"{row(cancelled)} [data-renewal]", "Auto-renew off")
    assert re.fullmatch(rf"Auto-renew off · ends {DATE}", off), off
    # a license that renews by itself is not "about to expire"
    assert "Expires in" not in ui.find(row(automatic)).text
    at_sizes(ui, "renewals-list", "/licenses", "#licenses")

    open_license(ui, automatic)
    text = ui.text_in("#renewal-text", "Renews automatically")
    assert re.fullmatch(
        rf"Renews automatically on {DATE} for €[\d,]+\.\d\d with Visa ····4242\.", text
    ), text
    assert ui.find("#renew").is_displayed()  # renewing early stays possible
    at_sizes(ui, "renewal-automatic", f"/licenses/{automatic}", "#renewal")

    open_license(ui, cancelled)
    text = ui.text_in("#renewal-text", "Auto-renew off")
    assert re.fullmatch(rf"Auto-renew off: the license ends on {DATE}\.", text), text
    link = ui.find("#renewal-actions a")
    assert link.text == "Turn automatic renewal back on"
    assert link.get_attribute("pathname") == "/recurring-payments"
    at_sizes(ui, "renewal-cancelled", f"/licenses/{cancelled}", "#renewal")


# --- why can't we use it? ---------------------------------------------------------------


def test_a_suspended_license_shows_its_reason_and_no_renew(ui, suite, api, catalog):
    company = new_company(suite)
    license_id = issue(suite, company["customer_id"], days=20)["license_id"]
    reason = "Invoice 2026-31 is unpaid"
    suite.portalctl("license", "suspend", license_id, "--reason", reason)

    log_in(ui, company["customer_id"])
    line = ui.text_in(row(license_id), "Suspended")
    assert reason in line and "Not renewed while suspended" in line, line
    assert "Expires in" not in line and "Renew to reactivate" not in line, line
    assert not ui.find_all(f"{row(license_id)} a.renew-link")
    at_sizes(ui, "suspended-list", "/licenses", "#licenses")

    open_license(ui, license_id)
    notice = ui.text_in("#suspension", "This license is suspended")
    assert f"Reason: {reason}." in notice and "contact support" in notice, notice
    assert "Expires in" not in ui.find("main").text  # no countdown on a license out of use
    assert not ui.find("#renew").is_displayed()
    assert not ui.find("#reactivate").is_displayed()
    assert not ui.find("#renewal").is_displayed()
    at_sizes(ui, "suspended-license", f"/licenses/{license_id}", "#suspension")


def test_an_expired_license_says_renew_to_reactivate(ui, suite, api, catalog):
    company = new_company(suite)
    license_id = issue(suite, company["customer_id"], days=-10)["license_id"]

    log_in(ui, company["customer_id"])
    link = ui.visible(f"{row(license_id)} a.renew-link")
    assert link.text.startswith("Renew to reactivate"), link.text
    assert link.get_attribute("href").endswith(f"/buy?license={license_id}")
    at_sizes(ui, "expired-list", "/licenses", "#licenses")

    open_license(ui, license_id)
    banner = ui.text_in("#expired-banner", "This license expired on")
    assert re.search(rf"expired on {DATE}\.", banner) and "Renew it to reactivate it" in banner, (
        banner
    )
    button = ui.visible("#reactivate")
    assert button.text == "Renew to reactivate"
    assert button.get_attribute("href").endswith(f"/buy?license={license_id}")
    assert not ui.find("#renew").is_displayed()  # one Renew, in the banner
    at_sizes(ui, "expired-license", f"/licenses/{license_id}", "#expired-banner")


def test_an_expired_license_tells_a_role_that_cannot_buy_who_can_renew(
    ui, suite, api, smtp_sink, catalog
):
    company = new_company(suite)
    license_id = issue(suite, company["customer_id"], days=-10)["license_id"]
    owner = api.login(company["customer_id"], PASSWORD)
    viewer = add_user(api, smtp_sink, owner, "viewer", "Vera Viewer")

    log_in(ui, viewer["email"], viewer["password"])
    said = ui.text_in(f"{row(license_id)} [data-renewal]", "Expired")
    assert said == "Expired · an owner or billing user can renew", said
    assert not ui.find_all(f"{row(license_id)} a.renew-link")


# --- which license is which? ------------------------------------------------------------


def test_a_nickname_edited_on_the_license_names_it_in_the_list(ui, suite, api, catalog):
    company = licensed_company(suite, api)
    named = company["license_id"]
    others = [issue(suite, company["customer_id"], days=days)["license_id"] for days in (90, 400)]
    nickname, note = "Design office Berlin", "PO 4711, for the structural team"

    log_in(ui, company["customer_id"])
    ui.wait(lambda _: len(shown_rows(ui)) == 3, what="three licenses")
    open_license(ui, named)
    ui.click("#edit-label")
    ui.visible("#label-dialog")
    assert ui.js("return document.activeElement.id") == "nickname"  # focus in the dialog
    page_is_clean(ui, "licenses-ux-edit-dialog")
    ui.fill("#nickname", nickname)
    ui.fill("#note", note)
    ui.click("#label-save")
    ui.wait(lambda _: not ui.find("#label-dialog").is_displayed(), what="the dialog closed")
    assert ui.js("return document.activeElement.id") == "edit-label"  # focus back where it was
    ui.text_in("#license-title", nickname)
    assert ui.find("#license-note").text == note
    assert named in ui.find("#license-subtitle").text
    ui.text_in("#label-status", "Saved")
    detail = api.get(f"/api/v1/licenses/{named}", token=company["token"]).json()
    assert (detail["nickname"], detail["note"]) == (nickname, note)
    at_sizes(ui, "nickname-license", f"/licenses/{named}", "#license-note")

    ui.open("/licenses")
    line = ui.text_in(row(named), nickname)
    assert note in line and "CAD Pro" in line and named in line, line
    # search by name (any case), by note, by another license's ID
    type_in(ui, "#license-search", "berlin")
    ui.wait(lambda _: shown_rows(ui) == [named], what="the search by name")
    ui.text_in("#licenses-count", "Showing 1 of 3 licenses")
    type_in(ui, "#license-search", "4711")
    ui.wait(lambda _: shown_rows(ui) == [named], what="the search by note")
    type_in(ui, "#license-search", others[1].lower())
    ui.wait(lambda _: shown_rows(ui) == [others[1]], what="the search by ID")
    type_in(ui, "#license-search", "no such license")
    ui.visible("#no-match")
    ui.click("#clear-filters")
    ui.wait(lambda _: len(shown_rows(ui)) == 3, what="all licenses again")
    # sort: by expiry (soonest first, the default), then by name
    assert shown_rows(ui) == [others[0], named, others[1]]  # 90 days, a year, 400 days
    choose(ui, "#sort", "name")
    ui.wait(lambda _: shown_rows(ui)[-1] == named, what="sorted by name")  # "CAD Pro" < "Design…"
    assert "sort=name" in ui.path  # a reload keeps the choice
    # filter by status
    choose(ui, "#filter-status", "expired")
    ui.visible("#no-match")
    ui.open("/licenses?q=berlin")
    ui.wait(lambda _: shown_rows(ui) == [named], what="the search from the address")
    assert ui.find("#license-search").get_attribute("value") == "berlin"
    at_sizes(ui, "nickname-list", "/licenses?q=berlin", "#licenses")


# --- which machines hold my seats? ------------------------------------------------------


def test_machines_last_seen_search_collapsed_deactivated_and_copy(ui, suite, api, catalog):
    company = licensed_company(suite, api, machines=("WS-ENG-07", "LAPTOP-ADA", "CAD-WS-12"))
    license_id, token = company["license_id"], company["token"]
    ids = company["installations"]
    retired = ids["CAD-WS-12"]
    answer = api.post(
        f"/api/v1/licenses/{license_id}/installations/{retired}/deactivate", token=token
    )
    assert answer.status_code == 200, answer.text

    log_in(ui, company["customer_id"])
    open_license(ui, license_id)
    ui.wait(lambda _: len(ui.find_all("#installations tbody tr")) == 2, what="two active machines")
    # last seen: relative words, the exact moment in the title
    seen = ui.find(f"#installations tr[data-installation-id='{ids['WS-ENG-07']}'] time.last-seen")
    words = seen.text.splitlines()[0]  # then the exact moment, for screen readers
    assert words == "just now" or "minute" in words, seen.text
    assert re.fullmatch(rf"{DATE}, \d{{1,2}}:\d\d [AP]M \S+", seen.get_attribute("title")), (
        seen.get_attribute("title")
    )
    # short installation IDs, whole in the title
    short = ui.find(f"#installations tr[data-installation-id='{ids['LAPTOP-ADA']}'] .id-short")
    assert short.text == ids["LAPTOP-ADA"][:6] + "…" + ids["LAPTOP-ADA"][-4:]
    assert short.get_attribute("title") == ids["LAPTOP-ADA"]
    assert ids["LAPTOP-ADA"] not in ui.find("#installations").text
    # the deactivated machine: collapsed, counted
    summary = ui.find("#deactivated-machines summary")
    assert summary.text == "Deactivated machines (1)"
    assert ui.find("#deactivated-machines").get_attribute("open") is None
    assert not ui.find(
        f"#deactivated-installations tr[data-installation-id='{retired}']"
    ).is_displayed()
    page_is_clean(ui, "licenses-ux-machines")
    summary.click()
    ui.text_in(f"#deactivated-installations tr[data-installation-id='{retired}']", "CAD-WS-12")

    # Copy copies the whole ID and says so to a screen reader
    ui.js(
        """
        window.__copied = [];
        navigator.clipboard.writeText = async (text) => { window.__copied.push(text); };
        """
    )
    button = f"#installations tr[data-installation-id='{ids['LAPTOP-ADA']}'] button.copy-id"
    ui.click(button)
    ui.text_in("#copy-status", "Copied the installation ID of LAPTOP-ADA")
    assert ui.js("return window.__copied") == [ids["LAPTOP-ADA"]]
    assert ui.find("#copy-status").get_attribute("aria-live") == "polite"
    assert ui.find(button).text.startswith("Copied")

    # search by machine name, then by a piece of an installation ID
    ui.js("document.getElementById('deactivated-machines').open = false")
    type_in(ui, "#machine-search", "laptop")
    ui.wait(
        lambda _: (
            [
                r.get_attribute("data-installation-id")
                for r in ui.find_all("#installations tbody tr")
            ]
            == [ids["LAPTOP-ADA"]]
        ),
        what="only LAPTOP-ADA",
    )
    ui.text_in("#machines-shown", "1 of 3 machines match")
    type_in(ui, "#machine-search", retired[5:20])
    ui.text_in(f"#deactivated-installations tr[data-installation-id='{retired}']", "CAD-WS-12")
    assert not ui.find("#installations").is_displayed()
    type_in(ui, "#machine-search", "")

    # the deactivation dialog says what the machine's software does next
    ui.click(f"#installations tr[data-installation-id='{ids['WS-ENG-07']}'] .cell-action button")
    text = confirm_dialog(ui)
    assert "free at once" in text and "grace period" in text and "stops working" not in text, text
    assert ui.js("return document.activeElement.id") == "confirm-cancel"
    ui.screenshot("licenses-ux-deactivate-confirm")
    ui.click("#confirm-ok")
    ui.text_in("#installations-status", "WS-ENG-07 is deactivated")
    ui.text_in("#deactivated-machines summary", "Deactivated machines (2)")
    assert len(ui.find_all("#installations tbody tr")) == 1
    ui.text_in("#f-seats", "1 of 3")
    # reloaded from the installations route, never the license's (which shows the activation
    # password and would record a viewing of it in the audit trail at each deactivation)
    machines = f"/api/v1/licenses/{license_id}/installations"
    fetched = ui.wait(
        lambda _: (paths := fetched_paths(ui)).count(machines) and paths, what="the reload"
    )
    assert fetched.count(f"/api/v1/licenses/{license_id}") == 1, fetched  # the page's load
    at_sizes(ui, "machines", f"/licenses/{license_id}", "#installations")


# --- Renew only when a plan is on sale --------------------------------------------------


def test_renew_is_absent_when_no_plan_of_the_product_is_on_sale(ui, suite, api, catalog):
    code = f"legacy{uuid.uuid4().hex[:6]}"
    suite.portalctl("product", "create", "--code", code, "--name", "Legacy Draft")
    company = new_company(suite)
    active = issue(suite, company["customer_id"], product=code, days=10)["license_id"]
    expired = issue(suite, company["customer_id"], product=code, days=-10)["license_id"]
    on_sale = issue(suite, company["customer_id"], days=10)["license_id"]  # cadpro: on sale

    log_in(ui, company["customer_id"])
    ui.wait(lambda _: len(shown_rows(ui)) == 3, what="three licenses")
    assert not ui.find_all(f"{row(expired)} a.renew-link")
    # nothing to buy: the cell says why instead of "Renew to reactivate"
    said = ui.text_in(f"{row(expired)} [data-renewal]", "Expired · no plan on sale")
    assert "Renew to reactivate" not in said, said

    open_license(ui, on_sale)
    assert ui.find("#renew").is_displayed()  # the rule is the product's plans, not a blanket no
    open_license(ui, active)
    assert not ui.find("#renew").is_displayed()
    page_is_clean(ui, "licenses-ux-no-plan-active")
    open_license(ui, expired)
    banner = ui.text_in("#expired-banner", "No plan of Legacy Draft is on sale")
    assert "contact sales" in banner, banner
    assert not ui.find("#reactivate").is_displayed() and not ui.find("#renew").is_displayed()
    at_sizes(ui, "no-plan-expired", f"/licenses/{expired}", "#expired-banner")

    # "not in your account": no Renew either
    stranger = new_company(suite)
    ui.reset()
    log_in(ui, stranger["customer_id"], PASSWORD)
    ui.open(f"/licenses/{on_sale}")
    ui.text_in("#error", "not in your account")
    assert not ui.find("#renew").is_displayed()
    at_sizes(ui, "not-in-account", f"/licenses/{on_sale}", "#error")
