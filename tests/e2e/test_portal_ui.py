"""The portal in headless Chromium against the real suite: the journeys of a customer.

One browser for the module. Each journey starts as a fresh visitor with its own company
(created by `portalctl`, given licenses by buying through the API), so tests do not depend
on order. Every page is saved under test-artifacts/ui/ to be looked at.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from nameko.standalone.events import event_dispatcher
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.keys import Keys

from tests.e2e.ui_browser import DESKTOP, PHONE
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e

PASSWORD = "Winter-Orchard-42"
NEW_PASSWORD = "Harbour-Lantern-97"
CARD_OK = "4242424242424242"
CARD_DECLINED = "4000000000000002"
PLAN = "cadpro-yearly"
RESET_LINK = re.compile(r"(https?://\S+/reset-password#token=[A-Za-z0-9_\-]+)")


@pytest.fixture(scope="module")
def catalog(suite):
    """The demo product and plans (`portalctl demo` is idempotent)."""
    return suite.portalctl("demo")


@pytest.fixture
def ui(browser):
    browser.reset()
    return browser


def new_company(suite, name: str = "Acme Engineering") -> dict:
    email = f"ui.{uuid.uuid4().hex[:10]}@example.test"
    return suite.portalctl(
        "company", "create", "--name", name, "--contact-name", "Ada Lovelace",
        "--email", email, "--password", PASSWORD,
    )  # fmt: skip


def buy(api, token: str, seats: int = 3, plan: str = PLAN) -> dict:
    card = {"number": CARD_OK, "exp_month": 12, "exp_year": 2031, "cvc": "123"}
    response = api.post(
        "/api/v1/purchases", token=token, json={"plan": plan, "seats": seats, "card": card}
    )
    assert response.status_code == 201, response.text
    return response.json()


def licensed_company(suite, api, machines: tuple[str, ...] = ()) -> dict:
    """A company with one license of 3 seats, activated on `machines`."""
    company = new_company(suite)
    token = api.login(company["customer_id"], PASSWORD)
    purchase = buy(api, token)
    license = purchase["license"]
    assert license, purchase
    detail = api.get(f"/api/v1/licenses/{license['license_id']}", token=token).json()
    installations = {}
    for machine in machines:
        installation_id = f"inst-{uuid.uuid4().hex}{uuid.uuid4().hex}"
        response = api.post(
            "/api/v1/activations",
            json={
                "license_id": license["license_id"],
                "password": detail["activation_password"],
                "installation_id": installation_id,
                "machine_name": machine,
            },
        )
        assert response.status_code == 201, response.text
        installations[machine] = installation_id
    return {
        **company,
        "token": token,
        "license_id": license["license_id"],
        "activation_password": detail["activation_password"],
        "installations": installations,
        "purchase": purchase,
    }


def log_in(ui, login: str, password: str = PASSWORD, expect: str = "/licenses") -> None:
    ui.open("/login")
    ui.visible("#login")
    ui.fill("#login", login)
    ui.fill("#password", password)
    ui.click("#login-form button[type=submit]")
    ui.at(expect)


def confirm_dialog(ui) -> str:
    """The open confirmation's text (title + body), once it is shown."""
    ui.visible("#confirm-dialog")
    return ui.find("#confirm-title").text + " " + ui.find("#confirm-text").text


# --- logging in and out -----------------------------------------------------------------


def test_wrong_password_then_login_by_customer_id(ui, suite, catalog):
    company = new_company(suite)
    ui.open("/")
    ui.at("/login")
    ui.visible("#login")
    text = ui.find("main").text
    assert "Forgot password?" in text
    assert "Contact sales" in text and "company details" in text
    ui.screenshot("login")

    ui.fill("#login", company["customer_id"])
    ui.fill("#password", "not the password")
    ui.click("#login-form button[type=submit]")
    message = ui.text_in("#form-error", "do not match")
    assert "customer ID or email" in message
    assert ui.js("return document.activeElement.id") == "password"
    ui.screenshot("login-wrong-password")

    ui.fill("#password", PASSWORD)
    ui.click("#login-form button[type=submit]")
    ui.at("/licenses")
    ui.visible("#empty")  # a new company has no licenses yet
    assert company["name"] in ui.find(".who-name").text


