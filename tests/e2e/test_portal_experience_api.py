"""Issue 16 over HTTP, against the running suite: how each license renews (and for how much,
by role), the company's labels of a license, a reset or invitation link checked before its
form, the receipt as a portal page with Print, the HTML 404 page, and a portal page whose
session has ended going to the login page instead of answering JSON."""

from __future__ import annotations

import re
import time
import uuid

import pytest
import requests
from sqlalchemy import create_engine, text

from tests.support.smtp_sink import text_body
from tests.support.team import PASSWORD, Team, new_company, new_team

pytestmark = pytest.mark.e2e

PLAN = "cadpro-yearly"
CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2031, "cvc": "123"}
RESET_LINK = re.compile(r"https?://\S+/reset-password#token=([A-Za-z0-9_\-]+)")
NEW_PASSWORD = "Harbour-Lantern-97"


def buy(api, token: str, seats: int) -> dict:
    body = {"plan": PLAN, "seats": seats, "card": CARD}
    response = api.post("/api/v1/purchases", token=token, json=body)
    assert response.status_code == 201, response.text
    assert response.json()["license"], response.json()
    return response.json()


def recurring_of(api, token: str, license_id: str, timeout: float = 15.0) -> dict:
    """The license's recurring payment once billing knows the license (licensing's
    `license_issued` event reaches billing a moment after the purchase answer)."""
    deadline = time.monotonic() + timeout
    while True:
        found = api.get("/api/v1/recurring-payments", token=token).json()["recurring_payments"]
        mine = [item for item in found if item["license_id"] == license_id]
        if mine or time.monotonic() > deadline:
            assert mine, f"billing never linked a recurring payment to {license_id}"
            return mine[0]
        time.sleep(0.05)


def set_past_due(suite, recurring_payment_id: str) -> None:
    """Billing's own word after the last retry of a declined renewal (settlement): the
    sandbox's cards never decline at renewal when they paid the purchase, so the state is
    written as billing writes it."""
    engine = create_engine(suite.env["BILLING_DATABASE_URL"])
    try:
        with engine.begin() as connection:
            changed = connection.execute(
                text("UPDATE recurring_payments SET status = 'past_due' WHERE reference = :id"),
                {"id": recurring_payment_id},
            ).rowcount
        assert changed == 1
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def team(suite, api, smtp_sink) -> Team:
    suite.portalctl("demo")  # the demo product and its plans (idempotent)
    return new_team(suite, api, smtp_sink)


@pytest.fixture(scope="module")
def renewals(suite, api, team) -> dict:
    """Four licenses of the team's company: one renews automatically, one with auto-renew
    off, one whose renewal payment failed, one issued by staff without a recurring payment."""
    owner = team.token("owner")
    automatic = buy(api, owner, 2)["license"]
    cancelled = buy(api, owner, 3)["license"]
    past_due = buy(api, owner, 4)["license"]
    shown = recurring_of(api, owner, automatic["license_id"])
    off = recurring_of(api, owner, cancelled["license_id"])
    failing = recurring_of(api, owner, past_due["license_id"])
    answer = api.post(f"/api/v1/recurring-payments/{off['id']}/cancel", token=owner)
    assert answer.status_code == 200, answer.text
    set_past_due(suite, failing["id"])
    product = automatic["product"]["code"]
    issued = suite.portalctl(
        "license", "issue", "--customer", team.company["customer_id"],
        "--product", product, "--seats", "2", "--expires", "2031-12-31",
    )  # fmt: skip
    return {
        "automatic": (automatic["license_id"], shown),
        "cancelled": (cancelled["license_id"], off),
        "past_due": (past_due["license_id"], failing),
        "none": (issued["license_id"], None),
    }


# --- renewal ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "priced"),
    [("owner", True), ("billing", True), ("license_admin", False), ("viewer", False)],
)
def test_every_license_says_how_it_renews_and_only_billing_roles_see_for_how_much(
    api, team, renewals, role, priced
) -> None:
    token = team.token(role)
    listed = api.get("/api/v1/licenses", token=token)
    assert listed.status_code == 200, listed.text
    by_id = {item["license_id"]: item for item in listed.json()["licenses"]}
    for status, (license_id, recurring) in renewals.items():
        renewal = by_id[license_id]["renewal"]
        detail = api.get(f"/api/v1/licenses/{license_id}", token=token).json()["renewal"]
        assert detail == renewal, (status, detail, renewal)
        assert renewal["status"] == status, (license_id, renewal)
        if recurring is None:
            assert renewal == {
                "status": "none",
                "next_charge_at": None,
                "amount": None,
                "currency": None,
                "interval": None,
                "plan": None,
                "recurring_payment_id": None,
            }
            continue
        assert renewal["next_charge_at"] == recurring["next_charge_at"]
        assert renewal["recurring_payment_id"] == recurring["id"]
        assert (renewal["interval"], renewal["plan"]) == ("year", PLAN), renewal
        assert (recurring["interval"], recurring["plan"]) == ("year", PLAN), recurring
        if priced:
            assert (renewal["amount"], renewal["currency"]) == (
                recurring["amount"],
                recurring["currency"],
            )
        else:
            assert (renewal["amount"], renewal["currency"]) == (None, None)


