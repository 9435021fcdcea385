"""Compact JWS / EdDSA verification: good certificates pass, anything else is a typed failure."""

from __future__ import annotations

import base64
import json
import random

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from license_client import jws

CLAIMS = {
    "license_id": "LIC-1",
    "installation_id": "inst-1",
    "machine_name": "pc-1",
    "customer_id": "C-1",
    "product": "cadpro",
    "iat": 1_700_000_000,
    "exp": 1_950_000_000,
}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def keys(key: Ed25519PrivateKey) -> jws.KeySet:
    return jws.KeySet.from_jwks({"keys": [jws.public_jwk(key.public_key(), "k1")]})


def reason(keys: jws.KeySet, token: object) -> str:
    with pytest.raises(jws.CertificateError) as caught:
        keys.verify(token)
    return caught.value.reason


def test_a_signed_certificate_verifies_and_exposes_its_claims(key, keys):
    certificate = keys.verify(jws.sign(CLAIMS, key, "k1"))
    assert certificate.claims == CLAIMS
    assert certificate.kid == "k1"
    assert (certificate.license_id, certificate.installation_id) == ("LIC-1", "inst-1")
    assert (certificate.machine_name, certificate.customer_id) == ("pc-1", "C-1")
    assert certificate.product == "cadpro"
    assert certificate.issued_at.timestamp() == 1_700_000_000
    assert certificate.expires_at.timestamp() == 1_950_000_000


def test_perpetual_certificate_has_no_expiry_and_product_may_be_an_object(key, keys):
    claims = {k: v for k, v in CLAIMS.items() if k != "exp"}
    claims["product"] = {"code": "cadpro", "name": "CAD Pro"}
    certificate = keys.verify(jws.sign(claims, key, "k1"))
    assert certificate.expires_at is None
    assert certificate.product == "cadpro"


def test_tampered_payload_fails_the_signature(key, keys):
    header, _, signature = jws.sign(CLAIMS, key, "k1").split(".")
    forged = b64(json.dumps({**CLAIMS, "exp": 2_500_000_000}).encode())
    assert reason(keys, f"{header}.{forged}.{signature}") == jws.BAD_SIGNATURE


def test_tampered_signature_fails(key, keys):
    header, payload, signature = jws.sign(CLAIMS, key, "k1").split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=="))
    raw[0] ^= 1
    assert reason(keys, f"{header}.{payload}.{b64(bytes(raw))}") == jws.BAD_SIGNATURE


def test_another_key_with_the_same_kid_fails(keys):
    other = Ed25519PrivateKey.generate()
    assert reason(keys, jws.sign(CLAIMS, other, "k1")) == jws.BAD_SIGNATURE


def test_unknown_kid(key, keys):
    assert reason(keys, jws.sign(CLAIMS, key, "k2")) == jws.UNKNOWN_KEY


def test_kid_may_be_left_out_only_against_a_single_key(key, keys):
    token = jws.sign(CLAIMS, key, None)
    assert keys.verify(token).claims == CLAIMS
    two = jws.KeySet.from_jwks(
        {
            "keys": [
                jws.public_jwk(key.public_key(), "k1"),
                jws.public_jwk(Ed25519PrivateKey.generate().public_key(), "k2"),
            ]
        }
    )
    assert reason(two, token) == jws.UNKNOWN_KEY


@pytest.mark.parametrize("alg", ["none", "HS256", "RS256", "ES256", None, 5])
def test_only_eddsa_is_accepted(key, keys, alg):
    header = b64(json.dumps({"alg": alg, "kid": "k1"}).encode())
    payload = b64(json.dumps(CLAIMS).encode())
    signature = b64(key.sign(f"{header}.{payload}".encode()))
    assert reason(keys, f"{header}.{payload}.{signature}") == jws.UNSUPPORTED_ALGORITHM


def test_the_fully_specified_ed25519_algorithm_name_is_accepted(key, keys):
    header = b64(json.dumps({"alg": "Ed25519", "kid": "k1"}).encode())
    payload = b64(json.dumps(CLAIMS).encode())
    signature = b64(key.sign(f"{header}.{payload}".encode()))
    assert keys.verify(f"{header}.{payload}.{signature}").claims == CLAIMS


def test_critical_headers_are_refused(key, keys):
    header = b64(json.dumps({"alg": "EdDSA", "kid": "k1", "crit": ["exp"]}).encode())
    payload = b64(json.dumps(CLAIMS).encode())
    signature = b64(key.sign(f"{header}.{payload}".encode()))
    assert reason(keys, f"{header}.{payload}.{signature}") == jws.MALFORMED


