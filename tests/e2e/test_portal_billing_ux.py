"""Issue 16, the billing side of the portal in headless Chromium, at desktop and phone width:
the buy page asks "new license or renewal" before the seats (a renewal keeps them) and says
what is paid now, until when the license runs and when it is charged next; a Renew link
from a license preselects it and offers only plans of its product; a recurring payment is
"automatic renewal", turned off with a dialog that says what happens and turned back on
while the period lasts; a receipt opens as a portal page with Print; an outage message has
a Retry that works once the service is back. Dates are formatted (times with their zone),
money with the currency's symbol.

Each journey has its own company, so the tests do not depend on order; every page is
checked (no horizontal scroll, no CSP or script error, no serious axe violation) and saved
under test-artifacts/ui/.
"""

from __future__ import annotations

import calendar
import re
import uuid
from datetime import UTC, datetime

import pytest

from tests.e2e.test_portal_team_ui import page_is_clean
from tests.e2e.test_portal_ui import (
    CARD_OK,
    PLAN,
    buy,
    confirm_dialog,
    licensed_company,
    log_in,
    new_company,
)
from tests.e2e.ui_browser import DESKTOP, PHONE

pytestmark = pytest.mark.e2e

SIZES = pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["desktop", "phone"])
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
# "Dec 3, 2026, 8:15 AM UTC": a time always with its zone
TIME_WITH_ZONE = re.compile(r"[A-Z][a-z]{2} \d{1,2}, \d{4}, \d{1,2}:\d{2}\s?[AP]M (UTC|GMT\S*)")


@pytest.fixture(scope="module")
def catalog(suite):
    """The demo product and plans (`portalctl demo` is idempotent)."""
    return suite.portalctl("demo")


@pytest.fixture
def ui(browser):
    browser.reset()
    yield browser
    browser.set_size(DESKTOP)


# --- helpers ----------------------------------------------------------------------------


def plus_a_year(moment: datetime) -> datetime:
    """billing's `add_interval(moment, "year")`: the same day a year on (Feb 29 → Feb 28)."""
    year = moment.year + 1
    last = calendar.monthrange(year, moment.month)[1]
    return moment.replace(year=year, day=min(moment.day, last))


def day(moment: datetime) -> str:
    """As the portal shows a date in an en-US browser: "Dec 3, 2027" (the UTC day)."""
    return f"{moment.strftime('%b')} {moment.day}, {moment.year}"