def test_throttled_login_says_how_long_to_wait(ui, suite):
    company = new_company(suite)
    ui.open("/login")
    ui.visible("#login")
    ui.fill("#login", company["contact_email"])
    for _ in range(5):
        ui.fill("#password", "wrong password")
        ui.click("#login-form button[type=submit]")
        ui.text_in("#form-error", "do not match")
        ui.js("document.getElementById('form-error').hidden = true")
    ui.fill("#password", PASSWORD)
    ui.click("#login-form button[type=submit]")
    message = ui.text_in("#form-error", "Too many")
    assert re.search(r"Try again in \d+ (minutes?|seconds?)", message), message
    ui.screenshot("login-throttled")


def test_keyboard_only_login_with_tab_and_enter(ui, suite):
    company = new_company(suite)
    ui.open("/login")
    ui.wait(lambda _: ui.js("return document.activeElement.id") == "login", what="focus")
    ActionChains(ui.driver).send_keys(company["customer_id"], Keys.TAB).perform()
    assert ui.js("return document.activeElement.id") == "password"
    # the focused field shows a visible focus ring
    ring = ui.js("return getComputedStyle(document.activeElement).boxShadow")
    assert ring and ring != "none", ring
    ActionChains(ui.driver).send_keys(PASSWORD, Keys.ENTER).perform()
    ui.at("/licenses")
    # the main navigation is reachable with Tab: skip link first, then the brand and the pages
    ui.js("document.activeElement.blur()")
    ActionChains(ui.driver).send_keys(Keys.TAB).perform()
    assert ui.js("return document.activeElement.className") == "skip-link"


def test_login_by_email_account_page_and_logout(ui, suite):
    company = new_company(suite, name="Ångström Tools & Co")
    log_in(ui, company["contact_email"].upper())
    cookies = {cookie["name"]: cookie for cookie in ui.driver.get_cookies()}
    session = cookies["portal_session"]
    assert session["httpOnly"] is True and session["sameSite"] in ("Lax", "Strict")
    assert cookies["portal_csrf"]["httpOnly"] is False
    # the token is never visible to scripts, nothing is kept in web storage
    assert "portal_session" not in ui.js("return document.cookie")
    assert ui.js("return localStorage.length + sessionStorage.length") == 0

    ui.click("a[href='/account']")
    ui.at("/account")
    assert ui.find("#a-name").text == "Ångström Tools & Co"
    assert ui.find("#a-customer-id").text == company["customer_id"]
    assert ui.find("#a-contact").text == "Ada Lovelace"
    assert ui.find("#a-email").text == company["contact_email"].lower()
    ui.screenshot("account")

    ui.click("#logout")
    ui.at("/login")
    ui.text_in("#notice", "logged out")
    ui.screenshot("logged-out")
    assert not any(cookie["name"] == "portal_session" for cookie in ui.driver.get_cookies())
    # the session was revoked on the server, not only forgotten by the browser
    assert suite.api.get("/api/v1/account", token=session["value"]).status_code == 401
    ui.open("/licenses")
    ui.at("/login?next=")


def test_change_password_on_the_account_page(ui, suite, api):
    company = new_company(suite)
    other_session = api.login(company["customer_id"], PASSWORD)
    log_in(ui, company["customer_id"])
    ui.open("/account")
    ui.visible("#password-form")

    ui.fill("#current-password", "not the password")
    ui.fill("#new-password", NEW_PASSWORD)
    ui.fill("#confirm-password", NEW_PASSWORD)
    ui.click("#password-form button[type=submit]")
    ui.text_in("#form-error", "current password is not correct")

    ui.fill("#current-password", PASSWORD)
    ui.fill("#new-password", "short")
    assert len(ui.find_all("#rules li.met")) < 4
    ui.click("#password-form button[type=submit]")
    ui.text_in("#form-error", "rules")
    ui.screenshot("account-password-rules")

    ui.fill("#new-password", NEW_PASSWORD)
    ui.wait(lambda _: len(ui.find_all("#rules li.met")) == 4, what="all rules met")
    ui.fill("#confirm-password", NEW_PASSWORD)
    ui.click("#password-form button[type=submit]")
    ui.text_in("#form-done", "password is changed")
    ui.screenshot("account-password-changed")
    assert api.login(company["customer_id"], NEW_PASSWORD)
    assert api.get("/api/v1/account", token=other_session).status_code == 401
    ui.open("/licenses")  # this browser's session lives on
    ui.at("/licenses")


