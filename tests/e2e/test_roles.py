"""Every session route of the API against every role, over real HTTP (design §10).

The expected table is written out here, on purpose not read from `gateway.roles` or the
routes: a route whose `roles=` is changed by mistake fails this test, and a new session
route fails it until it is added to the table. One company has a user of each role; each
route is called with each role's session: a refused role gets 403 `forbidden` naming the
roles that may, an admitted one anything but 403 (404 or 409 for the made-up IDs below:
what matters is that the role check let it through). Request bodies are valid, because a
body is checked before the session is.
"""

from __future__ import annotations

import uuid

import pytest
import requests

from gateway import service  # noqa: F401  (declares the routes: fills ROUTES)
from gateway.http import ROUTES
from tests.support.team import ROLES, new_team

pytestmark = pytest.mark.e2e

OWNER, LICENSE_ADMIN, BILLING, VIEWER = ROLES
EVERYONE = {OWNER, LICENSE_ADMIN, BILLING, VIEWER}
LICENSES = {OWNER, LICENSE_ADMIN}
BILLS = {OWNER, BILLING}
OWNERS = {OWNER}

# (method, path) → the roles that may use it
EXPECTED: dict[tuple[str, str], set[str]] = {
    ("DELETE", "/api/v1/sessions/current"): EVERYONE,
    ("GET", "/api/v1/account"): EVERYONE,
    ("PUT", "/api/v1/account/password"): EVERYONE,
    ("GET", "/api/v1/account/notifications"): EVERYONE,
    ("PUT", "/api/v1/account/notifications"): EVERYONE,
    ("GET", "/api/v1/account/billing-details"): BILLS,
    ("PUT", "/api/v1/account/billing-details"): BILLS,
    ("GET", "/api/v1/payments"): BILLS,
    ("GET", "/api/v1/payments/<receipt_number>/receipt"): BILLS,
    ("GET", "/api/v1/recurring-payments"): BILLS,
    ("POST", "/api/v1/recurring-payments/<recurring_payment_id>/cancel"): BILLS,
    ("POST", "/api/v1/recurring-payments/<recurring_payment_id>/resume"): BILLS,
    ("PUT", "/api/v1/recurring-payments/<recurring_payment_id>/card"): BILLS,
    ("GET", "/api/v1/catalog"): BILLS,
    ("POST", "/api/v1/purchases"): BILLS,
    ("POST", "/api/v1/purchases/<purchase_id>/confirm"): BILLS,
    ("GET", "/api/v1/licenses"): EVERYONE,
    ("GET", "/api/v1/licenses/<license_id>"): EVERYONE,
    ("PATCH", "/api/v1/licenses/<license_id>"): LICENSES,
    ("GET", "/api/v1/licenses/<license_id>/installations"): EVERYONE,
    ("GET", "/api/v1/licenses/<license_id>/history"): EVERYONE,
    (
        "POST",
        "/api/v1/licenses/<license_id>/installations/<path:installation_id>/deactivate",
    ): LICENSES,
    ("POST", "/api/v1/licenses/<license_id>/activation-password"): LICENSES,
    ("POST", "/api/v1/licenses/<license_id>/offline-activations"): LICENSES,
    ("POST", "/api/v1/licenses/<license_id>/offline-deactivations"): LICENSES,
    ("GET", "/api/v1/licenses/<license_id>/leases"): EVERYONE,
    ("POST", "/api/v1/licenses/<license_id>/leases/<lease_id>/revoke"): LICENSES,
    ("GET", "/api/v1/users"): OWNERS,
    ("POST", "/api/v1/users"): OWNERS,
    ("PATCH", "/api/v1/users/<user_id>"): OWNERS,
    ("DELETE", "/api/v1/users/<user_id>"): OWNERS,
    ("POST", "/api/v1/users/<user_id>/disable"): OWNERS,
    ("POST", "/api/v1/users/<user_id>/enable"): OWNERS,
    ("POST", "/api/v1/users/<user_id>/invitation"): OWNERS,
    ("GET", "/api/v1/audit-events"): OWNERS,
}

CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2031, "cvc": "123"}
# path values: the company's real license, and IDs nobody has
NOWHERE = {
    "purchase_id": "pur_nosuchpurchase",
    "installation_id": "no-such-machine",
    "receipt_number": "R-2026-999999",
    "recurring_payment_id": "rp_nosuchpayment",
    "user_id": "U-NONE-0000",
    "lease_id": "LS-NONE-0000",
}


def body_of(method: str, path: str, team) -> dict | None:
    """A valid body for the route that changes nothing for good when admitted."""
    if path == "/api/v1/account/password":
        # the right current password and a weak new one: 422, nothing changes
        return {"current_password": "{password}", "new_password": "short"}
    if path == "/api/v1/account/notifications":
        return {"preferences": {}}
    if path == "/api/v1/account/billing-details":
        return {"company_name": "Acme Team", "address": "Hauptstraße 1\n10115 Berlin"}
    if path.endswith("/card"):
        return {"card": CARD}
    if path == "/api/v1/purchases":
        return {"plan": f"no-plan-{uuid.uuid4().hex[:6]}", "seats": 1, "card": CARD}
    if path == "/api/v1/users" and method == "POST":
        # the viewer's email: taken, so an admitted call is a 409 and invites nobody
        return {"email": team.members[VIEWER].email, "name": "Again", "role": "viewer"}
    if path == "/api/v1/licenses/<license_id>" and method == "PATCH":
        return {"note": None}  # the license has no note: clearing it changes nothing
    if path == "/api/v1/users/<user_id>":
        return {"name": "Nobody"} if method == "PATCH" else None
    # admitted, licensing refuses these files (422 invalid_request / invalid_proof)
    if path.endswith("/offline-activations"):
        return {"request": "not a request file"}
    if path.endswith("/offline-deactivations"):
        return {"proof": "not a proof file"}
    return None


