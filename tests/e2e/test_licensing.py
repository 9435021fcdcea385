"""Licensing end to end: the real gateway over HTTP, every service a process, real SMTP.

What a new user does: staff issue a license with portalctl, the company logs in and sees it,
the product activates machines with curl-like calls, the company deactivates one from the
portal, and anyone verifies a certificate offline with a JWT library and the JWKS.
"""

from __future__ import annotations

import uuid
from urllib.parse import quote

import jwt
import pytest
import requests
from eventlet.greenpool import GreenPool

from tests.support.blips import queue_consumers, wait_until

pytestmark = pytest.mark.e2e

PASSWORD = "Quarry-Lighthouse-31"


@pytest.fixture(scope="module")
def product(suite) -> str:
    code = f"cad-{uuid.uuid4().hex[:8]}"
    created = suite.portalctl("product", "create", "--code", code, "--name", "CAD Pro")
    assert created == {"code": code, "name": "CAD Pro", "active": True, "features": []}
    return code


def new_company(suite) -> dict:
    email = f"lic.{uuid.uuid4().hex[:10]}@example.test"
    return suite.portalctl(
        "company",
        "create",
        "--name",
        "Acme",
        "--contact-name",
        "Ada",
        "--email",
        email,
        "--password",
        PASSWORD,
    )


def issue(suite, customer_id: str, product: str, seats: int = 2, *more: str) -> dict:
    return suite.portalctl(
        "license",
        "issue",
        "--customer",
        customer_id,
        "--product",
        product,
        "--seats",
        str(seats),
        *more,
    )


def activation(license: dict, installation_id: str, machine: str, password=None) -> dict:
    return {
        "license_id": license["license_id"],
        "password": password or license["activation_password"],
        "installation_id": installation_id,
        "machine_name": machine,
    }


