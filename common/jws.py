"""Compact JWS (RFC 7515) with EdDSA/Ed25519 (RFC 8037): the certificate keys' `Keyring`.

Shared by licensing, which owns the keys (services/licensing/crypto.py loads them), and the
gateway, which answers validations from its read model (gateway/validation.py) with the same
keys: a certificate is verified and a validation answer signed the same way in both. The
`kid` is the RFC 7638 thumbprint of the public key.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

MAX_CERTIFICATE_LENGTH = 8192
CERTIFICATE_TYP = "JWT"
# a signed online validation answer: its own `typ`, so neither passes for the other
VALIDATION_TYP = "license-validation+jwt"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    if not re.fullmatch(r"[A-Za-z0-9_-]*", text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def thumbprint(public: Ed25519PublicKey) -> str:
    """RFC 7638 JWK thumbprint: SHA-256 of the required members in lexicographic order."""
    canonical = json.dumps(
        {"crv": "Ed25519", "kty": "OKP", "x": b64url(raw_public(public))},
        separators=(",", ":"),
        sort_keys=True,
    )
    return b64url(hashlib.sha256(canonical.encode()).digest())


class BadSignature(Exception):
    """The certificate is malformed, signed by an unknown key, or tampered with."""


@dataclass(frozen=True)
class Keyring:
    """The key that signs now, and every key that still verifies (by `kid`)."""

    signing_key: Ed25519PrivateKey
    signing_kid: str
    verify_keys: dict[str, Ed25519PublicKey]

    @classmethod
    def build(cls, signing_key: Ed25519PrivateKey, retired: list[Ed25519PublicKey] = ()) -> Keyring:
        kid = thumbprint(signing_key.public_key())
        verify = {kid: signing_key.public_key()}
        for public in retired:
            verify.setdefault(thumbprint(public), public)
        return cls(signing_key, kid, verify)

    def sign(self, claims: dict[str, Any], typ: str = CERTIFICATE_TYP) -> str:
        header = {"alg": "EdDSA", "typ": typ, "kid": self.signing_kid}
        signing_input = (
            b64url(json.dumps(header, separators=(",", ":")).encode())
            + "."
            + b64url(json.dumps(claims, separators=(",", ":"), ensure_ascii=False).encode())
        )
        signature = self.signing_key.sign(signing_input.encode("ascii"))
        return signing_input + "." + b64url(signature)

    def verify(self, token: Any, typ: str = CERTIFICATE_TYP) -> dict[str, Any]:
        """The claims of a certificate (or another JWS of `typ`) signed by one of our keys;
        `BadSignature` otherwise (a signed validation answer is no certificate).

        Time claims are not checked here: an expired license is a status, not a bad token.
        """
        if not isinstance(token, str) or len(token) > MAX_CERTIFICATE_LENGTH:
            raise BadSignature("not a compact JWS")
        parts = token.split(".")
        if len(parts) != 3:
            raise BadSignature("not a compact JWS")
        try:
            header = json.loads(b64url_decode(parts[0]))
            signature = b64url_decode(parts[2])
            if not isinstance(header, dict) or header.get("alg") != "EdDSA":
                raise BadSignature("unexpected algorithm")
            if header.get("typ", CERTIFICATE_TYP) != typ:
                raise BadSignature("unexpected type")
            key = self.verify_keys.get(header.get("kid"))
            if key is None:
                raise BadSignature("unknown key")
            key.verify(signature, f"{parts[0]}.{parts[1]}".encode("ascii"))
            claims = json.loads(b64url_decode(parts[1]))
        except (ValueError, TypeError, UnicodeError, InvalidSignature, RecursionError) as exc:
            raise BadSignature(str(exc) or type(exc).__name__) from exc
        if not isinstance(claims, dict):
            raise BadSignature("claims are not an object")
        return claims

    def jwks(self) -> dict[str, Any]:
        """RFC 7517 key set: the signing key first, then the retired ones."""
        ordered = [self.signing_kid] + [k for k in self.verify_keys if k != self.signing_kid]
        return {
            "keys": [
                {
                    "kty": "OKP",
                    "crv": "Ed25519",
                    "x": b64url(raw_public(self.verify_keys[kid])),
                    "kid": kid,
                    "use": "sig",
                    "alg": "EdDSA",
                }
                for kid in ordered
            ]
        }


def raw_private(key: Ed25519PrivateKey) -> bytes:
    """The 32 raw bytes of a private key (what `validation_keys` hands the gateway)."""
    return key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )


def public_keys_of(jwks: Any) -> list[Ed25519PublicKey]:
    """The Ed25519 keys of a JWKS (`Keyring.jwks()`); other entries are skipped."""
    keys = []
    for jwk in (jwks or {}).get("keys", []) if isinstance(jwks, dict) else []:
        if isinstance(jwk, dict) and jwk.get("kty") == "OKP" and jwk.get("crv") == "Ed25519":
            keys.append(Ed25519PublicKey.from_public_bytes(b64url_decode(str(jwk.get("x")))))
    return keys


def header_kid(token: Any) -> str | None:
    """The `kid` in a compact JWS's header, unverified (None when there is none): whether a
    verifier should fetch the key set again before calling the token bad."""
    if not isinstance(token, str) or len(token) > MAX_CERTIFICATE_LENGTH:
        return None
    try:
        header = json.loads(b64url_decode(token.split(".", 1)[0]))
    except (ValueError, UnicodeError, RecursionError):
        return None
    kid = header.get("kid") if isinstance(header, dict) else None
    return kid if isinstance(kid, str) else None