def concrete(path: str, license_id: str) -> str:
    values = {**NOWHERE, "license_id": license_id}
    for name, value in values.items():
        path = path.replace(f"<path:{name}>", value).replace(f"<{name}>", value)
    assert "<" not in path, path
    return path


@pytest.fixture(scope="module")
def team(suite, api, smtp_sink):
    team = new_team(suite, api, smtp_sink)
    product = f"role{uuid.uuid4().hex[:8]}"
    suite.portalctl("product", "create", "--code", product, "--name", "CAD Pro")
    license = suite.portalctl(
        "license", "issue", "--customer", team.company["customer_id"], "--product", product,
        "--seats", "3", "--expires", "2099-12-31",
    )  # fmt: skip
    activated = api.post(
        "/api/v1/activations",
        json={
            "license_id": license["license_id"],
            "password": license["activation_password"],
            "installation_id": "ws-roles-1",
            "machine_name": "CAD-WS-01",
        },
    )
    assert activated.status_code == 201, activated.text
    team.license = license
    return team


def test_the_table_names_every_session_route_of_the_api():
    declared = {
        (route.method, route.path)
        for route in ROUTES
        if route.auth == "session" and route.path.startswith("/api/v1/")
    }
    assert sorted(declared - set(EXPECTED)) == [], "session routes missing from EXPECTED"
    assert sorted(set(EXPECTED) - declared) == [], "EXPECTED names routes that do not exist"


@pytest.mark.parametrize("role", ROLES)
def test_each_route_admits_exactly_its_roles(api, team, role):
    member = team.members[role]
    wrong = []
    for (method, path), allowed in sorted(EXPECTED.items()):
        token = member.token
        if path == "/api/v1/sessions/current":
            token = api.login(member.email, member.password)  # a session of its own to end
        body = body_of(method, path, team)
        if body and "current_password" in body:
            body = {**body, "current_password": member.password}
        response = api.request(
            method,
            concrete(path, team.license["license_id"]),
            token=token,
            json=body,
        )
        if role in allowed:
            if response.status_code in (401, 403) or response.status_code >= 500:
                wrong.append((method, path, response.status_code, response.text[:200]))
            continue
        error = response.json().get("error", {}) if response.status_code == 403 else {}
        if error.get("code") != "forbidden" or set(
            error.get("details", {}).get("required_roles", [])
        ) != set(allowed):
            wrong.append((method, path, response.status_code, response.text[:200]))
    assert wrong == [], f"{role}: {wrong}"
    # the session still works: no call above ended it
    assert api.get("/api/v1/account", token=member.token).json()["user"]["role"] == role


def test_a_viewer_and_a_billing_user_never_see_an_activation_password(api, team):
    license_id = team.license["license_id"]
    owner = api.get(f"/api/v1/licenses/{license_id}", token=team.token(OWNER))
    password = owner.json()["activation_password"]
    assert password  # the owner does: what the others must not see is this
    assert (
        api.get(f"/api/v1/licenses/{license_id}", token=team.token(LICENSE_ADMIN)).json()[
            "activation_password"
        ]
        == password
    )
    for role in (VIEWER, BILLING):
        token = team.token(role)
        detail = api.get(f"/api/v1/licenses/{license_id}", token=token)
        assert detail.status_code == 200
        assert detail.json()["activation_password"] is None
        assert detail.json()["installations"][0]["machine_name"] == "CAD-WS-01"
        for path in (
            "/api/v1/licenses",
            f"/api/v1/licenses/{license_id}",
            f"/api/v1/licenses/{license_id}/installations",
            f"/api/v1/licenses/{license_id}/history",
            "/api/v1/account",
        ):
            response = api.get(path, token=token)
            assert response.status_code == 200, (role, path, response.text)
            assert password not in response.text, (role, path)
        rotated = api.post(f"/api/v1/licenses/{license_id}/activation-password", token=token)
        assert rotated.status_code == 403
        assert password not in rotated.text
    # the viewer may not buy; a purchase answer would name the license
    bought = api.post(
        "/api/v1/purchases",
        token=team.token(VIEWER),
        json={"plan": "any-plan", "seats": 1, "card": CARD},
    )
    assert bought.status_code == 403
    assert bought.json()["error"]["details"]["required_roles"] == ["owner", "billing"]


def test_a_refused_page_says_so_and_an_allowed_one_renders(api, team):
    for role, path, allowed in (
        (VIEWER, "/payments", False),
        (LICENSE_ADMIN, "/buy", False),
        (BILLING, "/users", False),
        (LICENSE_ADMIN, "/activity", False),
        (BILLING, "/payments", True),
        (OWNER, "/users", True),
        (OWNER, "/activity", True),
        (VIEWER, "/licenses", True),
    ):
        page = requests.get(
            api.base_url + path,
            cookies={"portal_session": team.token(role)},
            allow_redirects=False,
            timeout=15,
        )
        assert page.status_code == (200 if allowed else 403), (role, path, page.status_code)
        assert page.headers["Content-Type"].startswith("text/html")
