"""Offline activation of air-gapped machines end to end (design §11): the real client kit's
CLI in a subprocess without a network (`unshare -n`), a folder as the USB stick, the portal's
API as a license admin uses it, and the running suite behind it.

The journey: request → upload → response file → install → VALID offline with the license's
features → deactivate with a proof → upload → the seat is free, in history (`source:
"offline"`, the user named) and in the audit trail. The same request again takes no second
seat; seat limits hold when online and offline activations race; every malformed request or
proof is a 422 saying what is wrong; a viewer or billing user may not upload at all.
"""

from __future__ import annotations

import json
import secrets
import uuid

import pytest
import requests
from eventlet.greenpool import GreenPool

from tests.support.offline_kit import (
    Machine,
    claims_of,
    issue_license,
    network_off_missing,
    now_text,
    product_with_modules,
    request_document,
    request_text,
)
from tests.support.team import PASSWORD, new_company, new_team

pytestmark = pytest.mark.e2e

OVER_16_KIB = 16 * 1024 + 1


@pytest.fixture(scope="module")
def team(suite, api, smtp_sink):
    """A company with an owner, a license admin, a billing user and a viewer."""
    return new_team(suite, api, smtp_sink)


@pytest.fixture(scope="module")
def product(suite) -> dict:
    """A product with two features (staff add them with portalctl)."""
    return product_with_modules(suite, "air", "CAD Pro Air")


@pytest.fixture
def issue(suite, team, product):
    def issue(seats: int = 2, features: str | None = "steel", customer: str | None = None):
        customer_id = customer or team.company["customer_id"]
        return issue_license(suite, customer_id, product["code"], seats, features)

    return issue


@pytest.fixture(scope="module")
def jwks(api) -> dict:
    """The signing keys, as a product ships them to machines that never go online."""
    response = api.get("/api/v1/signing-keys")
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
def machine(tmp_path, product, jwks, suite):
    reason = network_off_missing()
    if reason:
        pytest.skip(reason)

    def make(name: str = "ws-07") -> Machine:
        return Machine(
            root=tmp_path / name,
            product=product["code"],
            jwks=jwks,
            server=suite.url,
            installation_id=f"air-{name}-{uuid.uuid4().hex[:12]}",
        )

    return make


def product_of(license: dict) -> str:
    product = license["product"]
    return product["code"] if isinstance(product, dict) else product


def upload_request(api, token: str, license_id: str, text: str) -> requests.Response:
    return api.post(
        f"/api/v1/licenses/{license_id}/offline-activations", token=token, json={"request": text}
    )


def upload_proof(api, token: str, license_id: str, text: str) -> requests.Response:
    return api.post(
        f"/api/v1/licenses/{license_id}/offline-deactivations", token=token, json={"proof": text}
    )


def detail(api, team, license_id: str) -> dict:
    response = api.get(f"/api/v1/licenses/{license_id}", token=team.token("owner"))
    assert response.status_code == 200, response.text
    return response.json()


def refused_with_problem(response: requests.Response, code: str) -> dict:
    """The 422 `code` error; its `details.problem` says in words what is wrong."""
    assert response.status_code == 422, (response.status_code, response.text)
    error = response.json()["error"]
    assert error["code"] == code, error
    problem = error["details"].get("problem")
    assert isinstance(problem, str) and len(problem) > 5, error
    return error


# --- the journey ------------------------------------------------------------------------------


