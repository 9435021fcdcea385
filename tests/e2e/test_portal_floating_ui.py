"""Floating licenses in the portal, in headless Chromium against the running suite (design
§13): the license list says "floating, N of M in use"; the license page lists the machines
holding a seat, shows the peak use of the last 30 days as a bar per day, and has no
installations or offline panels; a license admin revokes a lease after a confirmation and
it leaves the table (the product's next heartbeat is 410), while a borrowed lease's
confirmation warns that the offline machine keeps working until its borrow ends; a viewer
sees the leases but no Revoke. Every page checked is clean at desktop and phone width (no
horizontal scroll, no CSP error, no serious axe violation). Screenshots go to
test-artifacts/ui/.
"""

from __future__ import annotations

import pytest

from tests.e2e.test_portal_team_ui import page_is_clean
from tests.e2e.test_portal_ui import confirm_dialog, log_in
from tests.e2e.ui_browser import DESKTOP, PHONE
from tests.support.floating import checked_out, heartbeat, in_days, issue_floating_license
from tests.support.floating import new_product as create_product
from tests.support.offline_kit import issue_license
from tests.support.team import PASSWORD, new_team

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def team(suite, api, smtp_sink):
    """A company with an owner, a license admin, a billing user and a viewer."""
    return new_team(suite, api, smtp_sink)


@pytest.fixture(scope="module")
def product(suite) -> str:
    return create_product(suite, "flui", "CAD Pro Floating")


@pytest.fixture
def ui(browser):
    browser.reset()
    return browser


def as_member(ui, team, role: str, path: str | None = None) -> None:
    log_in(ui, team.members[role].email, PASSWORD)
    if path is not None:
        ui.open(path)
        ui.visible("#details")


def lease_row(lease: dict) -> str:
    """The leases table's row of `lease`."""
    return f"#leases tr[data-lease-id='{lease['lease_id']}']"