def test_forgot_password_email_link_sets_a_new_password(ui, suite, smtp_sink):
    company = new_company(suite)
    ui.open("/login")
    ui.click("#forgot-link")
    ui.at("/forgot-password")
    ui.screenshot("forgot-password")
    ui.fill("#login", company["contact_email"])
    ui.click("#forgot-form button[type=submit]")
    ui.text_in("#sent", "Check your inbox")
    ui.screenshot("forgot-password-sent")

    message = smtp_sink.wait_for(
        lambda m: (
            company["contact_email"].lower() in (m["To"] or "").lower()
            and "eset" in (m["Subject"] or "")
        ),
        timeout=20,
    )
    body = message.get_body(preferencelist=("plain",)).get_content()
    link = RESET_LINK.search(body).group(1)
    ui.open(link)
    ui.visible("#new-password")
    assert "#token" not in ui.driver.current_url  # the token leaves the address bar
    ui.fill("#new-password", "short")
    ui.fill("#confirm-password", "short")
    ui.click("#reset-form button[type=submit]")
    ui.text_in("#form-error", "rules")
    ui.fill("#new-password", NEW_PASSWORD)
    ui.fill("#confirm-password", NEW_PASSWORD + "x")
    ui.click("#reset-form button[type=submit]")
    ui.text_in("#form-error", "not the same")
    ui.screenshot("reset-password")
    ui.fill("#confirm-password", NEW_PASSWORD)
    ui.click("#reset-form button[type=submit]")
    ui.text_in("#done", "password is set")
    ui.screenshot("reset-password-done")

    ui.click("#done a")
    ui.at("/login")
    ui.fill("#login", company["customer_id"])
    ui.fill("#password", NEW_PASSWORD)
    ui.click("#login-form button[type=submit]")
    ui.at("/licenses")

    # the same link a second time: said at once, before any typing, with the way to a new one
    ui.open(link)
    ui.text_in("#link-dead", "already used")
    assert not ui.find("#reset-form").is_displayed()
    assert ui.find("#new-link").get_attribute("pathname") == "/forgot-password"


# --- licenses ---------------------------------------------------------------------------


def test_licenses_details_password_and_deactivation(ui, suite, api, catalog):
    company = licensed_company(suite, api, machines=("WS-ENG-07", "LAPTOP-ADA"))
    license_id = company["license_id"]
    product = company["purchase"]["license"]["product"]["code"]
    today = datetime.now(UTC).date()
    for days in (-40, 10):  # one expired (staff must insist), one expiring soon
        suite.portalctl(
            "license", "issue", "--customer", company["customer_id"], "--product", product,
            "--seats", "1", "--expires", (today + timedelta(days=days)).isoformat(),
            *(["--force"] if days < 0 else []),
        )  # fmt: skip
    log_in(ui, company["customer_id"])
    row = ui.visible(f"#licenses tbody tr a[href='/licenses/{license_id}']")
    ui.wait(lambda _: len(ui.find_all("#licenses tbody tr")) == 3, what="three licenses")
    table = ui.find("#licenses").text
    assert license_id in table and "CAD Pro" in table and "2 / 3" in table
    assert "Active" in table
    assert len(ui.find_all("#licenses .expiry-past")) == 1  # expired: marked in red
    assert ui.find("#licenses").text.count("Expired") == 1  # and its status says so
    soon = ui.find_all("#licenses .expiry-soon .badge-warn")
    assert [item.text for item in soon] == ["Expires in 10 days"]
    ui.screenshot("licenses")

    row.click()
    ui.at(f"/licenses/{license_id}")
    ui.visible("#details")
    assert ui.find("#f-seats").text == "2 of 3"
    assert ui.find("#f-product").text == "CAD Pro"
    password = company["activation_password"]
    assert password not in ui.find("main").text  # hidden until revealed
    ui.click("#reveal")
    assert ui.find("#activation-password").text == password
    assert ui.find("#reveal").get_attribute("aria-pressed") == "true"
    ui.click("#copy")
    ui.text_in("#password-status", "copied")
    ui.wait(lambda _: len(ui.find_all("#history tbody tr")) >= 2, what="history")
    assert "WS-ENG-07" in ui.find("#installations").text
    ui.screenshot("license-details")

    # rotate, with a confirmation; Escape backs out with the keyboard
    ui.click("#rotate")
    confirm_dialog(ui)
    assert ui.js("return document.activeElement.id") == "confirm-cancel"  # the safe choice
    ActionChains(ui.driver).send_keys(Keys.ESCAPE).perform()
    ui.wait(lambda _: not ui.find("#confirm-dialog").is_displayed(), what="dialog closed")
    assert ui.find("#activation-password").text == password
    ui.click("#rotate")
    assert "stops working" in confirm_dialog(ui)
    ui.screenshot("license-rotate-confirm")
    ui.click("#confirm-ok")
    ui.text_in("#password-status", "New activation password created")
    rotated = ui.find("#activation-password").text
    assert rotated != password and re.fullmatch(r"[A-Z0-9]{4}(-[A-Z0-9]{4}){3}", rotated)
    refused = api.post(
        "/api/v1/activations",
        json={
            "license_id": license_id,
            "password": password,
            "installation_id": "inst-" + uuid.uuid4().hex * 2,
            "machine_name": "NEW-PC",
        },
    )
    assert refused.status_code == 401

    # deactivate a machine: the confirmation names it; cancelling changes nothing
    button = "#installations tr[data-installation-id='{}'] .cell-action button".format(
        company["installations"]["WS-ENG-07"]
    )
    ui.click(button)
    text = confirm_dialog(ui)
    assert "WS-ENG-07" in text and "seat" in text
    assert "WS-ENG-07" in ui.find("#confirm-ok").text
    ui.screenshot("license-deactivate-confirm")
    ui.click("#confirm-cancel")
    assert ui.find("#f-seats").text == "2 of 3"
    ui.click(button)
    confirm_dialog(ui)
    ui.click("#confirm-ok")
    ui.text_in("#installations-status", "WS-ENG-07 is deactivated")
    ui.wait(lambda _: ui.find("#f-seats").text == "1 of 3", what="seat freed")
    # deactivated machines are kept apart, collapsed, with when and by whom
    ui.text_in("#deactivated-machines summary", "Deactivated machines (1)")
    ui.click("#deactivated-machines summary")
    row_text = ui.text_in(
        "#deactivated-installations tr[data-installation-id='{}']".format(
            company["installations"]["WS-ENG-07"]
        ),
        "by the portal",
    )
    assert "WS-ENG-07" in row_text
    ui.wait(lambda _: "Deactivated" in ui.find("#history").text, what="history entry")
    assert "The portal" in ui.find("#history").text
    ui.screenshot("license-after-deactivation")

    detail = api.get(f"/api/v1/licenses/{license_id}", token=company["token"]).json()
    assert detail["seats_in_use"] == 1
    gone = [i for i in detail["installations"] if i["machine_name"] == "WS-ENG-07"]
    assert gone[0]["deactivated_by"] == "portal"