def test_a_company_sees_activates_deactivates_and_verifies_offline(suite, api, product, smtp_sink):
    company = new_company(suite)
    license = issue(suite, company["customer_id"], product, 2, "--expires", "2099-12-31")
    assert license["license_id"].startswith("L-") and license["activation_password"]
    token = api.login(company["customer_id"], PASSWORD)

    listed = api.get("/api/v1/licenses", token=token).json()["licenses"]
    assert listed == [
        {
            "license_id": license["license_id"],
            "product": {"code": product, "name": "CAD Pro"},
            "seats": 2,
            "seats_in_use": 0,
            "expires_at": "2099-12-31T23:59:59+00:00",
            "status": "active",
            "suspension_reason": None,
            "suspension_cause": None,
            "created_at": listed[0]["created_at"],
            "features": [],
            "model": "node_locked",
            "lease_seconds": None,
            "max_borrow_days": None,
            "nickname": None,
            "note": None,
            # issued by staff, not bought: nothing renews it
            "renewal": {
                "status": "none",
                "next_charge_at": None,
                "amount": None,
                "currency": None,
                "interval": None,
                "plan": None,
                "recurring_payment_id": None,
            },
        }
    ]
    detail = api.get(f"/api/v1/licenses/{license['license_id']}", token=token).json()
    assert detail["activation_password"] == license["activation_password"]

    odd_id = "Büro/Ω 🖥️?#%2F"  # any Unicode, slashes and URL syntax included
    first = api.post("/api/v1/activations", json=activation(license, odd_id, "Zeichenbüro 設計"))
    assert first.status_code == 201, first.text
    again = api.post("/api/v1/activations", json=activation(license, odd_id, "Zeichenbüro 設計"))
    assert again.status_code == 200, again.text
    second = api.post("/api/v1/activations", json=activation(license, "ws-2", "WS-2"))
    assert second.status_code == 201
    full = api.post("/api/v1/activations", json=activation(license, "ws-3", "WS-3"))
    assert full.status_code == 409
    assert full.json()["error"]["code"] == "no_seats_available"
    assert sorted(full.json()["error"]["details"]["machines"]) == ["WS-2", "Zeichenbüro 設計"]

    installations = api.get(
        f"/api/v1/licenses/{license['license_id']}/installations", token=token
    ).json()["installations"]
    assert {(i["installation_id"], i["machine_name"]) for i in installations} == {
        (odd_id, "Zeichenbüro 設計"),
        ("ws-2", "WS-2"),
    }
    path = f"/api/v1/licenses/{license['license_id']}/installations/{quote(odd_id, safe='')}"
    gone = api.post(path + "/deactivate", token=token)
    assert gone.status_code == 200, gone.text
    assert gone.json()["installation_id"] == odd_id
    assert gone.json()["deactivated_by"] == "portal"
    assert (
        api.post("/api/v1/activations", json=activation(license, "ws-3", "WS-3")).status_code == 201
    )

    history = api.get(
        f"/api/v1/licenses/{license['license_id']}/history?limit=3", token=token
    ).json()
    assert [(e["type"], e["source"]) for e in history["events"]] == [
        ("activated", "product"),
        ("deactivated", "portal"),
        ("activation_refused", "product"),
    ]
    older = api.get(
        f"/api/v1/licenses/{license['license_id']}/history?limit=3&before={history['next_before']}",
        token=token,
    ).json()
    assert [e["type"] for e in older["events"]] == ["activated", "reactivated", "activated"]

    # offline: a standard JWT library and the published JWKS, nothing else
    certificate = second.json()["certificate"]
    jwks = jwt.PyJWKSet.from_dict(
        requests.get(suite.url + "/api/v1/signing-keys", timeout=10).json()
    )
    key = jwks[jwt.get_unverified_header(certificate)["kid"]].key
    claims = jwt.decode(certificate, key, algorithms=["EdDSA"])
    assert claims["license_id"] == license["license_id"]
    assert claims["machine_name"] == "WS-2" and claims["customer_id"] == company["customer_id"]

    valid = api.post("/api/v1/validations", json={"certificate": certificate}).json()
    assert (valid["valid"], valid["code"]) == (True, "VALID")
    assert valid["deactivated_at"] is valid["suspended_at"] is None
    stale = api.post("/api/v1/validations", json={"certificate": first.json()["certificate"]})
    assert stale.json()["code"] == "DEACTIVATED"
    # who and when, in the plain answer as in the signed one
    assert stale.json()["deactivated_by"] == "portal" and stale.json()["deactivated_at"]
    bad = api.post("/api/v1/validations", json={"certificate": certificate[:-3] + "abc"})
    assert bad.status_code == 200 and bad.json()["code"] == "BAD_SIGNATURE"

    rotated = api.post(f"/api/v1/licenses/{license['license_id']}/activation-password", token=token)
    assert rotated.status_code == 200
    old = api.post(
        "/api/v1/deactivations",
        json={
            "license_id": license["license_id"],
            "password": license["activation_password"],
            "installation_id": "ws-2",
        },
    )
    assert old.status_code == 401 and old.json()["error"]["code"] == "invalid_credentials"
    released = api.post(
        "/api/v1/deactivations",
        json={
            "license_id": license["license_id"],
            "password": rotated.json()["activation_password"],
            "installation_id": "ws-2",
        },
    )
    assert released.status_code == 200 and released.json()["deactivated_by"] == "product"

    email = company["contact_email"].lower()
    smtp_sink.wait_for(lambda m: "WS-2" in (m["Subject"] or ""), to=email, timeout=20)


def test_errors_of_the_activation_api(suite, api, product):
    company = new_company(suite)
    license = issue(suite, company["customer_id"], product, 1)
    wrong = api.post("/api/v1/activations", json=activation(license, "i", "m", "wrong"))
    unknown = api.post(
        "/api/v1/activations", json={**activation(license, "i", "m"), "license_id": "L-2222-2222"}
    )
    assert wrong.status_code == unknown.status_code == 401
    # the same answer but for each request's own ID
    assert without_request_id(wrong.json()) == without_request_id(unknown.json())
    by_company = api.post("/api/v1/activations", json=activation(license, "i", "m", PASSWORD))
    assert by_company.status_code == 201

    expired = issue(suite, company["customer_id"], product, 1, "--expires", "2020-01-01", "--force")
    answer = api.post("/api/v1/activations", json=activation(expired, "i", "m"))
    assert answer.status_code == 403 and answer.json()["error"]["code"] == "license_expired"
    suspended = issue(suite, company["customer_id"], product, 1)
    suite.portalctl("license", "suspend", suspended["license_id"])
    answer = api.post("/api/v1/activations", json=activation(suspended, "i", "m"))
    assert answer.status_code == 403 and answer.json()["error"]["code"] == "license_suspended"

    for field, value in [
        ("installation_id", ""),
        ("installation_id", "x" * 129),
        ("installation_id", "nul\x00"),
        ("machine_name", ""),
        ("machine_name", "m" * 201),
    ]:
        answer = api.post(
            "/api/v1/activations", json={**activation(license, "i", "m"), field: value}
        )
        assert answer.status_code == 422, (field, answer.text)
        assert field in answer.json()["error"]["details"]["fields"]

    for _ in range(10):
        api.post("/api/v1/activations", json=activation(license, "i", "m", "guess"))
    throttled = api.post("/api/v1/activations", json=activation(license, "i", "m"))
    assert throttled.status_code == 429
    assert int(throttled.headers["Retry-After"]) > 0