def test_a_license_admin_sees_the_leases_and_revokes_one(ui, suite, api, team, product):
    license = issue_floating_license(
        suite, team.company["customer_id"], product, 3, lease_seconds=300, max_borrow_days=5
    )
    license_id = license["license_id"]
    office = checked_out(api, license, machine_name="CAD-WS-OFFICE")
    laptop = checked_out(api, license, machine_name="CAD-LAPTOP", borrow_until=in_days(2))
    node_locked = issue_license(suite, team.company["customer_id"], product, 2, None)

    # the list: the floating license counts its seats in use, the node-locked one as before
    as_member(ui, team, "license_admin")
    row = ui.text_in(f"#licenses tr[data-href='/licenses/{license_id}']", "floating")
    assert "floating, 2 of 3 in use" in row, row
    plain = ui.text_in(f"#licenses tr[data-href='/licenses/{node_locked['license_id']}']", "/")
    assert "floating" not in plain and "0 / 2" in plain, plain
    page_is_clean(ui, "floating-licenses")

    # the page: the machines holding a seat, the peak use, and none of the activation panels
    ui.open(f"/licenses/{license_id}")
    ui.visible("#leases-panel")
    assert ui.find("#f-seats").text == "2 of 3 in use"
    assert ui.find("#f-model").text == "Floating: leases of 5 minutes, borrowing up to 5 days"
    office_row = ui.text_in(lease_row(office["lease"]), "CAD-WS-OFFICE")
    assert "Not borrowed" in office_row, office_row
    laptop_row = ui.text_in(lease_row(laptop["lease"]), "CAD-LAPTOP")
    assert "Not borrowed" not in laptop_row, laptop_row
    assert ui.find("#leases-count").text == "2 of 3 seats in use"
    assert ui.find("#usage-title").text == "Peak use, last 30 days: 2 of 3"
    days = ui.find_all("#usage-chart li")
    assert len(days) == 30
    today = days[-1]
    assert today.get_attribute("data-date") == office["lease"]["started_at"][:10]
    assert today.get_attribute("data-peak") == "2"
    # each day says its value in words, and its bar is as high as its share of the seats
    assert (
        today.find_element("css selector", ".visually-hidden")
        .get_attribute("textContent")
        .endswith(": 2 of 3")
    )
    height = ui.js(
        "const bar = arguments[0].querySelector('.usage-bar');"
        "return arguments[0].querySelector('.usage-fill').offsetHeight / bar.offsetHeight",
        today,
    )
    assert abs(height - 2 / 3) < 0.05, height
    for selector in ("#installations-panel", "#offline"):
        assert not ui.find(selector).is_displayed(), selector
    assert "checks out a seat" in ui.find("#password-hint").text
    page_is_clean(ui, "floating-license-page")

    # a borrowed lease's confirmation says the offline machine keeps working until its
    # borrow ends; cancelled, nothing changes
    ui.click(f"{lease_row(laptop['lease'])} button")
    text = confirm_dialog(ui)
    assert "CAD-LAPTOP borrowed this seat until " in text, text
    assert (
        "revoking frees the seat here at once, but that machine may keep working offline "
        "until then." in text
    ), text
    assert "next renewal" not in text, text
    assert ui.js("return document.activeElement.id") == "confirm-cancel"
    ui.screenshot("floating-revoke-borrowed-confirm")
    ui.click("#confirm-cancel")
    ui.wait(lambda _: not ui.find("#confirm-dialog").is_displayed(), what="the dialog closed")
    assert ui.find_all(lease_row(laptop["lease"]))
    assert ui.find("#f-seats").text == "2 of 3 in use"

    # revoke the office machine's lease, after a confirmation: it learns at its next renewal
    ui.click(f"{lease_row(office['lease'])} button")
    text = confirm_dialog(ui)
    assert "CAD-WS-OFFICE" in text and "free" in text, text
    assert "learns it at its next renewal" in text and "borrowed" not in text, text
    assert ui.js("return document.activeElement.id") == "confirm-cancel"  # the safe choice
    ui.screenshot("floating-revoke-confirm")
    ui.click("#confirm-ok")
    ui.text_in("#leases-status", "The lease of CAD-WS-OFFICE is revoked")
    ui.wait(
        lambda _: not ui.find_all(lease_row(office["lease"])),
        what="the revoked lease to leave the table",
    )
    assert ui.find_all(lease_row(laptop["lease"]))
    ui.text_in("#f-seats", "1 of 3 in use")
    ui.text_in("#history", "Lease revoked")
    page_is_clean(ui, "floating-revoked")
    # the product learns it at its next heartbeat
    gone = heartbeat(api, office["lease"]["lease_id"], office["lease_token"])
    assert gone.status_code == 410, gone.text
    assert gone.json()["error"]["code"] == "lease_expired"

    # phone width: the table becomes cards, the chart fits
    ui.set_size(PHONE)
    ui.open(f"/licenses/{license_id}")
    ui.visible("#usage-chart")
    ui.text_in(lease_row(laptop["lease"]), "CAD-LAPTOP")
    page_is_clean(ui, "floating-license-page-phone")
    ui.set_size(DESKTOP)

    # a node-locked license's page is as it was: installations, no leases
    ui.open(f"/licenses/{node_locked['license_id']}")
    ui.visible("#installations-panel")
    assert not ui.find("#leases-panel").is_displayed()
    assert not ui.find("#usage-panel").is_displayed()


def test_a_viewer_sees_the_leases_but_cannot_revoke(ui, suite, api, team, product):
    license = issue_floating_license(suite, team.company["customer_id"], product, 2)
    taken = checked_out(api, license, machine_name="CAD-WS-VIEW")
    as_member(ui, team, "viewer", f"/licenses/{license['license_id']}")
    row = ui.text_in(lease_row(taken["lease"]), "CAD-WS-VIEW")
    assert "Revoke" not in row
    assert ui.find_all("#leases button") == []
    assert "An owner or a license admin can revoke" in ui.find("#leases-panel").text
    page_is_clean(ui, "floating-viewer")
    ui.set_size(PHONE)
    ui.open(f"/licenses/{license['license_id']}")
    ui.visible("#leases-panel")
    page_is_clean(ui, "floating-viewer-phone")
    ui.set_size(DESKTOP)