def test_another_companys_license_is_not_found(ui, suite, api, catalog):
    owner = licensed_company(suite, api)
    stranger = new_company(suite)
    log_in(ui, stranger["customer_id"])
    ui.open(f"/licenses/{owner['license_id']}")
    ui.text_in("#error", "not in your account")
    assert owner["activation_password"] not in ui.driver.page_source


def test_a_suspended_license_shows_why_and_cannot_be_renewed(ui, suite, api, catalog):
    company = licensed_company(suite, api)
    license_id = company["license_id"]
    reason = "Invoice 2026-17 is unpaid; call +49 30 1234 5678"
    suite.portalctl("license", "suspend", license_id.lower(), "--reason", reason)
    log_in(ui, company["customer_id"])
    ui.text_in("#licenses tbody tr", "Suspended")
    assert reason in ui.find("#licenses .suspension-reason").text
    ui.screenshot("licenses-suspended")

    ui.open(f"/licenses/{license_id.lower()}")  # any case finds the license
    ui.visible("#details")
    notice = ui.text_in("#suspension", "suspended")
    assert reason in notice
    assert ui.find("#f-suspension-reason").text == reason
    assert not ui.find("#renew").is_displayed()
    assert ui.find("#f-license-id").text == license_id
    ui.screenshot("license-suspended")

    suite.portalctl("license", "resume", license_id)
    ui.open(f"/licenses/{license_id}")
    ui.visible("#details")
    ui.text_in("#f-status", "Active")
    assert not ui.find("#suspension").is_displayed()
    assert ui.find("#renew").is_displayed()


# --- billing ----------------------------------------------------------------------------


