"""The product integration kit (clients/python) against the running suite over real HTTP.

Activation, idempotent re-activation, seats, deactivation, offline validation with the gateway
stopped, and the certificates a product must refuse: tampered, expired, from another machine;
a license of another product refused before a seat is taken, activating again after a
deactivation in the portal, and what the messages say.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from license_client import (
    InvalidCredentials,
    LicenseClient,
    LicenseExpired,
    LicenseSuspended,
    NoSeatsAvailable,
    WrongProduct,
    jws,
)
from tests.support.team import staff_rpc

pytestmark = pytest.mark.e2e

COMPANY_PASSWORD = "Winter-Orchard-42"


@pytest.fixture(scope="module", autouse=True)
def licensing_routes(api):
    response = api.get("/api/v1/signing-keys")
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture(scope="module")
def product(suite) -> str:
    code = f"kit{uuid.uuid4().hex[:8]}"
    suite.portalctl("product", "create", "--code", code, "--name", "Kit Test CAD")
    return code


@pytest.fixture(scope="module")
def company(suite) -> dict:
    email = f"kit.{uuid.uuid4().hex[:10]}@example.test"
    return suite.portalctl(
        "company", "create", "--name", "Kit Engineering", "--contact-name", "Ada",
        "--email", email, "--password", COMPANY_PASSWORD,
    )  # fmt: skip


@pytest.fixture
def issue(suite, company, product):
    def issue(seats: int = 1, expires: str | None = None) -> dict:
        args = ["license", "issue", "--customer", company["customer_id"], "--product", product]
        args += ["--seats", str(seats)]
        if expires:
            # an expiry already past is a staff guardrail: these tests mean it
            args += ["--expires", expires, "--force"]
        return suite.portalctl(*args)

    return issue


@pytest.fixture
def make_client(suite, product, tmp_path):
    def make(machine: str = "ws-1", **kwargs) -> LicenseClient:
        options = {
            "product": product,
            "data_dir": tmp_path / machine,
            "installation_id": f"e2e-{uuid.uuid4().hex}" if machine != "same" else "e2e-same",
            "retries": 1,
        }
        options.update(kwargs)
        return LicenseClient(suite.url, **options)

    return make


def seats_in_use(suite, license_id: str) -> int:
    return suite.portalctl("license", "show", license_id)["seats_in_use"]


def history(suite, license_id: str) -> list[dict]:
    """The license's activation history, newest first (as staff sees it)."""
    with staff_rpc(suite) as rpc:
        return rpc.call("licensing", "history", license_id)["events"]


