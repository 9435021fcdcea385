"""Online validation trusts only the server's signed answer: for this request (nonce), fresh
(`iat`), about this certificate, signed with the keys that verify certificates. Anything else
is as good as no answer: the offline path within the grace period, never an online VALID."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta
from typing import Any, Callable

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from license_client import jws
from license_client.testing import FakePortal
from license_client.transport import Response, Transport

LICENSE = "LIC-AAAA-1111"
PASSWORD = "Copper-Kettle-17"
VALIDATIONS = "/api/v1/validations"


class Forger(Transport):
    """Between the client and the portal: rewrites the answers to validations."""

    def __init__(self, portal: FakePortal) -> None:
        self.portal = portal
        self.rewrite: Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]] | None = None

    def send(
        self, method: str, url: str, body: bytes | None, headers: dict[str, str], timeout: float
    ) -> Response:
        response = self.portal.send(method, url, body, headers, timeout)
        if self.rewrite is None or not url.endswith(VALIDATIONS):
            return response
        document = self.rewrite(json.loads(body or b"{}"), json.loads(response.body))
        return Response(response.status, response.headers, json.dumps(document).encode())


@pytest.fixture
def forger(portal) -> Forger:
    return Forger(portal)


@pytest.fixture
def client(make_client, forger):
    client = make_client(transport=forger)
    client.activate(LICENSE, PASSWORD)
    return client


def claims_of(token: str) -> dict[str, Any]:
    return jws.parse(token)[1]


def valid_claims(client, request: dict[str, Any], clock: Callable[[], datetime]) -> dict:
    return {
        "valid": True,
        "code": "VALID",
        "license_id": LICENSE,
        "installation_id": client.installation_id,
        "expires_at": None,
        "iat": int(clock().timestamp()),
        "nonce": request["nonce"],
    }


def test_each_validation_sends_a_fresh_nonce_and_trusts_the_signed_answer(client, portal):
    assert client.validate().online
    assert client.validate().online
    nonces = [body["nonce"] for _, path, body in portal.requests if path == VALIDATIONS]
    assert len(nonces) == 2 and len(set(nonces)) == 2 and all(len(n) >= 22 for n in nonces)


def test_a_forged_plain_valid_never_beats_the_servers_deactivation(client, portal, forger):
    portal.licenses[LICENSE].installations.clear()  # deactivated from the portal
    assert client.validate().code == "DEACTIVATED"

    def plain_valid(request: dict, answer: dict) -> dict:
        return {**answer, "valid": True, "code": "VALID", "signed_answer": None}

    forger.rewrite = plain_valid
    result = client.validate()
    assert not result.valid and result.code == "DEACTIVATED" and not result.online


def test_an_unsigned_answer_is_no_answer(client, portal, forger):
    def unsigned(request: dict, answer: dict) -> dict:  # what a server before signing answered
        return {key: value for key, value in answer.items() if key != "signed_answer"}

    forger.rewrite = unsigned
    result = client.validate()
    assert result.valid and not result.online  # the certificate alone, within the grace period
    assert result.grace_until is not None
    assert "not signed" in result.reason


def test_a_tampered_answer_is_no_answer(client, portal, forger, clock):
    portal.licenses[LICENSE].status = "suspended"

    def tampered(request: dict, answer: dict) -> dict:
        header, payload, signature = answer["signed_answer"].split(".")
        claims = {**claims_of(answer["signed_answer"]), "valid": True, "code": "VALID"}
        forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
        token = f"{header}.{forged}.{signature}"
        return {**answer, "valid": True, "code": "VALID", "signed_answer": token}

    forger.rewrite = tampered
    result = client.validate()
    assert not result.online and "does not verify" in result.reason


def test_an_answer_signed_by_another_key_is_no_answer(make_client, portal, forger, clock, tmp_path):
    pinned = tmp_path / "jwks.json"
    pinned.write_text(json.dumps(portal.jwks))
    client = make_client(transport=forger, jwks=pinned)
    client.activate(LICENSE, PASSWORD)
    other = Ed25519PrivateKey.generate()

    def resigned(request: dict, answer: dict) -> dict:
        claims = valid_claims(client, request, clock)
        token = jws.sign(claims, other, portal.kid, typ=jws.VALIDATION_TYP)
        return {**answer, "signed_answer": token}

    forger.rewrite = resigned
    result = client.validate()
    assert not result.online and "does not verify" in result.reason


def test_a_replayed_answer_is_no_answer(client, portal, forger):
    recorded: list[dict] = []

    def record(request: dict, answer: dict) -> dict:
        recorded.append(answer)
        return answer

    forger.rewrite = record
    assert client.validate().online
    portal.licenses[LICENSE].installations.clear()
    forger.rewrite = lambda request, answer: recorded[0]  # yesterday's VALID, word for word
    result = client.validate()
    assert not result.online and "not the answer to this request" in result.reason


def test_a_stale_answer_is_no_answer(client, portal, forger, clock):
    def stale(request: dict, answer: dict) -> dict:
        claims = valid_claims(client, request, clock)
        claims["iat"] = int((clock() - timedelta(hours=2)).timestamp())
        token = jws.sign(claims, portal.key, portal.kid, typ=jws.VALIDATION_TYP)
        return {**answer, "signed_answer": token}

    forger.rewrite = stale
    result = client.validate()
    assert not result.online and "stale" in result.reason


def test_an_answer_about_another_certificate_is_no_answer(client, portal, forger, clock):
    def elsewhere(request: dict, answer: dict) -> dict:
        claims = {**valid_claims(client, request, clock), "installation_id": "another-pc"}
        token = jws.sign(claims, portal.key, portal.kid, typ=jws.VALIDATION_TYP)
        return {**answer, "signed_answer": token}

    forger.rewrite = elsewhere
    assert "another certificate" in client.validate().reason


def test_forged_answers_never_extend_the_grace_period(client, portal, forger, clock):
    forger.rewrite = lambda request, answer: {**answer, "signed_answer": "x.y.z"}
    assert client.validate().valid  # offline, within the grace period
    clock.advance(days=8)
    result = client.validate()
    assert not result.valid and result.code == "GRACE_EXPIRED"


def test_a_signed_answer_is_not_a_certificate(client, portal, forger):
    answers: list[str] = []
    forger.rewrite = lambda request, answer: answers.append(answer["signed_answer"]) or answer
    client.validate()
    stored = json.loads((client.data_dir / "activation.json").read_text())
    stored["certificate"] = answers[0]
    (client.data_dir / "activation.json").write_text(json.dumps(stored))
    result = client.validate(online=False)
    assert not result.valid and result.code == "MALFORMED"


def test_the_key_set_tells_answers_and_certificates_apart(portal):
    keys = jws.KeySet.from_jwks(portal.jwks)
    answer = jws.sign({"code": "VALID", "iat": 1}, portal.key, portal.kid, typ=jws.VALIDATION_TYP)
    certificate = jws.sign({"license_id": LICENSE}, portal.key, portal.kid)
    assert keys.verify_answer(answer).claims["code"] == "VALID"
    assert keys.verify(certificate).license_id == LICENSE
    with pytest.raises(jws.CertificateError):
        keys.verify(answer)
    with pytest.raises(jws.CertificateError):
        keys.verify_answer(certificate)