GARBAGE = [
    None,
    42,
    ["a", "b"],
    "",
    "garbage",
    "a.b",
    "a.b.c.d",
    "...",
    "!!!.@@@.###",
    "eyJhbGciOiJFZERTQSJ9.e30",
    b64(b"not json") + "." + b64(b"{}") + "." + b64(bytes(64)),
    b64(b"[1,2]") + "." + b64(b"{}") + "." + b64(bytes(64)),
    b64(b'{"alg":"EdDSA","kid":"k1"}') + "." + b64(b"[]") + "." + b64(bytes(64)),
    b64(b'{"alg":"EdDSA","kid":"k1"}') + "." + b64(b"{}") + "." + b64(bytes(10)),
    b64(b'{"alg":"EdDSA","kid":"k1"}') + "." + b64(b"{}") + "." + "A",  # impossible length
    b64(b'{"alg":"EdDSA","kid":7}') + "." + b64(b"{}") + "." + b64(bytes(64)),
    b64(b"\xff\xfe") + "." + b64(b"{}") + "." + b64(bytes(64)),
    b64(b'{"alg":"EdDSA"}') + "=." + b64(b"{}") + "." + b64(bytes(64)),
    "a" * 20_000 + ".b.c",
    "é.é.é".encode(),
    b"\xff\xff",
    b64(b"[" * 100_000) + ".e30." + b64(bytes(64)),
]


@pytest.mark.parametrize("token", GARBAGE, ids=range(len(GARBAGE)))
def test_garbage_is_a_typed_failure_never_a_crash(keys, token):
    assert reason(keys, token) in (jws.MALFORMED, jws.UNSUPPORTED_ALGORITHM, jws.UNKNOWN_KEY)


def test_random_corruptions_never_escape_as_other_exceptions(key, keys):
    token = jws.sign(CLAIMS, key, "k1")
    alphabet = "ABCxyz019-_.=+/ \n\x00é"
    generator = random.Random(1234)
    for _ in range(2000):
        chars = list(token)
        for _ in range(generator.randint(1, 4)):
            position = generator.randrange(len(chars))
            action = generator.random()
            if action < 0.4:
                chars[position] = generator.choice(alphabet)
            elif action < 0.7:
                del chars[position]
            else:
                chars.insert(position, generator.choice(alphabet))
        mutated = "".join(chars)
        try:
            certificate = keys.verify(mutated)
        except jws.CertificateError:
            continue
        # a few mutations are harmless (padding bits of the last base64 character)
        assert certificate.claims == CLAIMS


def test_jwks_skips_keys_it_cannot_use():
    good = Ed25519PrivateKey.generate()
    document = {
        "keys": [
            {"kty": "RSA", "kid": "rsa", "n": "AQAB", "e": "AQAB"},
            {"kty": "OKP", "crv": "X25519", "kid": "x", "x": b64(bytes(32))},
            {"kty": "OKP", "crv": "Ed25519", "kid": "short", "x": b64(bytes(5))},
            {"kty": "OKP", "crv": "Ed25519", "kid": "enc", "use": "enc", "x": b64(bytes(32))},
            {"kty": "OKP", "crv": "Ed25519", "kid": "nox"},
            "not a key",
            jws.public_jwk(good.public_key(), "good"),
        ]
    }
    keys = jws.KeySet.from_jwks(json.dumps(document))
    assert list(keys.keys) == ["good"]
    assert keys.verify(jws.sign(CLAIMS, good, "good")).claims == CLAIMS


@pytest.mark.parametrize("document", ["not json", "[]", '{"keys": 5}', b"\xff"])
def test_a_document_that_is_no_jwks_is_a_typed_failure(document):
    with pytest.raises(jws.CertificateError) as caught:
        jws.KeySet.from_jwks(document)
    assert caught.value.reason == jws.MALFORMED


def test_a_standard_jwt_library_accepts_the_certificate_and_the_jwks(key):
    jwt = pytest.importorskip("jwt")  # PyJWT, in the portal's dev dependencies
    token = jws.sign(CLAIMS, key, "k1")
    jwk = jws.public_jwk(key.public_key(), "k1")
    public = jwt.PyJWK(jwk).key
    claims = jwt.decode(token, public, algorithms=["EdDSA"], options={"verify_exp": False})
    assert claims == CLAIMS
    assert jwt.get_unverified_header(token)["kid"] == "k1"