def test_billing_details_are_edited_and_make_out_the_next_receipt(ui, suite, api, catalog):
    company = new_company(suite, name="Acme Engineering")
    log_in(ui, company["customer_id"])
    ui.open("/account")
    ui.visible("#billing-form")
    # nothing saved yet: the company's name is offered
    assert ui.find("#billing-company").get_attribute("value") == "Acme Engineering"
    ui.fill("#billing-address", "")
    ui.click("#billing-form button[type=submit]")
    ui.text_in("#billing-error", "billing address")
    ui.fill("#billing-company", "Acme Engineering GmbH")
    ui.fill("#billing-address", "Hauptstraße 1\n10115 Berlin\nGermany")
    ui.fill("#billing-vat", "DE123456789")
    ui.click("#billing-form button[type=submit]")
    ui.text_in("#billing-done", "saved")
    ui.screenshot("account-billing-details")
    token = api.login(company["customer_id"], PASSWORD)
    saved = api.get("/api/v1/account/billing-details", token=token).json()
    assert saved == {
        "company_name": "Acme Engineering GmbH",
        "address": "Hauptstraße 1\n10115 Berlin\nGermany",
        "vat_id": "DE123456789",
    }
    ui.open("/account")
    ui.visible("#billing-form")
    ui.wait(lambda _: ui.find("#billing-vat").get_attribute("value") == "DE123456789", what="vat")

    receipt = buy(api, token, seats=1)["payment"]["receipt_number"]
    ui.open(f"/api/v1/payments/{receipt.lower()}/receipt")
    ui.wait(lambda d: receipt in d.find_element("tag name", "body").text, what="receipt")
    buyer = ui.find("#buyer").text
    for part in ("Acme Engineering GmbH", "Hauptstraße 1\n10115 Berlin\nGermany", "DE123456789"):
        assert part in buyer, buyer
    assert ui.find("#vendor").text.strip()
    body = ui.find("body").text
    assert "CAD Pro" in body and "€490.00" in body
    ui.screenshot("receipt-billed-to")


def licensing_could_not_apply(suite, customer_id: str, receipt_number: str, reason: str) -> None:
    """Licensing's `payment_not_applied` for a paid payment, published as licensing does
    (its own bus user, a fresh event ID): billing refunds the payment."""
    dispatch = event_dispatcher(uri=suite.env_of("licensing")["AMQP_URI"])
    dispatch(
        "licensing",
        "payment_not_applied",
        {
            "event_id": uuid.uuid4().hex,
            "occurred_at": datetime.now(UTC).isoformat(),
            "customer_id": customer_id,
            "receipt_number": receipt_number,
            "reason": reason,
            "message": "The product is no longer sold.",
        },
    )


def test_a_refunded_payment_is_shown_as_refunded(ui, suite, api, catalog):
    company = licensed_company(suite, api)
    receipt = company["purchase"]["payment"]["receipt_number"]
    licensing_could_not_apply(suite, company["customer_id"], receipt, "product_archived")

    def refunded() -> dict | None:
        payments = api.get("/api/v1/payments", token=company["token"]).json()["payments"]
        return next((p for p in payments if p["status"] == "refunded"), None)

    payment = eventually(refunded, timeout=30, what="the refund")
    assert payment["receipt_number"] == receipt and payment["refunded_at"]
    log_in(ui, company["customer_id"])
    ui.open("/payments")
    row = ui.text_in(f"#payments tr[data-receipt='{receipt}']", "Refunded")
    assert "no longer sold" in row and "€1,470.00" in row
    assert ui.find_all(f"#payments tr[data-receipt='{receipt}'] s")  # the amount struck through
    ui.screenshot("payments-refunded")
    ui.open(f"/api/v1/payments/{receipt}/receipt")
    ui.text_in("#refunded", "Refunded on")
    ui.screenshot("receipt-refunded")
    # the recurring payment it started has ended, and cannot be resumed
    ui.open("/recurring-payments")
    ui.text_in("#recurring tbody tr", "Ended")
    assert not ui.find_all("#recurring tbody tr button")


def test_payment_history_loads_more(ui, suite, api, catalog):
    company = licensed_company(suite, api)
    for _ in range(2):
        buy(api, company["token"], seats=1)
    payments = api.get("/api/v1/payments?limit=2", token=company["token"]).json()
    assert len(payments["payments"]) == 2 and payments["next_before"]
    log_in(ui, company["customer_id"])
    ui.open("/payments?limit=2")
    ui.visible("#payments")
    assert len(ui.find_all("#payments tbody tr")) == 2
    ui.click("#more")
    ui.wait(lambda _: len(ui.find_all("#payments tbody tr")) == 3, what="the third payment")
    ui.wait(lambda _: not ui.find("#more").is_displayed(), what="no more to load")
    shown = [row.get_attribute("data-receipt") for row in ui.find_all("#payments tbody tr")]
    assert shown[-1] == company["purchase"]["payment"]["receipt_number"]  # the oldest last
    assert len(set(shown)) == 3
    ui.screenshot("payments-load-more")