def test_the_air_gapped_journey_with_the_client_kit(suite, api, team, issue, machine):
    license = issue(seats=2, features="steel,dyn")
    license_id = license["license_id"]
    admin = team.members["license_admin"]
    ws = machine("ws-07")
    # the premise: this machine cannot reach the portal at all
    assert not ws.can_reach(suite.url + "/healthz")

    # 1. on the offline machine: write the request onto the USB stick
    request_file = ws.usb / "activation-request.json"
    written = ws.document(
        "offline-request", "--license-id", license_id, "--machine-name", "CAD-WS-07",
        "--out", str(request_file),
    )  # fmt: skip
    assert written["license_id"] == license_id and written["installation_id"] == ws.installation_id
    request = json.loads(request_file.read_text(encoding="utf-8"))
    assert request["type"] == "activation_request" and request["product"] == ws.product

    # 2. at a connected desk: a license admin uploads it
    text = request_file.read_text(encoding="utf-8")
    first = upload_request(api, admin.token, license_id, text)
    assert first.status_code == 201, first.text
    body = first.json()
    assert set(body) == {"activation", "certificate", "response"}
    assert body["activation"]["installation_id"] == ws.installation_id
    assert body["activation"]["machine_name"] == "CAD-WS-07"
    claims = claims_of(body["certificate"])
    assert (claims["license_id"], claims["installation_id"]) == (license_id, ws.installation_id)
    assert sorted(claims["features"]) == ["dyn", "steel"]
    response = json.loads(body["response"])
    assert response["type"] == "activation_response" and response["version"] == 1
    assert response["nonce"] == request["nonce"]
    assert response["certificate"] == body["certificate"]
    assert len(response["deactivation_secret"]) == 43

    # the same request again (the first response file got lost): no second seat, a fresh file
    again = upload_request(api, admin.token, license_id, text)
    assert again.status_code == 200, again.text
    assert detail(api, team, license_id)["seats_in_use"] == 1
    response_file = ws.usb / f"activation-response-{license_id}.json"
    response_file.write_text(again.json()["response"], encoding="utf-8")

    # 3. back on the offline machine: install, and it runs with its modules
    installed = ws.document("offline-install", str(response_file))
    assert installed["validation"]["valid"] is True, installed
    assert installed["validation"]["code"] == "VALID"
    assert installed["validation"]["online"] is False
    status = ws.document("status", "--offline")
    assert status["validation"]["code"] == "VALID" and status["validation"]["online"] is False
    assert sorted(status["features"]) == ["dyn", "steel"]
    assert status["license_id"] == license_id and status["source"] == "offline"
    # a plain `status` tries the server, cannot reach it, and still says VALID (offline is
    # this machine's normal state: no grace period runs out)
    status = ws.document("status")
    assert status["validation"]["code"] == "VALID", status
    assert status["validation"]["online"] is False
    assert sorted(status["features"]) == ["dyn", "steel"]

    shown = detail(api, team, license_id)
    assert shown["seats_in_use"] == 1
    [installation] = [
        item for item in shown["installations"] if item["installation_id"] == ws.installation_id
    ]
    assert installation["status"] == "active"

    # 4. the machine is retired: it deletes its certificate and writes the proof
    proof_file = ws.usb / "deactivation-proof.json"
    ws.document("deactivate", "--offline", "--out", str(proof_file))
    assert ws.kit("status", "--offline", expect=None).returncode == 3  # not activated
    proof = json.loads(proof_file.read_text(encoding="utf-8"))
    assert proof["type"] == "deactivation_proof" and proof["license_id"] == license_id

    # 5. the proof is uploaded: the seat is free at once
    freed = upload_proof(api, admin.token, license_id, proof_file.read_text(encoding="utf-8"))
    assert freed.status_code == 200, freed.text
    assert freed.json()["status"] == "deactivated"
    assert freed.json()["deactivated_by"] == "offline"
    shown = detail(api, team, license_id)
    assert shown["seats_in_use"] == 0
    [installation] = [
        item for item in shown["installations"] if item["installation_id"] == ws.installation_id
    ]
    assert (installation["status"], installation["deactivated_by"]) == ("deactivated", "offline")
    # valid once
    reused = upload_proof(api, admin.token, license_id, proof_file.read_text(encoding="utf-8"))
    refused_with_problem(reused, "invalid_proof")

    # history names the source and the user; the audit trail has the offline activation
    history = api.get(f"/api/v1/licenses/{license_id}/history", token=admin.token).json()
    mine = [event for event in history["events"] if event["installation_id"] == ws.installation_id]
    kinds = {event["type"] for event in mine}
    assert {"activated", "deactivated"} <= kinds, mine
    assert all(event["source"] == "offline" for event in mine), mine
    activated = next(event for event in mine if event["type"] == "activated")
    assert activated["actor"]["email"] == admin.email, activated
    trail = api.get(
        "/api/v1/audit-events", token=team.token("owner"), params={"action": "offline_activation"}
    ).json()["events"]
    # one per upload: the first and the repeated request
    audited = [event for event in trail if event["target"]["id"] == license_id]
    assert len(audited) == 2, audited
    for event in audited:
        assert event["actor"]["email"] == admin.email
        assert event["details"]["installation_id"] == ws.installation_id
        assert event["details"]["machine_name"] == "CAD-WS-07"
    released = api.get(
        "/api/v1/audit-events",
        token=team.token("owner"),
        params={"action": "installation_deactivated"},
    ).json()["events"]
    assert any(
        event["target"]["id"] == license_id and event["details"].get("source") == "offline"
        for event in released
    ), released
    # no secret in the trail, nor in any log line of the services that saw it
    secret = json.loads(again.json()["response"])["deactivation_secret"]
    assert proof["secret"] == secret
    for seen in (response["deactivation_secret"], secret):
        assert seen not in json.dumps(trail + released)
        for service in ("gateway", "licensing", "notify"):
            assert seen not in suite.logs(service), service


