"""Certificates (JWS EdDSA) verified by us and by PyJWT; activation passwords at rest;
offline deactivation secrets."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.licensing.crypto import (
    VALIDATION_TYP,
    BadSignature,
    Keyring,
    OfflineSecrets,
    PasswordBox,
    b64url,
    b64url_decode,
    generate_private_key_text,
    load_key_list,
    load_private_key,
    thumbprint,
)

# RFC 8037, appendix A.1 and A.3
RFC_D = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"
RFC_X = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
RFC_KID = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"

CLAIMS = {"license_id": "L-AAAA-BBBB", "installation_id": "ïd/∞", "machine_name": "Büro"}


def keyring(*retired) -> Keyring:
    return Keyring.build(Ed25519PrivateKey.generate(), list(retired))


def test_kid_is_the_rfc_7638_thumbprint() -> None:
    key = Ed25519PrivateKey.from_private_bytes(b64url_decode(RFC_D))
    assert b64url(key.public_key().public_bytes_raw()) == RFC_X
    assert thumbprint(key.public_key()) == RFC_KID


def test_sign_and_verify_round_trip() -> None:
    ring = keyring()
    token = ring.sign({**CLAIMS, "iat": 1})
    header = json.loads(b64url_decode(token.split(".")[0]))
    assert header == {"alg": "EdDSA", "typ": "JWT", "kid": ring.signing_kid}
    assert ring.verify(token) == {**CLAIMS, "iat": 1}


def test_pyjwt_verifies_with_the_jwks() -> None:
    ring = keyring()
    exp = int(time.time()) + 3600
    token = ring.sign({**CLAIMS, "iat": int(time.time()), "exp": exp})
    [jwk] = ring.jwks()["keys"]
    assert jwk["kty"] == "OKP" and jwk["crv"] == "Ed25519" and jwk["alg"] == "EdDSA"
    key = jwt.PyJWK(jwk)
    claims = jwt.decode(token, key.key, algorithms=["EdDSA"])
    assert claims["installation_id"] == CLAIMS["installation_id"]
    assert claims["exp"] == exp


def _tamper_payload(token: str) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(b64url_decode(payload))
    claims["license_id"] = "L-ZZZZ-ZZZZ"
    return f"{header}.{b64url(json.dumps(claims).encode())}.{signature}"


def _tamper_signature(token: str) -> str:
    header, payload, signature = token.split(".")
    raw = bytearray(b64url_decode(signature))
    raw[0] ^= 1
    return f"{header}.{payload}.{b64url(bytes(raw))}"


def _alg_none(token: str) -> str:
    _, payload, _ = token.split(".")
    return f"{b64url(json.dumps({'alg': 'none'}).encode())}.{payload}."


@pytest.mark.parametrize("tamper", [_tamper_payload, _tamper_signature, _alg_none])
def test_tampered_certificates_are_refused(tamper) -> None:
    ring = keyring()
    with pytest.raises(BadSignature):
        ring.verify(tamper(ring.sign(CLAIMS)))


@pytest.mark.parametrize(
    "garbage",
    [None, 42, "", "a.b", "a.b.c", "....", "x" * 10000, "é.é.é", "eyJ9.eyJ9.AA", ["a", "b"]],
)
def test_garbage_is_a_bad_signature_not_a_crash(garbage) -> None:
    with pytest.raises(BadSignature):
        keyring().verify(garbage)


def test_another_keys_certificate_is_refused() -> None:
    with pytest.raises(BadSignature):
        keyring().verify(keyring().sign(CLAIMS))


def test_a_token_of_another_type_is_refused() -> None:
    ring = keyring()
    answer = ring.sign({"valid": True, "code": "VALID"}, typ=VALIDATION_TYP)
    assert ring.verify(answer, typ=VALIDATION_TYP)["code"] == "VALID"
    with pytest.raises(BadSignature):
        ring.verify(answer)  # a validation answer is no certificate
    with pytest.raises(BadSignature):
        ring.verify(ring.sign(CLAIMS), typ=VALIDATION_TYP)


def test_retired_keys_still_verify_and_are_published() -> None:
    old = keyring()
    token = old.sign(CLAIMS)
    new = Keyring.build(Ed25519PrivateKey.generate(), [old.signing_key.public_key()])
    assert new.verify(token) == CLAIMS
    kids = [key["kid"] for key in new.jwks()["keys"]]
    assert kids == [new.signing_kid, old.signing_kid]
    assert json.loads(b64url_decode(new.sign(CLAIMS).split(".")[0]))["kid"] == new.signing_kid


def test_key_formats() -> None:
    private = Ed25519PrivateKey.generate()
    raw = private.private_bytes_raw()
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    kid = thumbprint(private.public_key())
    assert thumbprint(load_private_key(base64.b64encode(raw)).public_key()) == kid
    assert thumbprint(load_private_key(pem).public_key()) == kid
    x = b64url(private.public_key().public_bytes_raw())
    listed = load_key_list(
        pem + b"," + public_pem + b", x:" + x.encode() + b"," + base64.b64encode(raw)
    )
    assert [thumbprint(key) for key in listed] == [kid] * 4
    assert load_key_list(b"") == []
    with pytest.raises(ValueError):
        load_private_key(public_pem)
    with pytest.raises(ValueError):
        load_private_key(base64.b64encode(b"short"))
    assert load_private_key(generate_private_key_text())


def test_activation_passwords_are_encrypted_at_rest() -> None:
    box = PasswordBox(b"secret-one")
    token = box.encrypt("K7QX-M2PD-9TRW-H4NC")
    assert "K7QX" not in token
    assert box.encrypt("K7QX-M2PD-9TRW-H4NC") != token  # random IV
    assert box.decrypt(token) == "K7QX-M2PD-9TRW-H4NC"
    with pytest.raises(ValueError):
        PasswordBox(b"secret-two").decrypt(token)


def test_offline_secrets_are_derived_from_the_request_under_their_own_key() -> None:
    derive = OfflineSecrets(b"secret-one").secret
    secret = derive("L-7KQX-M2PD", "0f3c", "n" * 22)
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", secret)  # 256 bits, URL-safe
    # the same request, the same secret: a double upload leaves the first response working
    assert derive("L-7KQX-M2PD", "0f3c", "n" * 22) == secret
    # anything else of the request, or another SECRET_KEY: another secret
    others = {
        derive("L-2222-2222", "0f3c", "n" * 22),
        derive("L-7KQX-M2PD", "0f3d", "n" * 22),
        derive("L-7KQX-M2PD", "0f3c", "m" * 22),
        derive("L-7KQX-M2PD", "0f3c|" + "n" * 22, "n" * 22),
        OfflineSecrets(b"secret-two").secret("L-7KQX-M2PD", "0f3c", "n" * 22),
    }
    assert secret not in others and len(others) == 5
    # never the raw SECRET_KEY as the HMAC key (one key, one purpose)
    raw = hmac.new(b"secret-one", f"L-7KQX-M2PD|0f3c|{'n' * 22}".encode(), hashlib.sha256)
    assert b64url(raw.digest()) != secret