def license_client_cli(*args: str, data_dir, installation_id: str) -> subprocess.CompletedProcess:
    """`license-client ARGS` as a user runs it, with its own data folder."""
    env = {
        **os.environ,
        "LICENSE_CLIENT_DATA_DIR": str(data_dir),
        "LICENSE_CLIENT_INSTALLATION_ID": installation_id,
    }
    return subprocess.run(
        [sys.executable, "-m", "license_client", *args],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip


def test_activate_is_idempotent_and_seats_are_never_exceeded(suite, issue, make_client):
    license = issue(seats=1)
    password = license["activation_password"]
    first = make_client("ws-1")
    result = first.activate(license["license_id"], password, machine_name="CAD-WS-01")
    assert result.valid and result.code == "VALID"
    assert (result.license_id, result.machine_name) == (license["license_id"], "CAD-WS-01")
    # the certificate verifies with the published JWKS, as any product would check it
    keys = jws.KeySet.from_jwks(suite.api.get("/api/v1/signing-keys").json())
    certificate = keys.verify(first.certificate)
    assert certificate.installation_id == first.installation_id
    assert certificate.customer_id and certificate.product

    again = first.activate(license["license_id"], password, machine_name="CAD-WS-01")
    assert again.valid
    assert seats_in_use(suite, license["license_id"]) == 1

    second = make_client("ws-2")
    with pytest.raises(NoSeatsAvailable) as caught:
        second.activate(license["license_id"], password, machine_name="CAD-WS-02")
    assert caught.value.machines == ["CAD-WS-01"]
    assert second.certificate is None
    assert first.validate().online and first.validate().valid


def test_wrong_password_is_invalid_credentials(issue, make_client):
    license = issue()
    with pytest.raises(InvalidCredentials):
        make_client().activate(license["license_id"], "not-the-password")


def test_the_company_password_activates_too(issue, make_client):
    license = issue()
    assert make_client().activate(license["license_id"], COMPANY_PASSWORD).valid


def test_deactivate_frees_the_seat(suite, issue, make_client):
    license = issue(seats=1)
    password = license["activation_password"]
    first = make_client("ws-1")
    first.activate(license["license_id"], password)
    first.deactivate()
    assert first.certificate is None
    assert seats_in_use(suite, license["license_id"]) == 0
    second = make_client("ws-2")
    assert second.activate(license["license_id"], password).valid
    assert seats_in_use(suite, license["license_id"]) == 1


def test_deactivation_in_the_portal_reaches_the_product(suite, issue, make_client):
    license = issue()
    client = make_client()
    client.activate(license["license_id"], license["activation_password"])
    suite.portalctl("license", "deactivate", license["license_id"], client.installation_id)
    result = client.validate()
    assert not result and result.code == "DEACTIVATED"
    assert client.validate(online=False).code == "DEACTIVATED"


def test_suspended_license(suite, issue, make_client):
    license = issue()
    client = make_client()
    client.activate(license["license_id"], license["activation_password"])
    suite.portalctl("license", "suspend", license["license_id"])
    assert client.validate().code == "SUSPENDED"
    with pytest.raises(LicenseSuspended):
        make_client("ws-2").activate(license["license_id"], license["activation_password"])
    suite.portalctl("license", "resume", license["license_id"])
    assert client.validate().valid


def test_offline_validation_with_the_gateway_stopped(suite, issue, make_client, tmp_path):
    license = issue(expires=(datetime.now(UTC) + timedelta(days=60)).date().isoformat())
    client = make_client("ws-1")
    client.activate(license["license_id"], license["activation_password"])
    suite.stop("gateway")
    try:
        offline = client.validate(online=False)
        assert offline.valid and not offline.online
        fallback = client.validate()  # the server cannot be reached: within the grace period
        assert fallback.valid and not fallback.online and fallback.grace_until
        # what a user sees: `license-client status` still says valid, offline
        env = {
            **os.environ,
            "LICENSE_CLIENT_DATA_DIR": str(tmp_path / "ws-1"),
            "LICENSE_CLIENT_INSTALLATION_ID": client.installation_id,
        }
        status = subprocess.run(
            [sys.executable, "-m", "license_client", "status", "--retries", "0", "--json"],
            capture_output=True, text=True, env=env, timeout=60, check=False,
        )  # fmt: skip
        assert status.returncode == 0, status.stdout + status.stderr
        document = json.loads(status.stdout)
        assert document["validation"]["valid"] and not document["validation"]["online"]
    finally:
        suite.start("gateway")
        suite.wait_ready()
    assert client.validate().online


def test_a_tampered_certificate_is_refused(issue, make_client):
    license = issue()
    client = make_client()
    client.activate(license["license_id"], license["activation_password"])
    path = client.data_dir / "activation.json"
    stored = json.loads(path.read_text())
    header, payload, signature = stored["certificate"].split(".")
    claims = json.loads(jws.b64url_decode(payload))
    claims["seats"] = 500
    claims.pop("exp", None)
    forged = jws._b64encode(json.dumps(claims).encode())
    stored["certificate"] = f"{header}.{forged}.{signature}"
    path.write_text(json.dumps(stored))
    assert client.validate(online=False).code == "BAD_SIGNATURE"
    assert client.validate().code == "BAD_SIGNATURE"  # and the server agrees


def test_an_expired_certificate_is_refused(suite, issue, make_client):
    expiry = datetime.now(UTC).date() + timedelta(days=2)
    license = issue(expires=expiry.isoformat())
    client = make_client()
    client.activate(license["license_id"], license["activation_password"])
    assert client.validate(online=False).valid
    later = datetime.now(UTC) + timedelta(days=5)
    moved = make_client(clock=lambda: later, installation_id=client.installation_id)
    result = moved.validate(online=False)
    assert not result and result.code == "EXPIRED"


def test_an_expired_license_cannot_be_activated(suite, issue, make_client):
    past = (datetime.now(UTC).date() - timedelta(days=3)).isoformat()
    license = issue(expires=past)
    with pytest.raises(LicenseExpired):
        make_client().activate(license["license_id"], license["activation_password"])


def test_an_extended_license_gets_a_fresh_certificate_online(suite, issue, make_client):
    license = issue(expires=(datetime.now(UTC).date() + timedelta(days=10)).isoformat())
    client = make_client()
    before = client.activate(license["license_id"], license["activation_password"]).expires_at
    until = (datetime.now(UTC).date() + timedelta(days=400)).isoformat()
    suite.portalctl("license", "extend", license["license_id"], "--until", until)
    assert client.validate().valid
    after = client.validate(online=False).expires_at
    assert after > before + timedelta(days=300)


def test_a_certificate_copied_to_another_machine_is_refused(issue, make_client, tmp_path):
    license = issue()
    client = make_client("ws-1")
    client.activate(license["license_id"], license["activation_password"])
    shutil.copytree(tmp_path / "ws-1", tmp_path / "ws-9")
    thief = make_client("ws-9")
    assert thief.installation_id != client.installation_id
    assert thief.validate(online=False).code == "WRONG_MACHINE"
    assert thief.validate().code == "WRONG_MACHINE"


def test_another_products_license_is_refused_before_a_seat_is_taken(suite, api, issue, product):
    license = issue(seats=1)
    body = {
        "license_id": license["license_id"],
        "password": license["activation_password"],
        "installation_id": f"e2e-{uuid.uuid4().hex}",
        "machine_name": "CAD-WS-09",
        "product": "femsolver",
    }
    refused = api.post("/api/v1/activations", json=body)
    assert refused.status_code == 409, refused.text
    error = refused.json()["error"]
    assert error["code"] == "wrong_product"
    assert error["message"] == (
        f"License {license['license_id']} is for Kit Test CAD ({product}), not femsolver."
    )
    assert error["details"] == {
        "license_id": license["license_id"],
        "product": product,
        "requested": "femsolver",
    }
    assert seats_in_use(suite, license["license_id"]) == 0
    [event] = history(suite, license["license_id"])
    assert (event["type"], event["reason"], event["machine_name"]) == (
        "activation_refused",
        "wrong_product",
        "CAD-WS-09",
    )
    # a wrong password never learns the product
    wrong = api.post("/api/v1/activations", json={**body, "password": "not-it"})
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_credentials"
    # the license's own code, in any case, activates
    accepted = api.post("/api/v1/activations", json={**body, "product": product.upper()})
    assert accepted.status_code == 201, accepted.text
    assert seats_in_use(suite, license["license_id"]) == 1


def test_a_kit_for_another_product_takes_no_seat(suite, issue, make_client, tmp_path):
    license = issue(seats=1)
    with pytest.raises(WrongProduct) as caught:
        make_client(product="femsolver").activate(
            license["license_id"], license["activation_password"]
        )
    assert caught.value.message.endswith(
        "not femsolver. No seat was taken: use a license of this product, or check the "
        "product code this program is configured with."
    )
    done = license_client_cli(
        "--server", suite.url, "--product", "femsolver", "activate", license["license_id"],
        "--password", license["activation_password"],
        data_dir=tmp_path / "cli", installation_id=f"e2e-{uuid.uuid4().hex}",
    )  # fmt: skip
    assert done.returncode == 4, done.stdout + done.stderr
    assert done.stdout == ""  # no "Activated…"
    assert len(done.stderr.splitlines()) == 1 and "is for Kit Test CAD" in done.stderr
    assert seats_in_use(suite, license["license_id"]) == 0


def test_activating_again_after_a_deactivation_in_the_portal(suite, issue, product, tmp_path):
    license = issue()
    installation = f"e2e-{uuid.uuid4().hex}"
    folder = tmp_path / "ws-cli"
    common = ("--product", product)
    activate = ("activate", license["license_id"], "--password", license["activation_password"])
    first = license_client_cli(
        "--server", suite.url, *common, *activate, "--machine-name", "CAD-WS-07",
        data_dir=folder, installation_id=installation,
    )  # fmt: skip
    assert first.returncode == 0, first.stdout + first.stderr
    # right after an online activation: checked online, not "VALID, checked offline."
    assert "VALID, checked online." in first.stdout and "checked offline" not in first.stdout

    suite.portalctl("license", "deactivate", license["license_id"], installation)
    status = license_client_cli(*common, "status", data_dir=folder, installation_id=installation)
    assert status.returncode == 1, status.stdout + status.stderr
    assert "This machine was deactivated on the license server (" in status.stdout
    assert f"ask your administrator at {suite.url} for a seat" in status.stdout

    # neither --server nor --machine-name: both are remembered
    again = license_client_cli(*common, *activate, data_dir=folder, installation_id=installation)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "base_url" not in again.stdout + again.stderr
    installations = suite.portalctl("license", "show", license["license_id"])["installations"]
    active = [i for i in installations if i["status"] == "active"]
    assert [(i["installation_id"], i["machine_name"]) for i in active] == [
        (installation, "CAD-WS-07")
    ]


def test_the_server_says_who_deactivated_a_machine_and_since_when_a_license_is_suspended(
    suite, issue, make_client
):
    license = issue(seats=2)
    client = make_client()
    client.activate(license["license_id"], license["activation_password"])
    suite.portalctl("license", "deactivate", license["license_id"], client.installation_id)
    deactivated = client.validate()
    assert deactivated.code == "DEACTIVATED" and deactivated.online
    assert deactivated.reason.startswith(
        "This machine was deactivated on the license server (by the vendor's staff, at "
    )
    other = make_client("ws-2")
    other.activate(license["license_id"], license["activation_password"])
    suite.portalctl("license", "suspend", license["license_id"], "--reason", "Payment overdue.")
    suspended = other.validate()
    assert suspended.code == "SUSPENDED"
    assert suspended.reason.startswith(f"License {license['license_id']} is suspended since ")
    assert suspended.reason.endswith("(reason: Payment overdue.): contact your vendor.")