def test_a_validation_of_an_offline_certificate_answers_its_features(api, team, issue):
    license = issue(seats=1, features="steel")
    text = request_text(license["license_id"], f"val-{uuid.uuid4().hex}", product_of(license))
    activated = upload_request(api, team.token("license_admin"), license["license_id"], text)
    assert activated.status_code == 201, activated.text
    checked = api.post(
        "/api/v1/validations", json={"certificate": activated.json()["certificate"]}
    ).json()
    assert (checked["code"], checked["features"]) == ("VALID", ["steel"])


# --- seats ------------------------------------------------------------------------------------


def test_seat_limits_hold_when_online_and_offline_activations_race(suite, api, team, issue):
    license = issue(seats=3, features=None)
    license_id, product = license["license_id"], product_of(license)
    token = team.token("license_admin")

    def activate(index: int) -> tuple[str, int, str]:
        installation = f"race-{index}-{uuid.uuid4().hex[:8]}"
        with requests.Session() as http:
            if index % 2:
                answer = http.post(
                    suite.url + f"/api/v1/licenses/{license_id}/offline-activations",
                    json={
                        "request": request_text(license_id, installation, product, f"Off {index}")
                    },
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=30,
                )
                kind = "offline"
            else:
                answer = http.post(
                    suite.url + "/api/v1/activations",
                    json={
                        "license_id": license_id,
                        "password": license["activation_password"],
                        "installation_id": installation,
                        "machine_name": f"On {index}",
                    },
                    timeout=30,
                )
                kind = "online"
        code = answer.json()["error"]["code"] if answer.status_code >= 400 else ""
        return kind, answer.status_code, code

    results = list(GreenPool(10).imap(activate, range(10)))
    statuses = [status for _, status, _ in results]
    assert statuses.count(201) == 3, results
    assert statuses.count(409) == 7, results
    assert {code for _, status, code in results if status == 409} == {"no_seats_available"}
    shown = detail(api, team, license_id)
    assert shown["seats_in_use"] == 3
    assert sum(item["status"] == "active" for item in shown["installations"]) == 3


def test_an_offline_activation_is_refused_as_an_online_one_would_be(suite, api, team, issue):
    license = issue(seats=1, features=None)
    license_id = license["license_id"]
    token = team.token("license_admin")
    online = api.post(
        "/api/v1/activations",
        json={
            "license_id": license_id,
            "password": license["activation_password"],
            "installation_id": f"desk-{uuid.uuid4().hex[:8]}",
            "machine_name": "Online Desk",
        },
    )
    assert online.status_code == 201, online.text
    text = request_text(license_id, f"full-{uuid.uuid4().hex[:8]}", product_of(license))
    full = upload_request(api, token, license_id, text)
    assert full.status_code == 409, full.text
    error = full.json()["error"]
    assert error["code"] == "no_seats_available"
    assert error["details"]["machines"] == ["Online Desk"]

    suite.portalctl("license", "suspend", license_id, "--reason", "Invoice 2026-17 unpaid")
    suspended = upload_request(api, token, license_id, text)
    assert suspended.status_code == 403, suspended.text
    assert suspended.json()["error"]["code"] == "license_suspended"
    assert detail(api, team, license_id)["seats_in_use"] == 1