# --- labels -------------------------------------------------------------------------------


def test_owners_and_license_admins_name_a_license_and_others_may_not(api, team, renewals):
    license_id, _ = renewals["automatic"]
    path = f"/api/v1/licenses/{license_id}"
    named = api.patch(
        path,
        token=team.token("owner"),
        json={"nickname": "  Design office  ", "note": "Floor 2 workstations"},
    )
    assert named.status_code == 200, named.text
    assert (named.json()["nickname"], named.json()["note"]) == (
        "Design office",
        "Floor 2 workstations",
    )
    assert named.json()["renewal"]["status"] == "automatic"
    # a license admin changes the nickname only: the note stays
    renamed = api.patch(path, token=team.token("license_admin"), json={"nickname": "CAD 1"})
    assert renamed.status_code == 200, renamed.text
    listed = api.get("/api/v1/licenses", token=team.token("viewer")).json()["licenses"]
    [mine] = [item for item in listed if item["license_id"] == license_id]
    assert (mine["nickname"], mine["note"]) == ("CAD 1", "Floor 2 workstations")
    for role in ("viewer", "billing"):
        refused = api.patch(path, token=team.token(role), json={"nickname": "Mine"})
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"]["code"] == "forbidden"
    # licensing's rules, passed on by the gateway (which checks types and fields only)
    for body, field in (
        ({"nickname": "x" * 61}, "nickname"),
        ({"nickname": "two\nlines"}, "nickname"),
        ({"nickname": "\ud800"}, "nickname"),
        ({"note": "x" * 501}, "note"),
        ({"note": "a\x00b"}, "note"),
        ({"note": 7}, "note"),
        ({"nickname": "ok", "colour": "red"}, "colour"),
        ({}, "_schema"),
    ):
        invalid = api.patch(path, token=team.token("owner"), json=body)
        assert invalid.status_code == 422, invalid.text
        assert invalid.json()["error"]["code"] == "validation_error"
        assert field in str(invalid.json()["error"]["details"]), invalid.text
    # clearing
    cleared = api.patch(path, token=team.token("owner"), json={"nickname": "", "note": None})
    assert cleared.status_code == 200, cleared.text
    assert (cleared.json()["nickname"], cleared.json()["note"]) == (None, None)


# --- a reset or invitation link, checked before its form ----------------------------------


def reset_token(api, smtp_sink, email: str, seen: set[str]) -> str:
    answer = api.post("/api/v1/password-resets", json={"login": email})
    assert answer.status_code == 202, answer.text

    def fresh(message) -> bool:
        if email.lower() not in (message["To"] or "").lower():
            return False
        return any(token not in seen for token in RESET_LINK.findall(text_body(message)))

    message = smtp_sink.wait_for(fresh, timeout=20)
    return next(token for token in RESET_LINK.findall(text_body(message)) if token not in seen)


def test_a_reset_link_is_checked_before_its_form_valid_then_used(api, smtp_sink, suite):
    company = new_company(suite)  # a company of its own: its password changes here
    email = company["contact_email"]
    token = reset_token(api, smtp_sink, email, set())
    check = api.post("/api/v1/password-resets/check", json={"token": token})
    assert check.status_code == 200, check.text
    assert check.json() == {
        "valid": True,
        "purpose": "reset",
        "email": email,
        "company_name": company["name"],
    }
    # checking does not use it up
    assert api.post("/api/v1/password-resets/check", json={"token": token}).status_code == 200
    done = api.post(
        "/api/v1/password-resets/confirm", json={"token": token, "new_password": NEW_PASSWORD}
    )
    assert done.status_code == 204, done.text
    used = api.post("/api/v1/password-resets/check", json={"token": token})
    assert used.status_code == 400, used.text
    assert used.json()["error"]["code"] == "invalid_token"
    assert used.json()["error"]["details"]["reason"] == "used"


def test_an_unknown_link_says_only_that_it_is_unknown(api) -> None:
    answer = api.post("/api/v1/password-resets/check", json={"token": uuid.uuid4().hex * 2})
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["code"] == "invalid_token" and error["details"]["reason"] == "unknown"
    assert "email" not in str(error["details"])
    bad = api.post("/api/v1/password-resets/check", json={"token": ""})
    assert bad.status_code == 422


