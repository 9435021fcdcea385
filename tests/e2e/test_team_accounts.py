"""Team accounts end to end: the real gateway over HTTP, every service a process, real SMTP.

The journey of design §10: the contact (the company's first owner) invites a license admin
and a billing user, the invitations arrive by email, each accepts with the token of its link
and logs in, each sees and does only what the role allows, and the audit trail (also as CSV)
names who did what.
"""

from __future__ import annotations

import csv
import io
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from tests.support.smtp_sink import text_body
from tests.support.team import (
    PASSWORD,
    invitation,
    invite,
    new_company,
    staff_rpc,
    unique_email,
)

pytestmark = pytest.mark.e2e

LIN_PASSWORD = "Granite-Meadow-58"
BILL_PASSWORD = "Copper-Harbour-73"
CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2031, "cvc": "123"}
RESET_LINK = re.compile(r"https?://\S+/reset-password#token=([A-Za-z0-9_\-]+)")


@pytest.fixture(scope="module")
def shop(suite) -> dict:
    """A product with a monthly plan, made by staff."""
    code = f"team{uuid.uuid4().hex[:8]}"
    suite.portalctl("product", "create", "--code", code, "--name", "CAD Pro")
    plan = suite.portalctl(
        "plan", "create", "--code", f"{code}-m", "--product", code,
        "--amount", "4900", "--currency", "EUR", "--interval", "month",
    )  # fmt: skip
    return {"product": code, "plan": plan["code"]}


def activation(license: dict, installation_id: str, password: str | None = None) -> dict:
    return {
        "license_id": license["license_id"],
        "password": password or license["activation_password"],
        "installation_id": installation_id,
        "machine_name": f"CAD-{installation_id}",
    }


def accept(api, smtp_sink, email: str, password: str) -> str:
    """Accept the invitation emailed to `email`; the token it used."""
    _, _, token = invitation(smtp_sink, email)
    accepted = api.post("/api/v1/invitations/accept", json={"token": token, "password": password})
    assert accepted.status_code == 204, accepted.text
    return token