def test_another_companys_license_is_a_404_everywhere(suite, api, product):
    owner = new_company(suite)
    license = issue(suite, owner["customer_id"], product, 1)
    api.post("/api/v1/activations", json=activation(license, "inst", "m"))
    stranger = api.login(new_company(suite)["customer_id"], PASSWORD)
    base = f"/api/v1/licenses/{license['license_id']}"
    for method, path in [
        ("GET", base),
        ("GET", base + "/installations"),
        ("GET", base + "/history"),
        ("POST", base + "/installations/inst/deactivate"),
        ("POST", base + "/activation-password"),
    ]:
        answer = api.request(method, path, token=stranger)
        assert answer.status_code == 404, (path, answer.text)
        assert answer.json()["error"]["code"] == "license_not_found"
        assert license["activation_password"] not in answer.text
    assert api.get("/api/v1/licenses", token=stranger).json() == {"licenses": []}
    assert api.get(base).status_code == 401


def test_forty_racing_activations_across_two_licensing_processes(suite, api, product):
    suite.start("licensing")  # a second licensing process on the same queue and database
    amqp = suite.env["AMQP_URI"]
    # /readyz answers as soon as the first one does: wait for the second one to consume
    wait_until(lambda: queue_consumers(amqp, "rpc-licensing") >= 2, 60, "two licensing consumers")
    company = new_company(suite)
    license = issue(suite, company["customer_id"], product, 3)

    def activate(index: int) -> int:
        with requests.Session() as http:
            answer = http.post(
                suite.url + "/api/v1/activations",
                json=activation(license, f"race-{index}", f"Racer {index}"),
                timeout=30,
            )
        return answer.status_code

    statuses = list(GreenPool(40).imap(activate, range(40)))
    assert statuses.count(201) == 3, statuses
    assert statuses.count(409) == 37, statuses
    shown = suite.portalctl("license", "show", license["license_id"])
    assert shown["seats_in_use"] == 3
    # the suite as it was: every process holds database connections (PostgreSQL allows 100)
    assert suite.terminate("licensing", len(suite.processes["licensing"]) - 1) == 0


def test_portalctl_license_commands(suite, product):
    company = new_company(suite)
    license = issue(suite, company["customer_id"], product, 4, "--expires", "2030-06-30")
    assert license["seats"] == 4 and license["status"] == "active"
    assert suite.portalctl("license", "suspend", license["license_id"])["status"] == "suspended"
    assert suite.portalctl("license", "resume", license["license_id"])["status"] == "active"
    extended = suite.portalctl("license", "extend", license["license_id"], "--until", "2031-06-30")
    assert extended["expires_at"].startswith("2031-06-30")
    failed = suite.portalctl("license", "show", "L-NOPE-NOPE", check=False)
    assert failed.returncode != 0 and "license_not_found" in failed.stderr
    failed = suite.portalctl(
        "license",
        "issue",
        "--customer",
        company["customer_id"],
        "--product",
        "no-such",
        "--seats",
        "1",
        check=False,
    )
    assert failed.returncode != 0 and "product_not_found" in failed.stderr


def without_request_id(body: dict) -> dict:
    return {**body, "error": {k: v for k, v in body["error"].items() if k != "request_id"}}