def test_an_invitation_link_is_checked_as_an_invitation(api, smtp_sink, team) -> None:
    email = f"invited.{uuid.uuid4().hex[:8]}@example.test"
    invited = api.post(
        "/api/v1/users",
        token=team.token("owner"),
        json={"email": email, "name": "Ivy", "role": "viewer"},
    )
    assert invited.status_code == 201, invited.text
    link = re.compile(r"https?://\S+/accept-invitation#token=([A-Za-z0-9_\-]+)")
    message = smtp_sink.wait_for(
        lambda m: email in (m["To"] or "").lower() and link.search(text_body(m)), timeout=20
    )
    token = link.search(text_body(message)).group(1)
    check = api.post("/api/v1/password-resets/check", json={"token": token})
    assert check.status_code == 200, check.text
    assert check.json()["purpose"] == "invite" and check.json()["email"] == email


# --- the receipt page, the 404 page, an ended session ---------------------------------------


def browser_get(suite, path: str, token: str | None) -> requests.Response:
    """A browser's GET of a portal page with the session cookie `token` (none: no cookie)."""
    cookies = {"portal_session": token} if token else {}
    return requests.get(f"{suite.url}{path}", cookies=cookies, allow_redirects=False, timeout=10)


def test_the_receipt_is_a_portal_page_with_print_and_a_viewport(suite, api, team, renewals):
    token = team.token("billing")
    payments = api.get("/api/v1/payments", token=token).json()["payments"]
    receipt = payments[0]["receipt_number"]
    page = browser_get(suite, f"/payments/{receipt.lower()}", token)
    assert page.status_code == 200, page.text
    assert page.headers["Content-Type"].startswith("text/html")
    html = page.text
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    assert 'id="print"' in html and ">Print</button>" in html
    assert '<script type="module" src="/static/receipt-print.js"></script>' in html
    assert f"Sales receipt {receipt}" in html and payments[0]["amount_formatted"] in html
    assert payments[0]["amount_formatted"].startswith("€")
    assert '<nav class="mainnav"' in html  # the portal's layout
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    script = requests.get(f"{suite.url}/static/receipt-print.js", timeout=10)
    assert script.status_code == 200 and "window.print()" in script.text
    css = requests.get(f"{suite.url}/static/portal.css", timeout=10).text
    assert "@media print" in css and ".receipt-actions" in css
    # the API's receipt stays for API clients
    api_receipt = api.get(f"/api/v1/payments/{receipt}/receipt", token=token)
    assert api_receipt.status_code == 200 and receipt in api_receipt.text
    # a role without billing gets the 403 page, not the receipt
    refused = browser_get(suite, f"/payments/{receipt}", team.token("viewer"))
    assert refused.status_code == 403 and "text/html" in refused.headers["Content-Type"]
    # someone else's or no receipt: the 404 page
    missing = browser_get(suite, "/payments/R-2000-999999", token)
    assert missing.status_code == 404 and "Page not found" in missing.text


def test_an_ended_session_on_a_portal_page_goes_to_the_login_page(suite, api, team, renewals):
    receipt = api.get("/api/v1/payments", token=team.token("owner")).json()["payments"][0]
    path = f"/payments/{receipt['receipt_number']}"
    for token in (None, "no-such-session-" + uuid.uuid4().hex):
        page = browser_get(suite, path, token)
        assert page.status_code == 303, page.text
        assert page.headers["Location"] == f"/login?next={path}"
        assert not page.headers.get("Content-Type", "").startswith("application/json")
    # a session that was live and has ended (logged out)
    ended = api.login(team.company["contact_email"], PASSWORD)
    assert browser_get(suite, path, ended).status_code == 200
    assert api.delete("/api/v1/sessions/current", token=ended).status_code == 204
    page = browser_get(suite, path, ended)
    assert page.status_code == 303 and page.headers["Location"] == f"/login?next={path}"
    licenses = browser_get(suite, "/licenses", ended)
    assert licenses.status_code == 303 and licenses.headers["Location"].startswith("/login")


def test_an_unknown_page_is_an_html_404_and_an_unknown_api_url_json(suite) -> None:
    page = requests.get(f"{suite.url}/no-such-page", timeout=10)
    assert page.status_code == 404
    assert page.headers["Content-Type"].startswith("text/html")
    assert "Page not found" in page.text and 'href="/licenses"' in page.text
    assert 'name="viewport"' in page.text and "/static/portal.css" in page.text
    api_url = requests.get(f"{suite.url}/api/v1/no-such", timeout=10)
    assert api_url.status_code == 404
    assert api_url.headers["Content-Type"].startswith("application/json")
    assert api_url.json()["error"]["code"] == "not_found"
