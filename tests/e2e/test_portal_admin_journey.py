"""Issue 16's "Done means", as a customer admin tries it in Chromium, on a desktop and a phone.

A company seeded like the demo one (two months of a monthly plan paid in the portal, so last
month's receipt exists; a yearly license that renews automatically, activated and validated
on machines; one whose automatic renewal is off; one suspended with a reason). From the
login page the admin:

1. finds which licenses renew, when and for how much, on the licenses list (no extra click);
2. opens the license and sees which machine holds each seat and when it was last seen;
3. frees a seat (Deactivate, confirmed);
4. opens last month's receipt from Payments and prints it (Print calls window.print,
   stubbed in the page; the print stylesheet leaves the navigation out).

"In under a minute" is held as a bound on effort, not on time: the page loads and the clicks
are counted and must stay small. Every step is saved as test-artifacts/ui/journey-<size>-*.png.
"""

from __future__ import annotations

import re
import time
import uuid

import pytest

from tests.e2e.test_portal_ui import PASSWORD, buy, confirm_dialog, new_company
from tests.e2e.ui_browser import DESKTOP, PHONE
from tests.support.team import staff_rpc

pytestmark = pytest.mark.e2e

SIZES = pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["desktop", "phone"])
MAX_PAGE_LOADS = 8  # login, licenses, license, payments, receipt: 5 today
MAX_CLICKS = 10
DATE = r"[A-Z][a-z]{2} \d{1,2}, \d{4}"  # "Dec 7, 2026": the portal's formatDate in en-US
MACHINES = ("WS-ENG-07", "LAPTOP-ADA")
REASON = "Invoice 2026-31 is unpaid"


@pytest.fixture(scope="module")
def catalog(suite):
    """The demo product and plans (`portalctl demo` is idempotent)."""
    return suite.portalctl("demo")


@pytest.fixture
def ui(browser):
    browser.reset()
    yield browser
    browser.set_size(DESKTOP)


# --- the company --------------------------------------------------------------------------


def euros(minor: int) -> str:
    """`147000` → `"€1,470.00"`, as the portal shows euros."""
    return f"€{minor // 100:,}.{minor % 100:02d}"