def parse(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00"))


def start(ui, size, login: str) -> None:
    ui.set_size(size)
    log_in(ui, login)


def loaded(ui) -> None:
    ui.wait(lambda _: not ui.find_all(".loading:not([hidden])"), what="loaded")


def no_raw_dates(ui, selector: str = "main") -> None:
    text = ui.find(selector).text
    assert not ISO_DATE.search(text), text
    assert "EUR " not in text, text  # money with the currency's symbol, never its code


def orphan_license(suite, customer_id: str) -> dict:
    """A license of a product that has no plan on sale."""
    code = f"ux-{uuid.uuid4().hex[:8]}"
    suite.portalctl("product", "create", "--code", code, "--name", "Legacy Viewer")
    return suite.portalctl(
        "license", "issue", "--customer", customer_id, "--product", code,
        "--seats", "2", "--expires", "2099-12-31",
    )  # fmt: skip


# --- buy or renew -------------------------------------------------------------------------


@SIZES
def test_buy_asks_new_or_renew_first_and_says_until_when(ui, suite, api, catalog, size):
    company = licensed_company(suite, api)
    license = api.get(f"/api/v1/licenses/{company['license_id']}", token=company["token"]).json()
    start(ui, size, company["customer_id"])
    ui.open("/buy")
    ui.visible("#buy-form")
    legends = [legend.text for legend in ui.find_all("#buy-form legend")]
    assert legends == ["1. New license or renewal", "2. Plan", "3. Seats", "4. Card"], legends
    assert ui.find("#kind-new").is_selected()

    # a new license: the seats are chosen; paid now, runs a year from today
    ui.click(f"label[for='plan-{PLAN}']")
    ui.fill("#seats", "2")
    until = day(plus_a_year(datetime.now(UTC)))
    line = ui.text_in("#sum-line", "You pay")
    assert line == (
        f"You pay €980.00 now; the license runs until {until}; next automatic charge {until}."
    ), line
    assert ui.find("#sum-until").text == until
    page_is_clean(ui, f"ux-buy-new-{size[0]}")
    # the live sentence is shown at once but said once the typing pauses, not at each
    # keystroke ("1", "12"): the changes made while it is live are the ones announced
    ui.js(
        """window.sumLines = [];
        const line = document.getElementById("sum-line");
        new MutationObserver(() => window.sumLines.push(
            [line.getAttribute("aria-live"), line.textContent]))
          .observe(line, {childList: true, characterData: true, subtree: true});"""
    )
    ui.fill("#seats", "12")
    line = ui.text_in("#sum-line", "You pay €5,880.00 now")
    ui.wait(lambda _: ["polite", line] in ui.js("return window.sumLines"), what="said once")
    said = [text for live, text in ui.js("return window.sumLines") if live == "polite" and text]
    assert said == [line], ui.js("return window.sumLines")
    ui.fill("#seats", "2")
    ui.text_in("#sum-line", "You pay €980.00 now")

    # a renewal: the license chosen second, its seats fixed, the year added to its expiry
    ui.click("label[for='kind-renew']")
    ui.visible("#license")
    assert ui.find("#license").get_attribute("value") == company["license_id"]
    option = ui.find("#license option").text
    assert "CAD Pro" in option and company["license_id"] in option
    assert not ISO_DATE.search(option), option
    ui.wait(lambda _: ui.find("#seats").get_attribute("value") == "3", what="the license's seats")
    assert ui.find("#seats").get_attribute("readonly") is not None
    assert "keeps the license's 3 seats" in ui.find("#seats-hint").text
    renewed_until = day(plus_a_year(parse(license["expires_at"])))
    line = ui.text_in("#sum-line", renewed_until)
    assert line.startswith("You pay €1,470.00 now;"), line
    assert f"next automatic charge {renewed_until}" in line
    assert company["license_id"] in ui.find("#sum-for").text
    no_raw_dates(ui, "#buy-form")
    page_is_clean(ui, f"ux-buy-renew-{size[0]}")

    ui.fill("#card-number", CARD_OK)
    ui.fill("#card-expiry", "1231")
    ui.fill("#card-cvc", "123")
    ui.click("#pay")
    done = ui.text_in("#done", "payment went through", timeout=20)
    assert "is extended" in done and "€1,470.00" in done
    receipt = ui.find("#done a[href^='/payments/']")
    assert receipt.get_attribute("target") in (None, "")  # the same tab
    after = api.get(f"/api/v1/licenses/{company['license_id']}", token=company["token"]).json()
    assert day(parse(after["expires_at"])) == renewed_until


@SIZES
def test_renew_link_preselects_the_license_and_never_offers_another_product(
    ui, suite, api, catalog, size
):
    company = licensed_company(suite, api)
    legacy = orphan_license(suite, company["customer_id"])
    start(ui, size, company["customer_id"])

    ui.open(f"/buy?license_id={company['license_id'].lower()}")
    ui.visible("#buy-form")
    ui.wait(lambda _: ui.find("#kind-renew").is_selected(), what="renewal chosen")
    assert ui.find("#license").get_attribute("value") == company["license_id"]
    offered = [plan.text for plan in ui.find_all("#plans .plan") if plan.is_displayed()]
    assert offered and all(name.startswith("CAD Pro · ") for name in offered), offered
    assert not any("floating" in name for name in offered), offered  # the license's model only
    assert ui.find("#plans .plan:not([hidden]) input:checked")
    page_is_clean(ui, f"ux-buy-renew-link-{size[0]}")

    # a license whose product has no plan on sale: said clearly, nothing else offered
    ui.open(f"/buy?license_id={legacy['license_id']}")
    ui.visible("#buy-form")
    message = ui.text_in("#no-plan", "No plan of Legacy Viewer is on sale")
    assert legacy["license_id"] in message and "contact sales" in message
    assert ui.find("#license").get_attribute("value") == legacy["license_id"]
    assert not [plan for plan in ui.find_all("#plans .plan") if plan.is_displayed()]
    assert not ui.find("#pay").is_enabled()
    assert "CAD Pro" not in ui.find("#plans").text
    page_is_clean(ui, f"ux-buy-renew-nothing-on-sale-{size[0]}")


# --- recurring payments -------------------------------------------------------------------


@SIZES
def test_turning_automatic_renewal_off_says_what_happens_and_it_turns_back_on(
    ui, suite, api, catalog, size
):
    company = licensed_company(suite, api)
    license_id = company["license_id"]
    second = buy(api, company["token"], seats=1)["license"]["license_id"]
    named = api.patch(
        f"/api/v1/licenses/{license_id}", token=company["token"], json={"nickname": "Design office"}
    )
    assert named.status_code == 200, named.text
    start(ui, size, company["customer_id"])
    ui.open("/recurring-payments")
    ui.visible("#recurring")
    rows = {row.get_attribute("data-id"): row.text for row in ui.find_all("#recurring tbody tr")}
    assert len(rows) == 2
    # the rows are told apart: the nickname, else the product, with the license ID
    titled = ui.text_in("#recurring tbody tr", "Design office")
    assert license_id in titled and "€1,470.00 / year" in titled
    other = next(text for text in rows.values() if second in text)
    assert "CAD Pro" in other
    no_raw_dates(ui, "#recurring")
    page_is_clean(ui, f"ux-recurring-{size[0]}")

    row = f"#recurring tbody tr:has(a[href='/licenses/{license_id}'])"
    turn_off = ui.find(f"{row} button[data-action=cancel]")
    assert "Turn off automatic renewal" in turn_off.text
    turn_off.click()
    text = confirm_dialog(ui)
    assert text.startswith("Turn off automatic renewal of Design office"), text
    assert "stays valid until its paid period ends on" in text and "No more charges" in text
    assert "Cancel" not in text
    assert ui.find("#confirm-ok").text == "Turn off automatic renewal"
    assert ui.find("#confirm-cancel").text == "Keep it on"
    page_is_clean(ui, f"ux-recurring-turn-off-dialog-{size[0]}")
    ui.click("#confirm-cancel")  # kept on: nothing changed
    ui.wait(lambda _: not ui.find("#confirm-dialog").is_displayed(), what="dialog closed")
    assert ui.text_in(row, "Auto-renew on")

    ui.find(f"{row} button[data-action=cancel]").click()
    confirm_dialog(ui)
    ui.click("#confirm-ok")
    ui.text_in("#status", "is off")
    off = ui.text_in(row, "Auto-renew off")
    assert "the license ends on" in off
    back_on = ui.find(f"{row} button[data-action=resume]")
    assert "Turn automatic renewal back on" in back_on.text
    page_is_clean(ui, f"ux-recurring-off-{size[0]}")
    back_on.click()
    ui.text_in("#status", "back on")
    ui.text_in(row, "Auto-renew on")
    items = api.get("/api/v1/recurring-payments", token=company["token"]).json()
    mine = next(item for item in items["recurring_payments"] if item["license_id"] == license_id)
    assert mine["status"] == "active"


# --- payments and receipts ----------------------------------------------------------------


@SIZES
def test_a_receipt_opens_in_the_portal_with_print(ui, suite, api, catalog, size):
    company = licensed_company(suite, api)
    receipt = company["purchase"]["payment"]["receipt_number"]
    start(ui, size, company["customer_id"])
    ui.open("/payments")
    ui.visible("#payments")
    row = ui.find(f"#payments tr[data-receipt='{receipt}']").text
    assert "€1,470.00" in row
    assert TIME_WITH_ZONE.search(row), row  # when it was paid, with the time zone
    no_raw_dates(ui, "#payments")
    page_is_clean(ui, f"ux-payments-{size[0]}")
    windows = len(ui.driver.window_handles)
    link = ui.find(f"#payments tr[data-receipt='{receipt}'] a[data-action=receipt]")
    assert link.get_attribute("target") in (None, "")
    link.click()
    ui.at(f"/payments/{receipt}")
    assert len(ui.driver.window_handles) == windows  # the same tab
    ui.visible("#print")
    body = ui.find("main").text
    assert receipt in body and "€1,470.00" in body
    assert not ISO_DATE.search(ui.find(".receipt-lines").text)
    page_is_clean(ui, f"ux-receipt-{size[0]}")


# --- outages ------------------------------------------------------------------------------


def test_an_outage_message_has_a_retry_that_works_once_the_service_is_back(ui, suite, catalog):
    company = new_company(suite)
    for size in (DESKTOP, PHONE):
        ui.reset()
        start(ui, size, company["customer_id"])
        suite.stop("billing")
        try:
            ui.open("/recurring-payments")
            message = ui.text_in("#error", "temporarily unavailable", timeout=20)
            assert "Retry" in message
            page_is_clean(ui, f"ux-outage-retry-{size[0]}")
        finally:
            suite.start("billing")
            suite.wait_ready(timeout=90)
        ui.click("#error button.retry")
        ui.wait(lambda _: not ui.find("#error").is_displayed(), what="the error gone")
        ui.visible("#empty")  # loaded: this company has no recurring payment
        assert ui.path == "/recurring-payments"
        # the keyboard goes to the page's heading, not back to <body>
        assert ui.js("return document.activeElement.tagName") == "H1"
        loaded(ui)