def test_payment_history_receipt_and_recurring_cancel(ui, suite, api, catalog):
    company = licensed_company(suite, api)
    receipt = company["purchase"]["payment"]["receipt_number"]
    log_in(ui, company["customer_id"])
    ui.click("a[href='/payments']")
    ui.at("/payments")
    ui.visible("#payments")
    table = ui.find("#payments").text
    assert receipt in table
    assert "€1,470.00" in table  # 3 seats × €490.00, the one money format
    ui.screenshot("payments")

    # the receipt is a portal page, in the same tab
    ui.click("#payments a[data-action=receipt]")
    ui.at(f"/payments/{receipt}")
    ui.wait(lambda d: receipt in d.find_element("tag name", "body").text, what="receipt")
    body = ui.find("body").text
    assert company["name"] in body and "1,470.00" in body
    ui.screenshot("receipt")

    ui.open("/recurring-payments")
    ui.visible("#recurring")
    row = ui.find("#recurring tbody tr").text
    assert "CAD Pro" in row and "€1,470.00 / year" in row and "Auto-renew on" in row
    ui.screenshot("recurring-payments")
    ui.click("#recurring tbody tr button[data-action=cancel]")
    text = confirm_dialog(ui)
    assert "CAD Pro" in text and company["license_id"] in text
    ui.screenshot("recurring-cancel-confirm")
    ui.click("#confirm-ok")
    ui.text_in("#status", "is off")
    ui.text_in("#recurring tbody tr", "Auto-renew off")
    assert not ui.find_all("#recurring tbody tr button[data-action=cancel]")
    items = api.get("/api/v1/recurring-payments", token=company["token"]).json()
    assert items["recurring_payments"][0]["status"] == "cancelled"

    # changed their mind: the paid year has not ended, so it can be resumed
    assert "the license ends on" in ui.find("#recurring tbody tr").text
    ui.screenshot("recurring-cancelled-resumable")
    ui.click("#recurring tbody tr button[data-action=resume]")
    ui.text_in("#status", "back on")
    ui.text_in("#recurring tbody tr", "Auto-renew on")
    items = api.get("/api/v1/recurring-payments", token=company["token"]).json()
    assert items["recurring_payments"][0]["status"] == "active"

    # a new card: a declined one changes nothing, a good one is charged from now on
    ui.click("#recurring tbody tr button[data-action=card]")
    ui.visible("#card-dialog")
    assert "Visa •••• 4242" in ui.find("#card-text").text
    ui.fill("#new-card-number", CARD_DECLINED)
    ui.fill("#new-card-expiry", "0830")
    ui.fill("#new-card-cvc", "123")
    ui.click("#card-save")
    ui.text_in("#card-error", "declined")
    assert ui.find("#new-card-number").get_attribute("aria-invalid") == "true"
    ui.screenshot("recurring-card-declined")
    ui.fill("#new-card-number", "5555555555554444")
    ui.click("#card-save")
    ui.text_in("#status", "Mastercard •••• 4444")
    ui.wait(lambda _: not ui.find("#card-dialog").is_displayed(), what="dialog closed")
    assert "Mastercard •••• 4444" in ui.find("#recurring tbody tr").text
    ui.screenshot("recurring-card-changed")
    (item,) = api.get("/api/v1/recurring-payments", token=company["token"]).json()[
        "recurring_payments"
    ]
    assert (item["card_brand"], item["card_last4"], item["status"]) == (
        "mastercard",
        "4444",
        "active",
    )


def test_buy_a_plan_declined_then_paid(ui, suite, api, catalog):
    company = new_company(suite)
    log_in(ui, company["customer_id"])
    ui.click("a[href='/buy']")
    ui.at("/buy")
    ui.visible("#buy-form")
    ui.click(f"label[for='plan-{PLAN}']")
    ui.fill("#seats", "2")
    ui.fill("#card-number", CARD_DECLINED)
    ui.fill("#card-expiry", "1231")
    ui.fill("#card-cvc", "123")
    ui.text_in("#sum-total", "€980.00")
    assert ui.find("#card-number").get_attribute("value") == "4000 0000 0000 0002"
    ui.screenshot("buy")
    record_purchase_keys(ui)
    ui.click("#pay")
    ui.text_in("#form-error", "declined")
    assert ui.find("#card-number").get_attribute("aria-invalid") == "true"
    ui.screenshot("buy-declined")

    ui.fill("#card-number", CARD_OK)
    ui.click("#pay")
    done = ui.text_in("#done", "payment went through", timeout=20)
    assert "€980.00" in done
    assert "Renews automatically" in done
    ui.screenshot("buy-done")
    # each attempt had its own Idempotency-Key: the declined one, then the one with a new card
    keys = ui.js("return window.__purchaseKeys")
    assert (
        len(keys) == 2
        and len(set(keys)) == 2
        and all(re.fullmatch("[0-9a-f]{32}", k) for k in keys)
    )
    licenses = api.get("/api/v1/licenses", token=api.login(company["customer_id"], PASSWORD))
    bought = licenses.json()["licenses"]
    assert len(bought) == 1 and bought[0]["seats"] == 2
    ui.click("#done a.button")
    ui.at("/licenses")