def wait_for(what: str, found, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = found()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def activate(api, license_id: str, password: str, machine: str) -> str:
    """Activates `machine` and validates its certificate, as the client kit does; its ID."""
    installation_id = f"inst-{uuid.uuid4().hex}{uuid.uuid4().hex}"
    response = api.post(
        "/api/v1/activations",
        json={
            "license_id": license_id,
            "password": password,
            "installation_id": installation_id,
            "machine_name": machine,
        },
    )
    assert response.status_code == 201, response.text
    validated = api.post(
        "/api/v1/validations", json={"certificate": response.json()["certificate"]}
    )
    assert validated.status_code == 200, validated.text
    return installation_id


def demo_like_company(suite, api) -> dict:
    """A company as the demo's: receipts of the last two months, licenses in each state."""
    company = new_company(suite, name="Demo-like Engineering")
    customer = company["customer_id"]
    token = api.login(customer, PASSWORD)
    with staff_rpc(suite) as rpc:  # what `portalctl demo` does for the demo company
        history = rpc.call("billing", "seed_demo_history", customer, "cadpro-monthly", 2)
    assert history["created"], history
    last_month = history["payments"][-1]  # the renewal paid about a month ago

    def licenses() -> list[dict]:
        return api.get("/api/v1/licenses", token=token).json()["licenses"]

    monthly = wait_for("the monthly license licensing issues", lambda: licenses())[0]
    automatic = buy(api, token, seats=3)
    license_id = automatic["license"]["license_id"]
    detail = api.get(f"/api/v1/licenses/{license_id}", token=token).json()
    installations = {
        machine: activate(api, license_id, detail["activation_password"], machine)
        for machine in MACHINES
    }
    turned_off = buy(api, token, seats=1)
    cancelled = api.post(
        f"/api/v1/recurring-payments/{turned_off['recurring_payment']['id']}/cancel", token=token
    )
    assert cancelled.status_code == 200, cancelled.text
    suspended = suite.portalctl(
        "license", "issue", "--customer", customer, "--product", "cadpro",
        "--seats", "2", "--expires", "2099-12-31",
    )["license_id"]  # fmt: skip
    suite.portalctl("license", "suspend", suspended, "--reason", REASON)

    def renewed() -> dict[str, dict] | None:
        listed = {item["license_id"]: item for item in licenses()}
        renewal = listed.get(monthly["license_id"], {}).get("renewal") or {}
        return listed if renewal.get("status") == "automatic" else None

    listed = wait_for("the monthly license's automatic renewal", renewed)
    renewals = {license_id: item["renewal"] for license_id, item in listed.items()}
    return {
        **company,
        "token": token,
        "license_id": license_id,
        "monthly_id": monthly["license_id"],
        "cancelled_id": turned_off["license"]["license_id"],
        "suspended_id": suspended,
        "installations": installations,
        "renewals": renewals,
        "last_month_receipt": last_month["receipt_number"],
        "last_month_amount": euros(last_month["amount"]),
    }


# --- counting the effort ------------------------------------------------------------------


class Journey:
    """The browser, counting page loads (each a new document) and clicks."""

    def __init__(self, ui, size_name: str) -> None:
        self.ui = ui
        self.size_name = size_name
        self.documents: list[tuple[float, str]] = []  # the path of each page loaded, in order
        self.clicks = 0
        self.started = time.monotonic()

    def seen(self) -> None:
        """Records the document shown now, once (its time origin tells a new load)."""
        origin, path = self.ui.js("return [performance.timeOrigin, location.pathname]")
        if not self.documents or self.documents[-1][0] != origin:
            self.documents.append((origin, path))

    def open(self, path: str) -> None:
        self.ui.open(path)
        self.seen()

    def click(self, selector: str) -> None:
        self.ui.click(selector)
        self.clicks += 1

    def at(self, path: str) -> None:
        self.ui.at(path)
        self.seen()

    def shot(self, step: str) -> None:
        self.ui.screenshot(f"journey-{self.size_name}-{step}")

    def summary(self) -> str:
        loads = " → ".join(path for _, path in self.documents)
        took = time.monotonic() - self.started
        return f"{len(self.documents)} page loads ({loads}), {self.clicks} clicks, {took:.1f}s"


def row(license_id: str) -> str:
    return f"#licenses tr[data-license-id='{license_id}']"


# --- the journey --------------------------------------------------------------------------


@SIZES
def test_an_admin_finds_renewals_and_machines_frees_a_seat_and_prints_a_receipt(
    ui, suite, api, catalog, size
):
    company = demo_like_company(suite, api)
    ui.set_size(size)
    journey = Journey(ui, "desktop" if size == DESKTOP else "phone")

    # log in
    journey.open("/login")
    ui.visible("#login")
    ui.fill("#login", company["contact_email"])
    ui.fill("#password", PASSWORD)
    journey.click("#login-form button[type=submit]")
    journey.at("/licenses")

    # 1. which licenses renew, when and for how much: on the list, without a click
    for license_id in (company["license_id"], company["monthly_id"]):
        renewal = company["renewals"][license_id]
        text = ui.text_in(f"{row(license_id)} [data-renewal]", "Renews")
        # "Renews Dec 3, 2027 · €1,470.00" (the plan's interval may stand between)
        assert re.fullmatch(rf"Renews {DATE} · .*{re.escape(euros(renewal['amount']))}", text), (
            license_id,
            text,
        )
        charge = ui.js(  # the day as the browser sees it (its time zone)
            "return new Date(arguments[0]).toLocaleDateString('en-US', {dateStyle: 'medium'})",
            renewal["next_charge_at"],
        )
        assert charge in text, (charge, text)
    off = ui.text_in(f"{row(company['cancelled_id'])} [data-renewal]", "Auto-renew off")
    assert re.fullmatch(rf"Auto-renew off · ends {DATE}", off), off
    suspended = ui.text_in(row(company["suspended_id"]), "Suspended")
    assert REASON in suspended and "Expires in" not in suspended, suspended
    assert not ui.find_all(f"{row(company['suspended_id'])} a.renew-link")
    assert ui.horizontal_overflow() <= 0
    journey.shot("1-licenses")

    # 2. which machine holds each seat, and when it was last seen
    journey.click(f"{row(company['license_id'])} a[href='/licenses/{company['license_id']}']")
    journey.at(f"/licenses/{company['license_id']}")
    ui.visible("#details")
    ui.wait(
        lambda _: len(ui.find_all("#installations tbody tr")) == len(MACHINES),
        what="the machines",
    )
    for machine, installation_id in company["installations"].items():
        machine_row = f"#installations tr[data-installation-id='{installation_id}']"
        assert machine in ui.find(machine_row).text
        seen = ui.find(f"{machine_row} time.last-seen")
        words = seen.text.splitlines()[0]
        assert words == "just now" or "minute" in words, (machine, seen.text)
        assert re.match(rf"{DATE}, \d{{1,2}}:\d\d [AP]M", seen.get_attribute("title") or ""), (
            seen.get_attribute("title")
        )
    assert ui.find("#f-seats").text == "2 of 3"
    assert ui.horizontal_overflow() <= 0
    journey.shot("2-license-machines")

    # 3. free a seat
    freed = company["installations"]["WS-ENG-07"]
    journey.click(f"#installations tr[data-installation-id='{freed}'] .cell-action button")
    text = confirm_dialog(ui)
    assert "WS-ENG-07" in text and "free at once" in text, text
    journey.shot("3-deactivate-confirm")
    journey.click("#confirm-ok")
    ui.text_in("#installations-status", "WS-ENG-07 is deactivated")
    ui.wait(lambda _: ui.find("#f-seats").text == "1 of 3", what="the seat freed")
    ui.text_in("#deactivated-machines summary", "Deactivated machines (1)")
    detail = api.get(f"/api/v1/licenses/{company['license_id']}", token=company["token"]).json()
    assert detail["seats_in_use"] == 1
    journey.shot("3-seat-freed")

    # 4. last month's receipt, opened from Payments and printed
    journey.click(".mainnav a[href='/payments']")
    journey.at("/payments")
    receipt = company["last_month_receipt"]
    line = ui.text_in(f"#payments tr[data-receipt='{receipt}']", company["last_month_amount"])
    assert not re.search(r"\d{4}-\d\d-\d\d", line), line  # no raw ISO dates
    journey.shot("4-payments")
    journey.click(f"#payments tr[data-receipt='{receipt}'] a[data-action=receipt]")
    journey.at(f"/payments/{receipt}")
    ui.visible("#print")
    body = ui.find("main").text
    assert receipt in body and company["last_month_amount"] in body, body
    ui.js("window.__printed = 0; window.print = () => { window.__printed += 1; };")
    journey.click("#print")
    assert ui.js("return window.__printed") == 1
    assert ui.horizontal_overflow() <= 0
    journey.shot("4-receipt")
    # printed, the page is the receipt alone: no navigation, no buttons
    ui.driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    try:
        hidden = ui.js(
            "return ['.mainnav', '#print'].map((s) => document.querySelector(s))"
            ".map((e) => !e || getComputedStyle(e).display === 'none' || e.offsetParent === null)"
        )
        assert hidden == [True, True], hidden
        assert receipt in ui.find("main").text
        journey.shot("4-receipt-print")
    finally:
        ui.driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})

    summary = journey.summary()
    print(f"{journey.size_name}: {summary}")
    assert len(journey.documents) <= MAX_PAGE_LOADS, summary
    assert journey.clicks <= MAX_CLICKS, summary
