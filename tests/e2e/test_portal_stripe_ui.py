"""The portal paying through Stripe (issue 19) in headless Chromium: the suite runs with
PAYMENT_PROVIDER=stripe against the local Stripe server (`stripe_suite`), whose Stripe.js
mounts its card fields in the buy page and in the change-card dialog.

A card is paid at once, or after the bank's confirmation (3-D Secure: Stripe.js's window
with "Complete authentication" / "Fail authentication"), or declined; a recurring payment
takes another card. No card number ever reaches the portal: the pages send the ID of the
PaymentMethod Stripe.js made. Every page is checked at desktop and phone width (no
horizontal scroll, no CSP or script error, no serious axe violation) and saved under
test-artifacts/ui/.
"""

from __future__ import annotations

import json
import uuid

import pytest

from tests.e2e.test_portal_team_ui import page_is_clean
from tests.e2e.test_portal_ui import PASSWORD, log_in, new_company
from tests.e2e.ui_browser import DESKTOP, PHONE, Browser, missing

pytestmark = pytest.mark.e2e

CARD_OK = "4242424242424242"
CARD_3DS = "4000002760003184"  # the bank asks the customer to confirm
CARD_DECLINED_AT_CHARGE = "4000000000000341"  # attaches, then the charge is declined
CARD_DECLINED = "4000000000000002"  # declined as soon as it is checked
CARD_OTHER = "4000056655665556"
PRICE = "€120.00"  # the plan's price per seat and year (below)


@pytest.fixture(scope="module")
def plan(stripe_suite) -> str:
    """A product of this module with one yearly plan at €120.00 per seat."""
    suffix = uuid.uuid4().hex[:8]
    product = stripe_suite.portalctl(
        "product", "create", "--code", f"stripe-cad-{suffix}", "--name", "Stripe CAD"
    )["code"]
    code = f"stripe-yearly-{suffix}"
    stripe_suite.portalctl(
        "plan", "create", "--code", code, "--product", product, "--amount", "120.00",
        "--currency", "EUR", "--interval", "year",
    )  # fmt: skip
    return code


@pytest.fixture(scope="module")
def stripe_browser(stripe_suite):
    """Headless Chromium on the Stripe suite's portal (skipped without Chromium)."""
    reason = missing()
    if reason:
        pytest.skip(reason)
    chromium = Browser(stripe_suite.url)
    yield chromium
    chromium.quit()


@pytest.fixture
def ui(stripe_browser):
    stripe_browser.reset()
    return stripe_browser


# --- helpers ----------------------------------------------------------------------------


def record_payment_calls(ui) -> None:
    """Records the body of each call the page makes to /api/v1/purchases… and
    /api/v1/recurring-payments… (`window.__paymentCalls`: [url, method, body])."""
    ui.js(
        """
        const realFetch = window.fetch;
        window.__paymentCalls = [];
        window.fetch = (url, options = {}) => {
          const path = String(url);
          const watched = ["/api/v1/purchases", "/api/v1/recurring-payments/"];
          if (watched.some((prefix) => path.startsWith(prefix))) {
            window.__paymentCalls.push([path, options.method || "GET", options.body || null]);
          }
          return realFetch(url, options);
        };
        """
    )


def payment_calls(ui) -> list[tuple[str, str, dict | None]]:
    return [
        (path, method, json.loads(body) if body else None)
        for path, method, body in ui.js("return window.__paymentCalls")
    ]


def stripe_fields(ui, container: str = "#stripe-card") -> None:
    """Waits for Stripe.js's card fields in `container` (our own fields are hidden)."""
    ui.visible(f"{container} input[placeholder=number]")


def type_card(ui, number: str, container: str = "#stripe-card") -> None:
    """Types a card into Stripe.js's fields: number, MM, YY, CVC, postal code."""
    for field, value in (
        ("number", number),
        ("exp_month", "12"),
        ("exp_year", "31"),
        ("cvc", "123"),
        ("postal_code", "10115"),
    ):
        ui.fill(f"{container} input[placeholder={field}]", value)


def open_buy_page(ui, stripe_suite) -> dict:
    company = new_company(stripe_suite)
    log_in(ui, company["customer_id"])
    ui.open("/buy")
    ui.visible("#buy-form")
    stripe_fields(ui)
    return company


def choose(ui, plan: str, seats: int) -> None:
    ui.click(f"label[for='plan-{plan}']")
    ui.fill("#seats", str(seats))