def record_purchase_keys(ui, lose_first_answer: bool = False) -> None:
    """Records the `Idempotency-Key` of each purchase the page sends (`window.__purchaseKeys`);
    with `lose_first_answer`, the first purchase reaches the gateway and is answered, but the
    page sees a dropped connection instead, as after a network blip."""
    ui.js(
        """
        const realFetch = window.fetch;
        let lose = arguments[0];
        window.__purchaseKeys = [];
        window.fetch = async (url, options = {}) => {
          const purchase = String(url).endsWith("/api/v1/purchases");
          if (purchase) window.__purchaseKeys.push((options.headers || {})["Idempotency-Key"]);
          const response = await realFetch(url, options);
          if (purchase && lose) {
            lose = false;
            await response.text();
            throw new TypeError("Failed to fetch");
          }
          return response;
        };
        """,
        lose_first_answer,
    )


def test_a_purchase_whose_answer_was_lost_is_charged_once_when_paid_again(ui, suite, api, catalog):
    company = new_company(suite)
    log_in(ui, company["customer_id"])
    ui.open("/buy")
    ui.visible("#buy-form")
    ui.click(f"label[for='plan-{PLAN}']")
    ui.fill("#seats", "1")
    ui.fill("#card-number", CARD_OK)
    ui.fill("#card-expiry", "1231")
    ui.fill("#card-cvc", "123")
    record_purchase_keys(ui, lose_first_answer=True)
    ui.click("#pay")
    ui.text_in("#form-error", "never charged twice")
    ui.screenshot("buy-answer-lost")
    ui.click("#pay")  # the same attempt again: same plan, seats and card
    ui.text_in("#done", "payment went through", timeout=20)
    first, again = ui.js("return window.__purchaseKeys")
    assert first == again
    token = api.login(company["customer_id"], PASSWORD)
    payments = api.get("/api/v1/payments", token=token).json()["payments"]
    assert len(payments) == 1, payments
    recurring = api.get("/api/v1/recurring-payments", token=token).json()["recurring_payments"]
    assert len(recurring) == 1, recurring
    assert len(api.get("/api/v1/licenses", token=token).json()["licenses"]) == 1


def test_demo_company_walk_read_only(ui, suite):
    """What `make run` prints: log in to the demo company and see every page filled.

    `demo` again, as a user who comes back to it would: the office workstation's 15-minute
    lease taken when the module started has lapsed by now on a slow machine, and `demo`
    takes it again."""
    catalog = suite.portalctl("demo")
    seeded = catalog["licensing"]["licenses"]
    assert seeded, catalog
    log_in(ui, catalog["login"]["email"], catalog["password"])
    ui.visible("#licenses")
    table = ui.find("#licenses").text
    for license in seeded:
        assert license["license_id"] in table
    if any(item["expires_at"] is None for item in seeded):
        assert "Never (perpetual)" in table
    ui.screenshot("demo-licenses")
    node_locked = [item for item in seeded if item["model"] == "node_locked"]
    busiest = max(node_locked, key=lambda item: item.get("seats_in_use") or 0)
    ui.click(f"#licenses a[href='/licenses/{busiest['license_id']}']")
    ui.visible("#details")
    ui.wait(lambda _: ui.find_all("#history tbody tr"), what="demo history")
    assert ui.find_all("#installations tbody tr")
    ui.screenshot("demo-license")
    # the office's floating license: a workstation's lease and a laptop's borrowed one
    [floating] = [item for item in seeded if item["model"] == "floating"]
    assert f"floating, {floating['seats_in_use']} of {floating['seats']} in use" in table
    ui.open(f"/licenses/{floating['license_id']}")
    ui.wait(lambda _: len(ui.find_all("#leases tbody tr")) == 2, what="the demo's two leases")
    assert "Dana's laptop" in ui.find("#leases").text
    ui.screenshot("demo-floating-license")
    # renewing it offers the floating plan, never a node-locked one billing would refuse
    ui.open(f"/buy?license={floating['license_id']}")
    ui.wait(
        lambda _: ui.find("#license").get_attribute("value") == floating["license_id"],
        what="the floating license chosen for renewal",
    )
    assert ui.find("#plan-cadpro-floating-yearly").is_selected()
    renewable = [o.get_attribute("value") for o in ui.find_all("#license option")]
    assert floating["license_id"] in renewable
    assert not ui.find("label[for='plan-cadpro-yearly']").is_displayed()
    for path, ready in (("/payments", "#payments"), ("/recurring-payments", "#recurring")):
        ui.open(path)
        ui.visible(ready)
        ui.screenshot("demo-" + path.strip("/"))


