"""Every page of the portal, in each state a customer meets it, is accessible (issue 16).

axe-core (the current npm copy `make install` puts under .venv/axe, else the one
selenium-axe-python ships; injected from this disk by the driver, never from a CDN) finds no
serious or critical violation on a desktop (1280x900) and a phone (390x844); no page scrolls
sideways on the phone; no Content Security Policy report and no script error reach the
console. Pages: login, forgot password, a reset link (working and dead), an invitation
(working and dead), the licenses, a license page (node-locked with machines, floating,
suspended, expired), buy, payments, a receipt, recurring payments with the turn-off dialog
open, account, users, activity, the 404 page, the page a role may not see, and outages (a
service down behind a page, and the 503 page).

One company is seeded for the module (`portalctl`, purchases through the API); nothing the
tests do changes it. Every problem of every page is collected before the test fails, so one
run lists them all (also in test-artifacts/ui/a11y-<size>.json), and every page is saved as
test-artifacts/ui/a11y-<size>-<page>.png.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from tests.e2e.test_portal_team_ui import add_user, invitation_link, log_out, new_email
from tests.e2e.test_portal_ui import (
    RESET_LINK,
    confirm_dialog,
    licensed_company,
    log_in,
)
from tests.e2e.ui_browser import ARTIFACTS, DESKTOP, PHONE
from tests.support import axe
from tests.support.floating import checked_out, issue_floating_license, new_product

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not axe.available(), reason=axe.describe()),
]

SIZES = pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["desktop", "phone"])
# a page answered with this status logs "Failed to load resource …" by design (the 404 page,
# a dead link's check); anything else SEVERE in the console is a problem
FAILED_LOAD = re.compile(r"Failed to load resource: the server responded with a status of (\d+)")


@dataclass
class Page:
    """A page to check: where it is, what shows it is ready, the statuses it may log."""

    path: str
    ready: str
    statuses: frozenset[int] = frozenset()
    then: Callable | None = None  # brings the page to the state to check (a dialog open)


@dataclass
class Findings:
    """Every problem of every page, by page, to be reported in one go."""

    size: str
    report: str = "a11y"
    problems: dict[str, list] = field(default_factory=dict)
    checked: list[str] = field(default_factory=list)

    def add(self, page: str, problem) -> None:
        self.problems.setdefault(page, []).append(problem)

    def save(self) -> None:
        report = {"axe": axe.describe(), "checked": self.checked, "problems": self.problems}
        (ARTIFACTS / f"{self.report}-{self.size}.json").write_text(json.dumps(report, indent=2))

    def assert_none(self) -> None:
        self.save()
        lines = [f"{page}: {problem}" for page, found in self.problems.items() for problem in found]
        assert not lines, f"{len(lines)} problems ({axe.describe()}):\n" + "\n".join(lines)


@pytest.fixture(scope="module")
def catalog(suite):
    """The demo product and plans (`portalctl demo` is idempotent)."""
    return suite.portalctl("demo")


@pytest.fixture
def ui(browser):
    browser.reset()
    yield browser
    browser.set_size(DESKTOP)


def in_days(days: int) -> str:
    return (datetime.now(UTC).date() + timedelta(days=days)).isoformat()


def reset_link(api, smtp_sink, email: str) -> str:
    """A working password reset link of `email` (asked for through the API)."""
    response = api.post("/api/v1/password-resets", json={"login": email})
    assert response.status_code in (202, 204), response.text
    found: list[str] = []

    def has_link(message) -> bool:
        if email.lower() not in (message["To"] or "").lower():
            return False
        body = message.get_body(preferencelist=("plain",)).get_content()
        found.extend(RESET_LINK.findall(body))
        return bool(found)

    smtp_sink.wait_for(has_link, timeout=20)
    return found[-1]


@pytest.fixture(scope="module")
def portal(suite, api, smtp_sink, catalog) -> dict:
    """A company with a license in each state the license page shows, a viewer, an open
    invitation and a reset link; nothing the tests do changes it."""
    company = licensed_company(suite, api, machines=("WS-ENG-07", "LAPTOP-ADA", "CAD-WS-12"))
    customer, token = company["customer_id"], company["token"]
    retired = company["installations"]["CAD-WS-12"]
    answer = api.post(
        f"/api/v1/licenses/{company['license_id']}/installations/{retired}/deactivate",
        token=token,
    )
    assert answer.status_code == 200, answer.text
    product = company["purchase"]["license"]["product"]["code"]
    floating = issue_floating_license(
        suite, customer, new_product(suite, "a11y", "CAD Pro Floating"), 3, lease_seconds=300
    )
    checked_out(api, floating, machine_name="CAD-WS-OFFICE")
    suspended = suite.portalctl(
        "license", "issue", "--customer", customer, "--product", product,
        "--seats", "2", "--expires", in_days(120),
    )["license_id"]  # fmt: skip
    suite.portalctl("license", "suspend", suspended, "--reason", "Invoice 2026-31 is unpaid")
    expired = suite.portalctl(
        "license", "issue", "--customer", customer, "--product", product,
        "--seats", "1", "--expires", in_days(-10), "--force",
    )["license_id"]  # fmt: skip
    viewer = add_user(api, smtp_sink, token, "viewer", "Vera Viewer")
    invited = new_email("ivy")
    response = api.post(
        "/api/v1/users", token=token, json={"email": invited, "name": "Ivy", "role": "billing"}
    )
    assert response.status_code == 201, response.text
    return {
        **company,
        "floating_id": floating["license_id"],
        "suspended_id": suspended,
        "expired_id": expired,
        "receipt": company["purchase"]["payment"]["receipt_number"],
        "viewer": viewer,
        "invitation_link": invitation_link(smtp_sink, invited),
        "reset_link": reset_link(api, smtp_sink, company["contact_email"]),
    }


# --- checking a page --------------------------------------------------------------------


def console_problems(ui, statuses: frozenset[int]) -> list[str]:
    """CSP reports, script errors and failed loads other than `statuses`, since last asked."""
    try:
        entries = ui.driver.get_log("browser")
    except Exception:
        return []
    found = []
    for entry in entries:
        message = entry.get("message", "")
        failed = FAILED_LOAD.search(message)
        if failed and int(failed.group(1)) in statuses:
            continue
        if entry.get("level") == "SEVERE" or "Content Security Policy" in message:
            found.append(message[:300])
    return found


def loaded(ui) -> None:
    ui.wait(lambda _: not ui.find_all(".loading:not([hidden])"), what="the page loaded")


def check(ui, findings: Findings, name: str, page: Page) -> None:
    """Opens `page` and records what is wrong with it (axe, sideways scroll, console)."""
    ui.console()  # what earlier pages logged is theirs
    ui.open(page.path)
    try:
        ui.visible(page.ready)
        loaded(ui)
        if page.then is not None:
            page.then(ui)
    except AssertionError as exc:  # not ready: the page itself is broken; keep going
        findings.add(name, f"never showed {page.ready}: {str(exc)[:300]}")
        return
    check_here(ui, findings, name, page.statuses)


def check_here(ui, findings: Findings, name: str, statuses: frozenset[int] = frozenset()) -> None:
    """Records what is wrong with the page as it is now, and saves it."""
    findings.checked.append(name)
    ui.screenshot(f"a11y-{findings.size}-{name}")
    for rule, impact, nodes in axe.problems(ui):
        findings.add(name, f"axe {impact} {rule} at {nodes}")
    if findings.size == "phone":
        overflow = ui.horizontal_overflow()
        if overflow > 0:
            wide = ui.js(
                """
                const width = document.documentElement.clientWidth;
                return [...document.querySelectorAll("body *")]
                  .filter((e) => e.getBoundingClientRect().right > width + 1)
                  .filter((e) => !e.parentElement
                    || e.parentElement.getBoundingClientRect().right <= width + 1)
                  .slice(0, 5).map((e) => e.tagName.toLowerCase()
                    + (e.id ? "#" + e.id : "") + (e.className && e.className.baseVal === undefined
                    ? "." + String(e.className).trim().split(/\\s+/).join(".") : ""));
                """
            )
            findings.add(name, f"scrolls sideways by {overflow}px; too wide: {wide}")
    for message in console_problems(ui, statuses):
        findings.add(name, f"console: {message}")


def open_turn_off_dialog(ui) -> None:
    ui.click("#recurring tbody tr button[data-action=cancel]")
    confirm_dialog(ui)


def size_name(size: tuple[int, int]) -> str:
    return "desktop" if size == DESKTOP else "phone"


# --- the tests --------------------------------------------------------------------------


def test_the_axe_core_the_tests_inject_is_current_and_from_this_disk(ui, suite):
    ui.open("/login")
    ui.visible("#login-form")
    assert ui.js("return typeof window.axe") == "undefined", "the page loads no axe itself"
    version = axe.inject(ui)
    path = axe.source_path()
    print(f"accessibility checks run {axe.describe()}; the page reports axe {version}")
    (ARTIFACTS / "axe-version.txt").write_text(f"{axe.describe()}\npage: {version}\n")
    assert version == ".".join(map(str, axe.version_of(path)))
    if axe.npm_copy() is not None:
        assert tuple(int(part) for part in version.split(".")[:2]) >= axe.MINIMUM_NPM, version
    # injected by the driver: nothing was fetched for it
    fetched = ui.js("return performance.getEntriesByType('resource').map((e) => e.name)")
    assert not [url for url in fetched if "axe" in url.lower()], fetched

    # the checks catch what they look for: an image without a text, an inline script
    ui.console()
    assert axe.problems(ui) == []
    ui.js(
        "const img = document.createElement('img'); img.src = '/static/favicon.svg';"
        "document.querySelector('main').append(img);"
        "const s = document.createElement('script'); s.textContent = 'window.__inline = 1';"
        "document.body.append(s);"
    )
    assert [rule for rule, *_ in axe.problems(ui)] == ["image-alt"]
    logged: list[str] = []
    ui.wait(
        lambda _: (
            logged.extend(console_problems(ui, frozenset()))
            or any("Content Security Policy" in m for m in logged)
        ),
        what="the inline script's CSP report",
    )
    assert ui.js("return window.__inline") is None


@SIZES
def test_every_page_has_no_serious_axe_violation(ui, suite, api, portal, size):
    findings = Findings(size_name(size))
    ui.set_size(size)
    dead = frozenset({400})  # the link check answers 400 invalid_token
    public = {
        "login": Page("/login", "#login-form"),
        "forgot-password": Page("/forgot-password", "#forgot-form"),
        "reset-password": Page(portal["reset_link"], "#new-password"),
        "reset-password-dead-link": Page(
            f"/reset-password#token=x{uuid.uuid4().hex}", "#link-dead", dead
        ),
        "accept-invitation": Page(portal["invitation_link"], "#new-password"),
        "accept-invitation-dead-link": Page(
            f"/accept-invitation#token=x{uuid.uuid4().hex}", "#link-dead", dead
        ),
        "not-found-logged-out": Page("/no-such-page", "#not-found-title", frozenset({404})),
    }
    license = f"/licenses/{portal['license_id']}"
    owner = {
        "licenses": Page("/licenses", "#licenses"),
        "license-node-locked": Page(license, "#installations"),
        "license-floating": Page(f"/licenses/{portal['floating_id']}", "#leases-panel"),
        "license-suspended": Page(f"/licenses/{portal['suspended_id']}", "#suspension"),
        "license-expired": Page(f"/licenses/{portal['expired_id']}", "#expired-banner"),
        "buy": Page("/buy", "#buy-form"),
        "buy-renewal": Page(f"/buy?license={portal['license_id']}", "#buy-form"),
        "payments": Page("/payments", "#payments"),
        "receipt": Page(f"/payments/{portal['receipt']}", "#print"),
        "recurring-payments": Page("/recurring-payments", "#recurring"),
        "recurring-payments-turn-off-dialog": Page(
            "/recurring-payments", "#recurring", then=open_turn_off_dialog
        ),
        "account": Page("/account", "#notifications-form"),
        "users": Page("/users", "#users"),
        "activity": Page("/activity", "#events"),
        "not-found": Page("/no-such-page", "#not-found-title", frozenset({404})),
        "license-not-found": Page(
            "/licenses/L-0000-0000", "#error, #not-found-title", frozenset({404})
        ),
    }
    for name, page in public.items():
        check(ui, findings, name, page)
    log_in(ui, portal["customer_id"])
    for name, page in owner.items():
        check(ui, findings, name, page)
    log_out(ui)
    log_in(ui, portal["viewer"]["email"], portal["viewer"]["password"])
    check(ui, findings, "forbidden", Page("/users", "#forbidden-message", frozenset({403})))
    check(ui, findings, "license-viewer", Page(license, "#installations"))
    findings.assert_none()


def test_outages_are_accessible_on_a_desktop_and_a_phone(ui, suite, portal):
    """billing down: the page explains it with a Retry; auth down too: the 503 page."""
    findings = {name: Findings(name, "a11y-outage") for name in ("desktop", "phone")}
    log_in(ui, portal["customer_id"])
    suite.stop("billing")
    try:
        for size in (DESKTOP, PHONE):
            ui.set_size(size)
            for name, path in (("payments", "/payments"), ("recurring", "/recurring-payments")):
                ui.console()
                ui.open(path)
                ui.text_in("#error", "temporarily unavailable", timeout=20)
                ui.visible("#error button")  # Retry
                check_here(ui, findings[size_name(size)], f"outage-{name}", frozenset({503}))
        suite.stop("auth")
        for size in (DESKTOP, PHONE):
            ui.set_size(size)
            ui.console()
            ui.open("/licenses")
            ui.text_in("main", "temporarily unavailable", timeout=20)
            check_here(ui, findings[size_name(size)], "outage-503-page", frozenset({503}))
    finally:
        suite.start("auth")
        suite.start("billing")
        suite.wait_ready(timeout=90)
    problems = []
    for found in findings.values():
        try:
            found.assert_none()
        except AssertionError as exc:
            problems.append(str(exc))
    assert not problems, "\n".join(problems)