def authentication(ui, button: str) -> None:
    """Stripe.js's 3-D Secure window: waits for it, saves it, presses `button`."""
    modal = f"//button[normalize-space()='{button}']"
    ui.wait(
        lambda d: any(b.is_displayed() for b in d.find_elements("xpath", modal)),
        what=f"the 3-D Secure window's {button!r}",
    )
    ui.screenshot("stripe-3ds-window")
    ui.driver.find_element("xpath", modal).click()


def payments_of(stripe_suite, company: dict) -> list[dict]:
    token = stripe_suite.api.login(company["customer_id"], PASSWORD)
    return stripe_suite.api.get("/api/v1/payments", token=token).json()["payments"]


def assert_no_card_number_sent(ui, *numbers: str) -> None:
    for _, _, body in payment_calls(ui):
        text = json.dumps(body)
        assert "card" not in (body or {}), body
        assert not any(number in text for number in numbers), body


# --- buying -----------------------------------------------------------------------------


def test_a_card_is_paid_with_stripe_and_the_license_is_shown(ui, stripe_suite, plan):
    company = open_buy_page(ui, stripe_suite)
    assert not ui.find("#card-number").is_displayed()  # our own card fields are hidden
    choose(ui, plan, 2)
    type_card(ui, CARD_OK)
    ui.text_in("#sum-total", "€240.00")
    page_is_clean(ui, "stripe-buy")
    record_payment_calls(ui)
    ui.click("#pay")
    done = ui.text_in("#done", "payment went through", timeout=30)
    assert "€240.00" in done and "Renews automatically" in done
    assert "Your new license" in done
    ui.screenshot("stripe-buy-done")
    # the page sent the payment method Stripe.js made, never the card
    ((path, method, body),) = payment_calls(ui)
    assert (path, method) == ("/api/v1/purchases", "POST")
    assert body["payment_method"].startswith("pm_") and body["seats"] == 2
    assert_no_card_number_sent(ui, CARD_OK)
    (payment,) = payments_of(stripe_suite, company)
    assert (payment["amount"], payment["card_last4"], payment["status"]) == (24000, "4242", "paid")
    # the receipt and the license the page links to
    receipt = ui.find("#done a[href^='/payments/']").get_attribute("href")
    assert payment["receipt_number"] in receipt
    ui.click("#done a.button")
    ui.at("/licenses/")
    ui.visible("#details")


def test_a_card_the_bank_confirms_is_paid_after_3d_secure(ui, stripe_suite, plan):
    company = open_buy_page(ui, stripe_suite)
    choose(ui, plan, 1)
    type_card(ui, CARD_3DS)
    record_payment_calls(ui)
    ui.click("#pay")
    authentication(ui, "Complete authentication")
    done = ui.text_in("#done", "payment went through", timeout=30)
    assert PRICE in done
    ui.screenshot("stripe-buy-3ds-done")
    (purchase, confirm) = payment_calls(ui)
    assert purchase[0] == "/api/v1/purchases" and purchase[2]["payment_method"].startswith("pm_")
    assert confirm[0].startswith("/api/v1/purchases/pur_") and confirm[0].endswith("/confirm")
    assert confirm[1] == "POST"
    assert_no_card_number_sent(ui, CARD_3DS)
    (payment,) = payments_of(stripe_suite, company)
    assert (payment["status"], payment["card_last4"]) == ("paid", "3184")


def test_a_failed_3d_secure_charges_nothing_and_paying_again_confirms(ui, stripe_suite, plan):
    company = open_buy_page(ui, stripe_suite)
    choose(ui, plan, 1)
    type_card(ui, CARD_3DS)
    ui.click("#pay")
    authentication(ui, "Fail authentication")
    message = ui.text_in("#form-error", "did not confirm")
    assert "nothing was charged" in message
    ui.screenshot("stripe-buy-3ds-failed")
    assert payments_of(stripe_suite, company) == []
    # the same card again: a new attempt, confirmed this time
    ui.click("#pay")
    authentication(ui, "Complete authentication")
    ui.text_in("#done", "payment went through", timeout=30)
    assert len(payments_of(stripe_suite, company)) == 1