# --- layout and security ----------------------------------------------------------------


def test_phone_width_has_no_horizontal_scroll(ui, suite, api, catalog):
    company = licensed_company(suite, api, machines=("A-VERY-LONG-MACHINE-NAME-0123456789",))
    ui.set_size(PHONE)
    ui.open("/login")
    ui.visible("#login")
    assert ui.horizontal_overflow() <= 0
    ui.screenshot("phone-login")
    log_in(ui, company["customer_id"])
    pages = {
        "licenses": ("/licenses", "#licenses"),
        "license": (f"/licenses/{company['license_id']}", "#installations"),
        "payments": ("/payments", "#payments"),
        "recurring-payments": ("/recurring-payments", "#recurring"),
        "buy": ("/buy", "#buy-form"),
        "account": ("/account", "#password-form"),
    }
    for name, (path, ready) in pages.items():
        ui.open(path)
        ui.visible(ready)
        assert ui.horizontal_overflow() <= 0, (name, ui.horizontal_overflow())
        ui.screenshot(f"phone-{name}")
        problems = [m for m in ui.console() if "Content Security Policy" in m or "Uncaught" in m]
        assert not problems, (name, problems)
    ui.set_size(DESKTOP)


def test_csrf_cookie_requests_need_the_header_and_pages_have_a_strict_csp(ui, suite, api):
    company = new_company(suite)
    log_in(ui, company["customer_id"])
    change = json.dumps({"current_password": PASSWORD, "new_password": NEW_PASSWORD})
    # the cookie alone is not enough for a state change
    refused = ui.fetch(
        "/api/v1/account/password", "PUT", {"Content-Type": "application/json"}, change
    )
    assert refused["status"] == 403, refused
    assert json.loads(refused["body"])["error"]["code"] == "csrf_failed"
    refused = ui.fetch("/api/v1/sessions/current", "DELETE")
    assert refused["status"] == 403
    token = ui.js(
        "return document.cookie.split('; ').find(c => c.startsWith('portal_csrf=')).split('=')[1]"
    )
    allowed = ui.fetch("/api/v1/recurring-payments/rp_nope/cancel", "POST", {"X-CSRF-Token": token})
    assert allowed["status"] == 404, allowed  # past the CSRF check, then not found
    wrong = ui.fetch(
        "/api/v1/recurring-payments/rp_nope/cancel", "POST", {"X-CSRF-Token": "x" * 64}
    )
    assert wrong["status"] == 403
    assert ui.fetch("/api/v1/account")["status"] == 200  # reading needs no header
    assert api.login(company["customer_id"], PASSWORD)  # the password did not change
    # bearer-token clients are unaffected
    bearer = api.login(company["customer_id"], PASSWORD)
    assert api.delete("/api/v1/sessions/current", token=bearer).status_code == 204

    for path in ("/login", "/forgot-password", "/reset-password"):
        page = api.get(path)
        assert page.status_code == 200
        csp = page.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp
    assert api.get("/licenses", allow_redirects=False).status_code == 303
    # a cross-site form cannot log someone in: the login route wants JSON (415 for another
    # type), and a cross-site fetch is refused (403)
    forged = api.post(
        "/web/session",
        data=json.dumps({"login": company["customer_id"], "password": PASSWORD}),
        headers={"Content-Type": "text/plain"},
    )
    assert forged.status_code == 415
    cross_site = api.post(
        "/web/session",
        json={"login": company["customer_id"], "password": PASSWORD},
        headers={"Sec-Fetch-Site": "cross-site"},
    )
    assert cross_site.status_code == 403


def test_a_service_that_is_down_is_explained_not_crashed(ui, suite):
    company = new_company(suite)
    log_in(ui, company["customer_id"])
    ui.open("/login")  # already logged in: straight to the licenses
    ui.at("/licenses")
    suite.stop("billing")
    try:
        ui.open("/payments")
        message = ui.text_in("#error", "temporarily unavailable", timeout=20)
        assert "try again" in message.lower()
        ui.screenshot("payments-billing-down")
    finally:
        suite.start("billing")
        suite.wait_ready(timeout=90)
