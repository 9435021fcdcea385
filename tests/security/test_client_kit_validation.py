"""Finding 8: the client kit's online validation trusted an unsigned answer.

Whoever sat between the product and the portal (a proxy, a hosts-file entry, a replay of a
recorded answer) could answer `{"valid": true, "code": "VALID"}` for a deactivated
installation, and the kit believed it. Now `POST /api/v1/validations` also answers
`signed_answer` (a JWS with the certificate keys, the request's nonce and `iat`), and the kit
trusts nothing else: a forged, tampered or replayed answer is as good as no answer.

The kit runs against the suite through a transport that plays the man in the middle; with
no grace period, "no answer" is `GRACE_EXPIRED`, so the only way to VALID is the server's.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import jwt
import pytest

from license_client import LicenseClient
from license_client.transport import Response, Transport, UrllibTransport

pytestmark = pytest.mark.e2e

VALIDATIONS = "/api/v1/validations"


class ManInTheMiddle(Transport):
    """Forwards to the real gateway; rewrites the answers to validations when told to."""

    def __init__(self) -> None:
        self.real = UrllibTransport()
        self.rewrite: Callable[[dict[str, Any]], dict[str, Any]] | None = None
        self.seen: list[dict[str, Any]] = []

    def send(
        self, method: str, url: str, body: bytes | None, headers: dict[str, str], timeout: float
    ) -> Response:
        response = self.real.send(method, url, body, headers, timeout)
        if not url.endswith(VALIDATIONS) or response.status != 200:
            return response
        answer = json.loads(response.body)
        self.seen.append(answer)
        if self.rewrite is not None:
            answer = self.rewrite(answer)
        return Response(response.status, response.headers, json.dumps(answer).encode())


@pytest.fixture(scope="module")
def product(suite) -> str:
    code = f"sig{uuid.uuid4().hex[:8]}"
    suite.portalctl("product", "create", "--code", code, "--name", "Signed CAD")
    return code


@pytest.fixture
def license(suite, product) -> dict:
    email = f"signed.{uuid.uuid4().hex[:10]}@example.test"
    company = suite.portalctl(
        "company", "create", "--name", "Signed Answers", "--contact-name", "Ada",
        "--email", email, "--password", "Granite-Harbor-Tulip-64",
    )  # fmt: skip
    return suite.portalctl(
        "license", "issue", "--customer", company["customer_id"], "--product", product,
        "--seats", "1",
    )  # fmt: skip


@pytest.fixture
def mitm() -> ManInTheMiddle:
    return ManInTheMiddle()


@pytest.fixture
def client(suite, product, license, mitm, tmp_path) -> LicenseClient:
    client = LicenseClient(
        suite.url,
        product=product,
        data_dir=tmp_path / "kit",
        installation_id=f"sig-{uuid.uuid4().hex}",
        grace_period=timedelta(0),
        retries=0,
        transport=mitm,
    )
    client.activate(license["license_id"], license["activation_password"], machine_name="WS-1")
    return client


def deactivate_in_the_portal(suite, license: dict, client: LicenseClient) -> None:
    suite.portalctl("license", "deactivate", license["license_id"], client.installation_id)


def plain_valid(answer: dict[str, Any]) -> dict[str, Any]:
    forged = {**answer, "valid": True, "code": "VALID"}
    forged.pop("signed_answer", None)
    return forged


def test_a_forged_valid_for_a_deactivated_installation_is_not_believed(
    suite, license, client, mitm
) -> None:
    trusted = client.validate()  # the server's own signed answer
    assert trusted.valid and trusted.online and trusted.code == "VALID"
    deactivate_in_the_portal(suite, license, client)
    mitm.rewrite = plain_valid
    result = client.validate()
    assert not result.valid and result.code == "GRACE_EXPIRED", result
    mitm.rewrite = None
    honest = client.validate()
    assert (honest.valid, honest.online, honest.code) == (False, True, "DEACTIVATED")


def test_a_replayed_signed_valid_is_not_believed(suite, license, client, mitm) -> None:
    assert client.validate().valid
    recorded = mitm.seen[-1]
    assert recorded["signed_answer"]
    deactivate_in_the_portal(suite, license, client)
    mitm.rewrite = lambda answer: recorded  # yesterday's VALID, signature and all
    result = client.validate()
    assert not result.valid and result.code == "GRACE_EXPIRED", result


def test_a_tampered_signed_answer_is_not_believed(suite, license, client, mitm) -> None:
    deactivate_in_the_portal(suite, license, client)

    def tampered(answer: dict[str, Any]) -> dict[str, Any]:
        header, claims, signature = answer["signed_answer"].split(".")
        forged = {**json.loads(jwt.utils.base64url_decode(claims)), "valid": True, "code": "VALID"}
        payload = jwt.utils.base64url_encode(json.dumps(forged).encode()).decode()
        return {**plain_valid(answer), "signed_answer": f"{header}.{payload}.{signature}"}

    mitm.rewrite = tampered
    result = client.validate()
    assert not result.valid and result.code == "GRACE_EXPIRED", result


def test_the_route_signs_its_answer_with_the_certificate_keys(api, client) -> None:
    answer = api.post(VALIDATIONS, json={"certificate": client.certificate, "nonce": "n-42"}).json()
    jwks = jwt.PyJWKSet.from_dict(api.get("/api/v1/signing-keys").json())
    header = jwt.get_unverified_header(answer["signed_answer"])
    assert header["typ"] == "license-validation+jwt"
    claims = jwt.decode(answer["signed_answer"], jwks[header["kid"]].key, algorithms=["EdDSA"])
    plain = {key: value for key, value in answer.items() if key != "signed_answer"}
    # a lease's fields are null in the plain answer of an activation certificate, and absent
    # from its signed one
    lease_keys = ("lease_id", "lease_expires_at")
    assert all(plain.get(key) is None for key in lease_keys)
    signed = {key: value for key, value in plain.items() if key not in lease_keys}
    assert claims == {**signed, "iat": claims["iat"], "exp": claims["iat"] + 3600, "nonce": "n-42"}
    refused = api.post(VALIDATIONS, json={"certificate": client.certificate, "nonce": "a\nb"})
    assert refused.status_code == 422 and "nonce" in refused.json()["error"]["details"]["fields"]