def test_a_declined_card_is_explained_and_another_card_pays(ui, stripe_suite, plan):
    company = open_buy_page(ui, stripe_suite)
    choose(ui, plan, 1)
    type_card(ui, CARD_DECLINED_AT_CHARGE)
    ui.click("#pay")
    message = ui.text_in("#form-error", "declined")
    assert "another card" in message.lower()
    assert ui.find("#form-error").get_attribute("role") == "alert"
    # the customer is taken back to the card fields to fix them
    assert ui.js("return document.activeElement.closest('#stripe-card') !== null")
    page_is_clean(ui, "stripe-buy-declined")
    assert payments_of(stripe_suite, company) == []
    type_card(ui, CARD_OK)
    ui.click("#pay")
    ui.text_in("#done", "payment went through", timeout=30)
    (payment,) = payments_of(stripe_suite, company)
    assert payment["card_last4"] == "4242"


def test_an_incomplete_card_is_stripes_message_before_anything_is_sent(ui, stripe_suite, plan):
    open_buy_page(ui, stripe_suite)
    choose(ui, plan, 1)
    record_payment_calls(ui)
    ui.click("#pay")
    ui.text_in("#form-error", "incomplete")
    assert payment_calls(ui) == []


# --- the card of a recurring payment --------------------------------------------------------


def stripe_customer(stripe_suite, stripe_server, plan: str) -> dict:
    """A company that bought the plan through the API with a payment method."""
    company = new_company(stripe_suite)
    token = stripe_suite.api.login(company["customer_id"], PASSWORD)
    body = {"plan": plan, "seats": 1, "payment_method": stripe_server.payment_method(CARD_OK)}
    response = stripe_suite.api.post("/api/v1/purchases", token=token, json=body)
    assert response.status_code == 201, response.text
    return {**company, "token": token}


def test_a_recurring_payment_takes_another_card_through_stripe(
    ui, stripe_suite, stripe_server, plan
):
    company = stripe_customer(stripe_suite, stripe_server, plan)
    log_in(ui, company["customer_id"])
    ui.open("/recurring-payments")
    ui.visible("#recurring")
    record_payment_calls(ui)
    ui.click("#recurring tbody tr button[data-action=card]")
    ui.visible("#card-dialog")
    stripe_fields(ui, "#card-dialog #stripe-card")
    assert not ui.find("#new-card-number").is_displayed()
    assert "•••• 4242" in ui.find("#card-text").text
    page_is_clean(ui, "stripe-card-dialog")

    # declined: nothing changes
    type_card(ui, CARD_DECLINED, "#card-dialog #stripe-card")
    ui.click("#card-save")
    ui.text_in("#card-error", "declined")
    ui.screenshot("stripe-card-declined")
    # a card whose bank asks to confirm it cannot be confirmed here: billing says where
    type_card(ui, CARD_3DS, "#card-dialog #stripe-card")
    ui.click("#card-save")
    ui.text_in("#card-error", "use it for a purchase or renewal")
    # another card is charged from now on
    type_card(ui, CARD_OTHER, "#card-dialog #stripe-card")
    ui.click("#card-save")
    ui.text_in("#status", "•••• 5556")
    ui.wait(lambda _: not ui.find("#card-dialog").is_displayed(), what="dialog closed")
    ui.screenshot("stripe-card-changed")
    puts = [call for call in payment_calls(ui) if call[1] == "PUT"]
    assert len(puts) == 3
    assert all(set(body) == {"payment_method"} for _, _, body in puts)
    assert_no_card_number_sent(ui, CARD_DECLINED, CARD_3DS, CARD_OTHER)
    (item,) = stripe_suite.api.get("/api/v1/recurring-payments", token=company["token"]).json()[
        "recurring_payments"
    ]
    assert (item["card_last4"], item["status"]) == ("5556", "active")


# --- layout -----------------------------------------------------------------------------


def test_the_stripe_card_pages_fit_a_phone(ui, stripe_suite, stripe_server, plan):
    company = stripe_customer(stripe_suite, stripe_server, plan)
    ui.set_size(PHONE)
    log_in(ui, company["customer_id"])
    ui.open("/buy")
    ui.visible("#buy-form")
    stripe_fields(ui)
    page_is_clean(ui, "stripe-phone-buy")
    ui.open("/recurring-payments")
    ui.visible("#recurring")
    ui.click("#recurring tbody tr button[data-action=card]")
    stripe_fields(ui, "#card-dialog #stripe-card")
    page_is_clean(ui, "stripe-phone-card-dialog")
    ui.set_size(DESKTOP)
