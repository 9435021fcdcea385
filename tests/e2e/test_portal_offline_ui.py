"""Offline activation in the portal, in headless Chromium against the running suite (design
§11, §12): the real client kit's CLI without a network (`unshare -n`) writes a request onto
a folder standing in for a USB stick; a license admin uploads it on the license page (the
file input, as the keyboard or the picker would), downloads the response file through the
browser, the kit installs it and runs VALID offline with its modules; its deactivation
proof is uploaded the same way and the page shows the seat free.

Also: a malformed request and a full license are explained in words, a viewer sees neither
panel, the license list and page name the modules, and every page checked is clean at
desktop and phone width (no horizontal scroll, no CSP error, no serious axe violation).
Screenshots go to test-artifacts/ui/.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest

from tests.e2e.test_portal_team_ui import page_is_clean
from tests.e2e.test_portal_ui import log_in
from tests.e2e.ui_browser import DESKTOP, PHONE
from tests.support.offline_kit import (
    Machine,
    issue_license,
    network_off_missing,
    product_with_modules,
    request_text,
)
from tests.support.team import PASSWORD, new_team

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def team(suite, api, smtp_sink):
    """A company with an owner, a license admin, a billing user and a viewer."""
    return new_team(suite, api, smtp_sink)


@pytest.fixture(scope="module")
def product(suite) -> dict:
    """A product with two modules (staff add them with portalctl)."""
    return product_with_modules(suite, "gui", "CAD Pro Offline")


@pytest.fixture
def issue(suite, team, product):
    def issue(seats: int = 2, features: str | None = "steel,dyn") -> dict:
        return issue_license(suite, team.company["customer_id"], product["code"], seats, features)

    return issue


@pytest.fixture
def machine(tmp_path, product, api, suite):
    reason = network_off_missing()
    if reason:
        pytest.skip(reason)
    keys = api.get("/api/v1/signing-keys")
    assert keys.status_code == 200, keys.text
    return Machine(
        root=tmp_path / "ws",
        product=product["code"],
        jwks=keys.json(),
        server=suite.url,
        installation_id=f"gui-ws-{uuid.uuid4().hex[:12]}",
    )


@pytest.fixture
def ui(browser, tmp_path):
    """A fresh visitor whose downloads land in `ui.downloads`."""
    browser.reset()
    browser.downloads = tmp_path / "downloads"
    browser.downloads.mkdir()
    browser.driver.execute_cdp_cmd(
        "Browser.setDownloadBehavior",
        {"behavior": "allow", "downloadPath": str(browser.downloads)},
    )
    return browser


# --- helpers ----------------------------------------------------------------------------


def as_member(ui, team, role: str, path: str) -> None:
    member = team.members[role]
    log_in(ui, member.email, PASSWORD)
    ui.open(path)
    ui.visible("#details")


def upload(ui, selector: str, path: Path) -> None:
    """Picks `path` in the file input, as the file chooser would."""
    ui.find(selector).send_keys(str(path))


def drop(ui, zone: str, path: Path) -> None:
    """Drops `path` on the drop zone, as a file dragged from the desktop would be (Selenium
    cannot drag a real file, so the page gets the same `drop` event with it)."""
    ui.js(
        """
        const [zone, name, text] = arguments;
        const data = new DataTransfer();
        data.items.add(new File([text], name, {type: "application/json"}));
        const target = document.querySelector(zone);
        const event = {dataTransfer: data, bubbles: true, cancelable: true};
        target.dispatchEvent(new DragEvent("dragover", event));
        target.dispatchEvent(new DragEvent("drop", event));
        """,
        zone,
        path.name,
        path.read_text(encoding="utf-8"),
    )


def downloaded(ui, name: str, timeout: float = 15) -> str:
    """The text of the file the browser saved as `name` (once it is complete)."""
    target = ui.downloads / name
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        partial = list(ui.downloads.glob("*.crdownload"))
        if target.exists() and not partial and target.stat().st_size > 0:
            return target.read_text(encoding="utf-8")
        time.sleep(0.1)
    raise AssertionError(f"{name} was not downloaded: {list(ui.downloads.iterdir())}")


def installation_row(ui, installation_id: str, text: str) -> str:
    """The row of the installation, once it says `text`."""
    return ui.text_in(f"#installations tr[data-installation-id='{installation_id}']", text)


# --- the air-gapped journey -------------------------------------------------------------


def test_the_air_gapped_journey_in_the_portal(ui, suite, api, team, issue, machine):
    license = issue(seats=2, features="steel,dyn")
    license_id = license["license_id"]
    plain = issue(seats=1, features=None)
    ws = machine
    assert not ws.can_reach(suite.url + "/healthz")  # the premise: no network there

    # 1. on the offline machine: the request goes onto the USB stick
    request_file = ws.usb / "activation-request.json"
    ws.document(
        "offline-request", "--license-id", license_id, "--machine-name", "CAD-WS-07",
        "--out", str(request_file),
    )  # fmt: skip

    # 2. the license list names the modules (and nothing for a license without any)
    log_in(ui, team.members["license_admin"].email, PASSWORD)
    row = ui.text_in(f"#licenses tr[data-href='/licenses/{license_id}']", "Modules:")
    assert "Modules: Dynamic analysis, Steel design" in row, row
    plain_row = ui.text_in(f"#licenses tr[data-href='/licenses/{plain['license_id']}']", "")
    assert "Modules" not in plain_row, plain_row
    page_is_clean(ui, "offline-licenses-modules")

    ui.open(f"/licenses/{license_id}")
    ui.visible("#details")
    assert ui.find("#f-features").text == "Dynamic analysis, Steel design"
    steps = ui.text_in("#offline-activation", "offline-request")
    assert f"--license-id {license_id}" in steps and ws.product in steps, steps
    assert ui.find("#response-actions").is_displayed() is False
    page_is_clean(ui, "offline-license-page")

    # 3. a broken file is explained with the server's own words for its problem
    broken = ws.usb / "broken.json"
    broken.write_text(request_file.read_text(encoding="utf-8")[:40], encoding="utf-8")
    refused = api.post(
        f"/api/v1/licenses/{license_id}/offline-activations",
        token=team.token("license_admin"),
        json={"request": broken.read_text(encoding="utf-8")},
    )
    assert refused.status_code == 422, refused.text
    problem = refused.json()["error"]["details"]["problem"]
    upload(ui, "#request-file", broken)
    message = ui.text_in("#activation-status", "not accepted")
    assert problem in message, (problem, message)
    assert "status-bad" in ui.find("#activation-status").get_attribute("class")
    assert not ui.find("#response-actions").is_displayed()
    ui.screenshot("offline-request-malformed")

    # 4. the real request: activated, the response file is downloaded through the browser
    upload(ui, "#request-file", request_file)
    ui.text_in("#activation-status", "CAD-WS-07 is activated")
    installation_row(ui, ws.installation_id, "CAD-WS-07")  # among the active machines
    ui.text_in("#f-seats", "1 of 2")
    # the link is what the user clicks; it must be focused for a keyboard user to press Enter
    assert ui.js("return document.activeElement.id") == "response-download"
    page_is_clean(ui, "offline-activated")
    ui.click("#response-download")
    name = f"activation-response-{license_id}.json"
    response = json.loads(downloaded(ui, name))
    assert response["type"] == "activation_response"
    assert (response["license_id"], response["installation_id"]) == (
        license_id,
        ws.installation_id,
    )

    # 5. back on the offline machine: installed, VALID offline with its modules
    carried = ws.usb / name
    carried.write_text(json.dumps(response), encoding="utf-8")
    installed = ws.document("offline-install", str(carried))
    assert installed["validation"]["code"] == "VALID", installed
    status = ws.document("status", "--offline")
    assert status["validation"]["code"] == "VALID" and status["validation"]["online"] is False
    assert sorted(status["features"]) == ["dyn", "steel"]

    # 6. the machine is retired: its proof frees the seat on the page
    proof_file = ws.usb / "deactivation-proof.json"
    ws.document("deactivate", "--offline", "--out", str(proof_file))
    upload(ui, "#proof-file", proof_file)
    ui.text_in("#deactivation-status", "CAD-WS-07 is deactivated; its seat is free")
    ui.text_in("#f-seats", "0 of 2")
    ui.click("#deactivated-machines summary")  # deactivated machines are collapsed
    ui.text_in(
        f"#deactivated-installations tr[data-installation-id='{ws.installation_id}']",
        "Deactivated offline",
    )
    ui.text_in("#history", "Offline file")
    page_is_clean(ui, "offline-deactivated")

    # the same proof again, dropped on the zone this time: refused in words (valid once)
    drop(ui, "#proof-drop", proof_file)
    again = ui.text_in("#deactivation-status", "not accepted")
    assert "proof file was not accepted" in again, again

    # phone width: the panels stack, nothing scrolls sideways
    ui.set_size(PHONE)
    ui.open(f"/licenses/{license_id}")
    ui.visible("#request-file")
    ui.text_in("#history", "Offline file")
    page_is_clean(ui, "offline-license-page-phone")
    ui.set_size(DESKTOP)


def test_a_full_license_names_the_machines_in_use(ui, api, team, issue, product, tmp_path):
    license = issue(seats=1, features="steel")
    license_id = license["license_id"]
    taken = request_text(license_id, f"ws-a-{uuid.uuid4().hex[:8]}", product["code"], "WS-A")
    first = api.post(
        f"/api/v1/licenses/{license_id}/offline-activations",
        token=team.token("owner"),
        json={"request": taken},
    )
    assert first.status_code == 201, first.text
    second = tmp_path / "second-request.json"
    second.write_text(
        request_text(license_id, f"ws-b-{uuid.uuid4().hex[:8]}", product["code"], "WS-B"),
        encoding="utf-8",
    )
    as_member(ui, team, "owner", f"/licenses/{license_id}")
    upload(ui, "#request-file", second)
    message = ui.text_in("#activation-status", "All seats are in use")
    assert "WS-A" in message, message
    assert not ui.find("#response-actions").is_displayed()
    ui.screenshot("offline-no-seats")


def test_a_viewer_sees_the_modules_but_no_offline_panels(ui, team, issue):
    license = issue(seats=2, features="dyn")
    as_member(ui, team, "viewer", f"/licenses/{license['license_id']}")
    assert ui.find("#f-features").text == "Dynamic analysis"
    for selector in ("#offline-activation", "#offline-deactivation", "input[type=file]"):
        assert ui.find_all(selector) == [], selector
    page_is_clean(ui, "offline-viewer")
    ui.set_size(PHONE)
    ui.open(f"/licenses/{license['license_id']}")
    ui.visible("#details")
    page_is_clean(ui, "offline-viewer-phone")