# --- malformed, foreign and refused requests ---------------------------------------------------


@pytest.fixture
def genuine(issue, machine):
    """A license and a request file the kit wrote for it (the base of every variant)."""
    license = issue(seats=1, features="steel")
    ws = machine("variants")
    out = ws.usb / "activation-request.json"
    ws.document("offline-request", "--license-id", license["license_id"], "--out", str(out))
    return license, out.read_text(encoding="utf-8")


def variant(text: str, change: str) -> str:
    """The request `text` with one thing wrong."""
    document = json.loads(text)
    if change == "not_json":
        return "this is not an activation request"
    if change == "empty":
        return ""
    if change == "not_an_object":
        return json.dumps([document])
    if change == "truncated":
        return text[: len(text) // 2]
    if change == "over_16_kib":
        # a good request padded with spaces: only its size is wrong
        return text + " " * OVER_16_KIB
    if change == "wrong_type":
        document["type"] = "activation_response"
    elif change == "wrong_version":
        document["version"] = 2
    elif change == "version_as_text":
        document["version"] = "1"
    elif change == "missing_field":
        del document["nonce"]
    elif change == "extra_field":
        document["seats"] = 99
    elif change == "empty_installation_id":
        document["installation_id"] = ""
    elif change == "too_long_installation_id":
        document["installation_id"] = "x" * 129
    elif change == "bad_time":
        document["requested_at"] = "yesterday at noon"
    elif change == "another_product":
        document["product"] = "not-this-product"
    else:  # pragma: no cover - a typo in the table below
        raise AssertionError(change)
    return json.dumps(document)


FIELDS = {
    "wrong_type": "type",
    "wrong_version": "version",
    "version_as_text": "version",
    "missing_field": "nonce",
    "extra_field": "seats",
    "empty_installation_id": "installation_id",
    "too_long_installation_id": "installation_id",
    "bad_time": "requested_at",
    "another_product": "product",
}


@pytest.mark.parametrize(
    "change",
    [
        "not_json",
        "empty",
        "not_an_object",
        "truncated",
        "over_16_kib",
        "wrong_type",
        "wrong_version",
        "version_as_text",
        "missing_field",
        "extra_field",
        "empty_installation_id",
        "too_long_installation_id",
        "bad_time",
        "another_product",
    ],
)
def test_a_malformed_or_foreign_request_is_422_saying_what_is_wrong(api, team, genuine, change):
    license, text = genuine
    answer = upload_request(
        api, team.token("license_admin"), license["license_id"], variant(text, change)
    )
    error = refused_with_problem(answer, "invalid_request")
    if change in FIELDS and "field" in error["details"]:
        assert error["details"]["field"] == FIELDS[change], error
    assert detail(api, team, license["license_id"])["seats_in_use"] == 0
    # and the genuine file still works afterwards: nothing was half done
    if change == "over_16_kib":
        ok = upload_request(api, team.token("license_admin"), license["license_id"], text)
        assert ok.status_code == 201, ok.text


def test_a_request_for_another_license_names_both(api, team, issue, genuine):
    license, text = genuine
    other = issue(seats=1)
    answer = upload_request(api, team.token("license_admin"), other["license_id"], text)
    error = refused_with_problem(answer, "invalid_request")
    assert license["license_id"] in error["message"] + error["details"]["problem"], error
    assert detail(api, team, other["license_id"])["seats_in_use"] == 0


def test_another_companys_license_is_404(suite, api, team, product, genuine):
    license, text = genuine
    stranger = new_team_company_token(suite, api)
    answer = upload_request(api, stranger, license["license_id"], text)
    assert answer.status_code == 404, answer.text
    assert answer.json()["error"]["code"] == "license_not_found"


def new_team_company_token(suite, api) -> str:
    company = new_company(suite, name="Stranger GmbH")
    return api.login(company["contact_email"], PASSWORD)


# --- proofs -----------------------------------------------------------------------------------


def activated_offline(api, token: str, license: dict, name: str) -> dict:
    """An installation activated offline over the API: its request document and response."""
    document = request_document(
        license["license_id"], f"{name}-{uuid.uuid4().hex[:8]}", product_of(license), name
    )
    answer = upload_request(api, token, license["license_id"], json.dumps(document))
    assert answer.status_code == 201, answer.text
    return {"request": document, "response": json.loads(answer.json()["response"])}


def proof_of(license_id: str, installation_id: str, secret: str, **changes) -> str:
    document = {
        "type": "deactivation_proof",
        "version": 1,
        "license_id": license_id,
        "installation_id": installation_id,
        "deactivated_at": now_text(),
        "secret": secret,
    }
    document.update(changes)
    return json.dumps(document)


def test_forged_foreign_malformed_and_reused_proofs_are_422(api, team, issue):
    license = issue(seats=3, features=None)
    license_id = license["license_id"]
    token = team.token("license_admin")
    a = activated_offline(api, token, license, "ws-a")
    b = activated_offline(api, token, license, "ws-b")
    a_id, a_secret = a["request"]["installation_id"], a["response"]["deactivation_secret"]
    b_id = b["request"]["installation_id"]
    good = proof_of(license_id, a_id, a_secret)
    bad = {
        "forged": proof_of(license_id, a_id, secrets.token_urlsafe(32)),
        "another_installation": proof_of(license_id, b_id, a_secret),
        "not_json": "proof? what proof",
        "truncated": good[: len(good) - 10],
        "wrong_type": proof_of(license_id, a_id, a_secret, type="activation_request"),
        "wrong_version": proof_of(license_id, a_id, a_secret, version=7),
        "missing_secret": json.dumps(
            {key: value for key, value in json.loads(good).items() if key != "secret"}
        ),
        "extra_field": json.dumps({**json.loads(good), "seats": 1}),
        "over_16_kib": good + " " * OVER_16_KIB,
    }
    for name, text in bad.items():
        answer = upload_proof(api, token, license_id, text)
        assert answer.status_code == 422, (name, answer.text)
        refused_with_problem(answer, "invalid_proof")
    assert detail(api, team, license_id)["seats_in_use"] == 2

    # a proof of this license uploaded on another license of the company
    other = issue(seats=1, features=None)
    refused_with_problem(upload_proof(api, token, other["license_id"], good), "invalid_proof")

    assert upload_proof(api, token, license_id, good).status_code == 200
    refused_with_problem(upload_proof(api, token, license_id, good), "invalid_proof")
    shown = detail(api, team, license_id)
    states = {item["installation_id"]: item["status"] for item in shown["installations"]}
    assert states == {a_id: "deactivated", b_id: "active"}
    assert shown["seats_in_use"] == 1


def test_an_online_activation_has_no_offline_proof(suite, api, team, issue):
    license = issue(seats=1, features=None)
    installation = f"online-{uuid.uuid4().hex[:8]}"
    online = api.post(
        "/api/v1/activations",
        json={
            "license_id": license["license_id"],
            "password": license["activation_password"],
            "installation_id": installation,
            "machine_name": "Online WS",
        },
    )
    assert online.status_code == 201, online.text
    guess = proof_of(license["license_id"], installation, secrets.token_urlsafe(32))
    token = team.token("license_admin")
    refused_with_problem(upload_proof(api, token, license["license_id"], guess), "invalid_proof")
    assert detail(api, team, license["license_id"])["seats_in_use"] == 1


# --- who may -----------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["viewer", "billing"])
def test_a_viewer_or_billing_user_may_not_upload(api, team, issue, role):
    license = issue(seats=1, features=None)
    text = request_text(license["license_id"], f"role-{uuid.uuid4().hex[:8]}", product_of(license))
    for answer in (
        upload_request(api, team.token(role), license["license_id"], text),
        upload_proof(api, team.token(role), license["license_id"], "{}"),
    ):
        assert answer.status_code == 403, answer.text
        error = answer.json()["error"]
        assert error["code"] == "forbidden"
        assert set(error["details"]["required_roles"]) == {"owner", "license_admin"}
    assert detail(api, team, license["license_id"])["seats_in_use"] == 0
    # the owner may
    assert upload_request(api, team.token("owner"), license["license_id"], text).status_code == 201