def whole_trail(api, token: str, **query) -> list[dict]:
    """Every event of the company's trail, page by page (newest first)."""
    events, before = [], None
    while True:
        params = {**query, "limit": 7, **({"before": before} if before else {})}
        response = api.get("/api/v1/audit-events", token=token, params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        events += page["events"]
        before = page["next_before"]
        if not before:
            return events


def acted(events: list[dict], action: str, email: str | None = None) -> list[dict]:
    """The events of `action` (by the user with `email`, if given)."""
    return [
        event
        for event in events
        if event["action"] == action and (email is None or event["actor"].get("email") == email)
    ]


def test_a_team_is_invited_works_within_its_roles_and_is_audited(suite, api, smtp_sink, shop):
    company = new_company(suite)
    customer_id, owner_email = company["customer_id"], company["contact_email"]
    session = api.post("/api/v1/sessions", json={"login": customer_id, "password": PASSWORD})
    assert session.status_code == 201, session.text
    owner = session.json()["token"]
    me = session.json()["user"]
    assert me["role"] == "owner" and me["email"] == owner_email.lower()
    assert re.fullmatch(r"U-[0-9A-Z]{4}-[0-9A-Z]{4}", me["user_id"]), me
    assert api.get("/api/v1/account", token=owner).json()["user"] == me

    license = suite.portalctl(
        "license", "issue", "--customer", customer_id, "--product", shop["product"],
        "--seats", "2", "--expires", "2099-12-31",
    )  # fmt: skip
    license_id = license["license_id"]
    for machine in ("ws-1", "ws-2"):
        response = api.post("/api/v1/activations", json=activation(license, machine))
        assert response.status_code == 201, response.text

    # --- the owner invites a license admin and a billing user -------------------------------
    lin_email, bill_email = unique_email("lin"), unique_email("bill")
    lin = invite(api, owner, lin_email, "Lin", "license_admin")
    bill = invite(api, owner, bill_email, "Bill", "billing")
    assert lin["status"] == "invited" and lin["role"] == "license_admin"
    assert lin["contact"] is False and lin["last_login_at"] is None
    expires = datetime.fromisoformat(lin["invitation_expires_at"])
    in_seven_days = datetime.now(UTC) + timedelta(days=7)
    assert abs(expires - in_seven_days) < timedelta(minutes=5)
    users = api.get("/api/v1/users", token=owner).json()["users"]
    assert users[0]["email"] == owner_email.lower() and users[0]["contact"] is True
    assert {user["email"] for user in users[1:]} == {lin_email, bill_email}
    again = api.post(
        "/api/v1/users",
        token=owner,
        json={"email": lin_email.upper(), "name": "L", "role": "viewer"},
    )
    assert again.status_code == 409 and again.json()["error"]["code"] == "email_taken"
    # not before accepting: the same answer as any wrong login
    early = api.post("/api/v1/sessions", json={"login": lin_email, "password": LIN_PASSWORD})
    assert early.status_code == 401 and early.json()["error"]["code"] == "invalid_credentials"

    # --- the invitations arrive; each accepts from the link ----------------------------------
    message, link, lin_invitation = invitation(smtp_sink, lin_email)
    assert link.startswith(suite.env["PORTAL_URL"] + "/accept-invitation#token=")
    assert "invit" in message["Subject"].lower()
    assert "Acme Team" in text_body(message)
    page = api.http.get(suite.url + "/accept-invitation", timeout=10)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    weak = api.post(
        "/api/v1/invitations/accept", json={"token": lin_invitation, "password": "short"}
    )
    assert weak.status_code == 422 and weak.json()["error"]["code"] == "weak_password"
    body = {"token": lin_invitation, "password": LIN_PASSWORD}
    done = api.post("/api/v1/invitations/accept", json=body)
    assert done.status_code == 204, done.text
    reused = api.post("/api/v1/invitations/accept", json=body)
    assert reused.status_code == 400 and reused.json()["error"]["code"] == "invalid_token"
    accept(api, smtp_sink, bill_email, BILL_PASSWORD)

    wrong = api.post("/api/v1/sessions", json={"login": lin_email, "password": "not hers at all"})
    assert wrong.status_code == 401
    lin_session = api.post("/api/v1/sessions", json={"login": lin_email, "password": LIN_PASSWORD})
    assert lin_session.status_code == 201, lin_session.text
    assert lin_session.json()["user"] == {
        "user_id": lin["user_id"],
        "email": lin_email,
        "name": "Lin",
        "role": "license_admin",
    }
    assert lin_session.json()["company"]["customer_id"] == customer_id
    lin_token = lin_session.json()["token"]
    bill_token = api.login(bill_email.upper(), BILL_PASSWORD)
    assert api.get("/api/v1/account", token=bill_token).json()["user"]["role"] == "billing"

    # --- each sees only what the role allows ------------------------------------------------
    detail = api.get(f"/api/v1/licenses/{license_id}", token=lin_token).json()
    assert detail["activation_password"] == license["activation_password"]
    billed = api.get(f"/api/v1/licenses/{license_id}", token=bill_token)
    assert billed.json()["activation_password"] is None
    assert license["activation_password"] not in billed.text
    for token, path, status in (
        (lin_token, "/api/v1/payments", 403),
        (lin_token, "/api/v1/users", 403),
        (lin_token, "/api/v1/audit-events", 403),
        (bill_token, "/api/v1/payments", 200),
        (bill_token, "/api/v1/licenses", 200),
        (bill_token, "/api/v1/users", 403),
    ):
        response = api.get(path, token=token)
        assert response.status_code == status, (path, response.text)
        if status == 403:
            assert response.json()["error"]["code"] == "forbidden"
    by_bill = api.post(
        f"/api/v1/licenses/{license_id}/installations/ws-1/deactivate", token=bill_token
    )
    assert by_bill.status_code == 403
    assert by_bill.json()["error"]["details"]["required_roles"] == ["owner", "license_admin"]

    # notices: the role's own, and only those
    notices = api.get("/api/v1/account/notifications", token=lin_token).json()
    assert set(notices["available"]) == {
        "installation_activated",
        "license_expiring",
        "seats_exhausted",
    }
    refused = api.put(
        "/api/v1/account/notifications",
        token=lin_token,
        json={"preferences": {"receipts": True}},
    )
    assert refused.status_code == 422 and "receipts" in refused.text
    quieter = api.put(
        "/api/v1/account/notifications",
        token=lin_token,
        json={"preferences": {"license_expiring": False}},
    )
    assert quieter.status_code == 200, quieter.text
    assert quieter.json()["preferences"]["license_expiring"] is False

    # --- the license admin deactivates a machine: history and trail name her ----------------
    off = api.post(f"/api/v1/licenses/{license_id}/installations/ws-2/deactivate", token=lin_token)
    assert off.status_code == 200, off.text
    assert off.json()["status"] == "deactivated"
    history = api.get(f"/api/v1/licenses/{license_id}/history", token=owner).json()["events"]
    assert history[0]["type"] == "deactivated" and history[0]["installation_id"] == "ws-2"
    assert history[0]["actor"] == {"type": "user", "user_id": lin["user_id"], "email": lin_email}
    assert history[-1]["actor"]["type"] == "product"  # the first activation
    deactivations = api.get(
        "/api/v1/audit-events", token=owner, params={"action": "installation_deactivated"}
    ).json()["events"]
    assert [(e["actor"]["email"], e["target"]) for e in deactivations] == [
        (lin_email, {"type": "license", "id": license_id})
    ]
    assert deactivations[0]["details"]["installation_id"] == "ws-2"

    # --- a user's password never activates a product; the company password still does ------
    with_lin = api.post("/api/v1/activations", json=activation(license, "ws-3", LIN_PASSWORD))
    assert with_lin.status_code == 401
    assert with_lin.json()["error"]["code"] == "invalid_credentials"
    with_company = api.post("/api/v1/activations", json=activation(license, "ws-3", PASSWORD))
    assert with_company.status_code == 201, with_company.text

    # --- the billing user sets the billing details and buys ---------------------------------
    details = {"company_name": "Acme Team GmbH", "address": "Hauptstraße 1\n10115 Berlin"}
    set_details = api.put("/api/v1/account/billing-details", token=bill_token, json=details)
    assert set_details.status_code == 200, set_details.text
    bought = api.post(
        "/api/v1/purchases", token=bill_token, json={"plan": shop["plan"], "seats": 1, "card": CARD}
    )
    assert bought.status_code == 201, bought.text
    receipt = bought.json()["payment"]["receipt_number"]
    if bought.json()["license"] is not None:
        assert not bought.json()["license"].get("activation_password")

    # --- disabling ends the user's live session on the next request -------------------------
    disabled = api.post(f"/api/v1/users/{bill['user_id']}/disable", token=owner)
    assert disabled.status_code == 200 and disabled.json()["status"] == "disabled"
    gone = api.get("/api/v1/payments", token=bill_token)
    assert gone.status_code == 401 and gone.json()["error"]["code"] == "unauthenticated"
    shut = api.post("/api/v1/sessions", json={"login": bill_email, "password": BILL_PASSWORD})
    assert shut.status_code == 401 and shut.json()["error"]["code"] == "invalid_credentials"
    enabled = api.post(f"/api/v1/users/{bill['user_id'].lower()}/enable", token=owner)
    assert enabled.status_code == 200 and enabled.json()["status"] == "active"
    bill_token = api.login(bill_email, BILL_PASSWORD)

    # --- a role change applies to the live session at once ----------------------------------
    viewer = api.request(
        "PATCH", f"/api/v1/users/{bill['user_id']}", token=owner, json={"role": "viewer"}
    )
    assert viewer.status_code == 200 and viewer.json()["role"] == "viewer"
    assert api.get("/api/v1/payments", token=bill_token).status_code == 403

    # --- the contact is always an owner -----------------------------------------------------
    for method, path, body in (
        ("PATCH", f"/api/v1/users/{me['user_id']}", {"role": "viewer"}),
        ("POST", f"/api/v1/users/{me['user_id']}/disable", None),
        ("DELETE", f"/api/v1/users/{me['user_id']}", None),
    ):
        refused = api.request(method, path, token=owner, json=body)
        assert refused.status_code == 409, (path, refused.text)
        assert refused.json()["error"]["code"] == "contact_is_owner"
    stranger = api.request("PATCH", "/api/v1/users/U-NONE-0000", token=owner, json={"name": "X"})
    assert stranger.status_code == 404 and stranger.json()["error"]["code"] == "user_not_found"

    # --- the trail holds every action with its actor ------------------------------------------
    trail = whole_trail(api, owner)
    owner_mail = owner_email.lower()
    expected = [
        ("login_succeeded", owner_mail),
        ("user_invited", owner_mail),
        ("invitation_accepted", lin_email),
        ("invitation_accepted", bill_email),
        ("login_failed", lin_email),
        ("login_succeeded", lin_email),
        ("login_succeeded", bill_email),
        ("activation_password_viewed", lin_email),
        ("notification_preferences_changed", lin_email),
        ("installation_deactivated", lin_email),
        ("billing_details_changed", bill_email),
        ("purchase", bill_email),
        ("user_disabled", owner_mail),
        ("user_enabled", owner_mail),
        ("user_role_changed", owner_mail),
    ]
    missing = [(action, email) for action, email in expected if not acted(trail, action, email)]
    assert missing == [], [(e["action"], e["actor"]) for e in trail]
    invited = acted(trail, "user_invited")
    assert {e["target"]["id"] for e in invited} == {lin["user_id"], bill["user_id"]}
    assert {e["details"].get("role") for e in invited} == {"license_admin", "billing"}
    assert acted(trail, "login_failed", lin_email)[0]["details"] == {"reason": "wrong_password"}
    # the billing user was never shown the password, so nothing says so
    assert acted(trail, "activation_password_viewed", bill_email) == []
    products = acted(trail, "installation_activated")
    assert len(products) == 3 and {e["actor"]["type"] for e in products} == {"product"}
    purchase = acted(trail, "purchase", bill_email)[0]
    assert purchase["details"]["receipt_number"] == receipt
    assert purchase["details"]["automatic"] is False
    role_change = acted(trail, "user_role_changed")[0]
    assert role_change["target"]["id"] == bill["user_id"]
    assert role_change["details"] == {"old_role": "billing", "new_role": "viewer"}
    times = [e["at"] for e in trail]
    assert times == sorted(times, reverse=True)
    assert len({e["event_id"] for e in trail}) == len(trail)
    for event in trail:
        if event["actor"]["type"] == "user":
            assert event["actor"]["email"] and event["actor"]["user_id"], event
    # no password, token or card in the trail
    raw = api.get("/api/v1/audit-events", token=owner, params={"limit": 200}).text
    secrets = (PASSWORD, LIN_PASSWORD, BILL_PASSWORD, lin_invitation)
    for secret in (*secrets, license["activation_password"]):
        assert secret not in raw
    assert "4242424242424242" not in raw

    # one user's part
    mine = whole_trail(api, owner, user_id=lin["user_id"].lower())
    assert mine and {e["actor"].get("user_id") for e in mine} == {lin["user_id"]}
    assert len(mine) == len([e for e in trail if e["actor"].get("user_id") == lin["user_id"]])

    # --- the same trail as CSV ------------------------------------------------------------
    exported = api.get("/api/v1/audit-events", token=owner, params={"format": "csv"})
    assert exported.status_code == 200, exported.text
    assert exported.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in exported.headers["Content-Disposition"]
    assert "audit-events.csv" in exported.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert list(rows[0]) == [
        "at", "actor_type", "actor_email", "action", "target_type", "target_id", "details",
    ]  # fmt: skip
    now = whole_trail(api, owner)  # the export itself changes nothing
    assert [(r["action"], r["actor_email"]) for r in rows] == [
        (e["action"], e["actor"].get("email") or "") for e in now
    ]
    [row] = [r for r in rows if r["action"] == "installation_deactivated"]
    assert (row["actor_type"], row["actor_email"], row["target_id"]) == (
        "user",
        lin_email,
        license_id,
    )
    assert '"installation_id": "ws-2"' in row["details"]
    accepted = api.get("/api/v1/audit-events", token=owner, headers={"Accept": "text/csv"})
    assert accepted.headers["Content-Type"].startswith("text/csv")
    assert accepted.text == exported.text


def test_the_last_active_owner_cannot_be_demoted_disabled_or_removed(suite, api, smtp_sink):
    # without a password the contact is `invited`, not an active owner, until they set one
    company = new_company(suite, password=None)
    olga_email = unique_email("olga")
    with staff_rpc(suite) as rpc:
        olga = rpc.call(
            "auth",
            "invite_user",
            company["customer_id"],
            {"email": olga_email, "name": "Olga", "role": "owner"},
        )
    accept(api, smtp_sink, olga_email, PASSWORD)
    olga_token = api.login(olga_email, PASSWORD)
    contact = api.get("/api/v1/users", token=olga_token).json()["users"][0]
    assert contact["contact"] is True and contact["status"] == "invited"

    for method, path, body in (
        ("PATCH", f"/api/v1/users/{olga['user_id']}", {"role": "license_admin"}),
        ("POST", f"/api/v1/users/{olga['user_id']}/disable", None),
        ("DELETE", f"/api/v1/users/{olga['user_id']}", None),
    ):
        refused = api.request(method, path, token=olga_token, json=body)
        assert refused.status_code == 409, (path, refused.text)
        assert refused.json()["error"]["code"] == "last_owner"
    assert api.get("/api/v1/account", token=olga_token).json()["user"]["role"] == "owner"

    # once the contact has set the password from the welcome email, Olga may step down
    welcome = smtp_sink.wait_for(
        lambda m: (
            company["contact_email"].lower() in (m["To"] or "").lower()
            and RESET_LINK.search(text_body(m)) is not None
        ),
        timeout=20,
    )
    setup = RESET_LINK.search(text_body(welcome)).group(1)
    confirmed = api.post(
        "/api/v1/password-resets/confirm", json={"token": setup, "new_password": PASSWORD}
    )
    assert confirmed.status_code == 204, confirmed.text
    stepped = api.request(
        "PATCH",
        f"/api/v1/users/{olga['user_id']}",
        token=olga_token,
        json={"role": "license_admin"},
    )
    assert stepped.status_code == 200, stepped.text
    assert api.get("/api/v1/users", token=olga_token).status_code == 403


def test_an_invitation_can_be_resent_and_revoked(suite, api, smtp_sink):
    company = new_company(suite)
    owner = api.login(company["customer_id"], PASSWORD)
    email = unique_email("vic")
    vic = invite(api, owner, email, "Vic", "viewer")
    _, _, first = invitation(smtp_sink, email)
    resent = api.post(f"/api/v1/users/{vic['user_id']}/invitation", token=owner)
    assert resent.status_code == 200, resent.text
    assert resent.json()["status"] == "invited"
    _, _, second = invitation(smtp_sink, email, seen={first})
    old = api.post("/api/v1/invitations/accept", json={"token": first, "password": PASSWORD})
    assert old.status_code == 400 and old.json()["error"]["code"] == "invalid_token"
    new = api.post("/api/v1/invitations/accept", json={"token": second, "password": PASSWORD})
    assert new.status_code == 204, new.text
    pending = api.post(f"/api/v1/users/{vic['user_id']}/invitation", token=owner)
    assert pending.status_code == 409
    assert pending.json()["error"]["code"] == "invitation_not_pending"
    vic_token = api.login(email, PASSWORD)
    assert api.get("/api/v1/account", token=vic_token).json()["user"]["role"] == "viewer"

    # revoking an invitation is removing the invited user: the link stops working
    other = unique_email("otto")
    otto = invite(api, owner, other, "Otto", "billing")
    _, _, token = invitation(smtp_sink, other)
    removed = api.delete(f"/api/v1/users/{otto['user_id']}", token=owner)
    assert removed.status_code == 204, removed.text
    late = api.post("/api/v1/invitations/accept", json={"token": token, "password": PASSWORD})
    assert late.status_code == 400 and late.json()["error"]["code"] == "invalid_token"
    # and a removed user's session ends, too
    assert api.delete(f"/api/v1/users/{vic['user_id']}", token=owner).status_code == 204
    assert api.get("/api/v1/account", token=vic_token).status_code == 401
    gone = api.get("/api/v1/audit-events", token=owner, params={"action": "user_removed"})
    assert {e["details"].get("email") for e in gone.json()["events"]} == {other, email}
