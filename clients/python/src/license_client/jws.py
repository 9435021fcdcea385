"""Compact JWS (RFC 7515) with EdDSA / Ed25519 (RFC 8037): the activation certificate's format.

`KeySet.from_jwks(...)` reads a JWKS (what `GET /api/v1/signing-keys` returns) and
`KeySet.verify(token)` checks a certificate: the compact form, the `EdDSA` algorithm, the `kid`
looked up in the set, and the Ed25519 signature over `header.payload`. Anything wrong with the
input, however malformed, ends as a `CertificateError` with a `reason` code; no other exception
escapes. `KeySet.verify_answer(token)` checks a signed online validation answer the same way
(its `typ` is `license-validation+jwt`: neither kind passes for the other). `sign` and
`public_jwk` make test certificates (and are what a server would do).
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

# RFC 8037 names the algorithm "EdDSA"; RFC 9864 adds the fully specified "Ed25519"
ALGORITHMS = ("EdDSA", "Ed25519")
MAX_TOKEN_LENGTH = 16_384  # a certificate is a few hundred bytes; refuse to parse megabytes
CERTIFICATE_TYP = "JWT"
VALIDATION_TYP = "license-validation+jwt"  # the `typ` of a signed validation answer
_B64URL = re.compile(r"\A[A-Za-z0-9_-]*\Z")

MALFORMED = "MALFORMED"
UNSUPPORTED_ALGORITHM = "UNSUPPORTED_ALGORITHM"
UNKNOWN_KEY = "UNKNOWN_KEY"
BAD_SIGNATURE = "BAD_SIGNATURE"


class CertificateError(Exception):
    """Why a token is not a valid certificate; `reason` is one of the module's reason codes."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class Certificate:
    """A verified activation certificate: the token and its claims."""

    token: str
    header: dict[str, Any]
    claims: dict[str, Any]

    @functools.cached_property
    def kid(self) -> str | None:
        return _str(self.header.get("kid"))

    @functools.cached_property
    def license_id(self) -> str | None:
        return _str(self.claims.get("license_id"))

    @functools.cached_property
    def installation_id(self) -> str | None:
        return _str(self.claims.get("installation_id"))

    @functools.cached_property
    def machine_name(self) -> str | None:
        return _str(self.claims.get("machine_name"))

    @functools.cached_property
    def customer_id(self) -> str | None:
        return _str(self.claims.get("customer_id"))

    @functools.cached_property
    def product(self) -> str | None:
        """The product code, whether the claim is a code or an object `{code, name}`."""
        value = self.claims.get("product")
        if isinstance(value, dict):
            value = value.get("code")
        return _str(value)

    @functools.cached_property
    def features(self) -> tuple[str, ...]:
        """The feature codes the license unlocks (the `features` claim), sorted; none for a
        certificate issued before licenses had features."""
        return feature_codes(self.claims.get("features"))

    @functools.cached_property
    def issued_at(self) -> datetime | None:
        return _numeric_date(self.claims.get("iat"))

    @functools.cached_property
    def expires_at(self) -> datetime | None:
        """The license's expiry; None for a perpetual license."""
        return _numeric_date(self.claims.get("exp"))


@dataclass(frozen=True)
class SignedAnswer:
    """A verified validation answer of the server: its claims (`valid`, `code`,
    `license_id`, `installation_id`, `expires_at`, `iat`, `nonce`)."""

    token: str
    header: dict[str, Any]
    claims: dict[str, Any]

    @property
    def issued_at(self) -> datetime | None:
        return _numeric_date(self.claims.get("iat"))


@dataclass
class KeySet:
    """Ed25519 public keys by `kid`, from a JWKS."""

    keys: dict[str, Ed25519PublicKey] = field(default_factory=dict)
    document: dict[str, Any] = field(default_factory=lambda: {"keys": []})
    # certificates this set has verified, so their claims are decoded once; the signature is
    # still checked on every call
    _seen: dict[str, Certificate] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_jwks(cls, jwks: dict[str, Any] | str | bytes) -> KeySet:
        """The usable keys of a JWKS (dict or JSON text); other key types are skipped.

        Raises `CertificateError(MALFORMED)` when the document is not a JWKS at all.
        """
        try:
            document = json.loads(jwks) if isinstance(jwks, (str, bytes)) else jwks
        except (ValueError, UnicodeDecodeError) as exc:
            raise CertificateError(MALFORMED, f"the JWKS is not JSON: {exc}") from None
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise CertificateError(MALFORMED, 'the JWKS has no "keys" list')
        keys: dict[str, Ed25519PublicKey] = {}
        for jwk in document["keys"]:
            key = _ed25519_key(jwk)
            if key is not None:
                keys[str(jwk.get("kid", ""))] = key
        return cls(keys, document)

    def __bool__(self) -> bool:
        return bool(self.keys)

    def key_for(self, kid: str | None) -> Ed25519PublicKey | None:
        if kid is None:
            # a token without kid is only unambiguous against a set of one key
            return next(iter(self.keys.values())) if len(self.keys) == 1 else None
        return self.keys.get(kid)

    def verify(self, token: Any) -> Certificate:
        """The certificate if `token` is a compact JWS signed by a key of this set."""
        header, claims = self._verified(token)
        if header.get("typ") == VALIDATION_TYP:
            raise CertificateError(MALFORMED, "a validation answer is not a certificate")
        seen = self._seen.get(token)
        if seen is None:
            if len(self._seen) >= 16:
                self._seen.clear()
            seen = self._seen[token] = Certificate(token, header, claims)
        return seen

    def verify_answer(self, token: Any) -> SignedAnswer:
        """The server's signed validation answer if `token` is one, signed by this set."""
        header, claims = self._verified(token)
        if header.get("typ") != VALIDATION_TYP:
            raise CertificateError(MALFORMED, "the token is not a signed validation answer")
        return SignedAnswer(token, header, claims)

    def _verified(self, token: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        header, claims, signing_input, signature = parse(token)
        algorithm = header.get("alg")
        if algorithm not in ALGORITHMS:
            raise CertificateError(
                UNSUPPORTED_ALGORITHM, f"algorithm {algorithm!r} is not EdDSA/Ed25519"
            )
        if "crit" in header:
            raise CertificateError(MALFORMED, "critical header extensions are not supported")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise CertificateError(MALFORMED, "the kid header is not a string")
        key = self.key_for(kid)
        if key is None:
            raise CertificateError(UNKNOWN_KEY, f"no signing key with kid {kid!r}")
        try:
            key.verify(signature, signing_input)
        except InvalidSignature:
            raise CertificateError(BAD_SIGNATURE, "the signature does not verify") from None
        return header, claims


def parse(token: Any) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    """Header, claims, signing input and signature of a compact JWS, signature unchecked."""
    if isinstance(token, str):
        # a product validates the same certificate again and again: decode it once (the
        # signature is still checked every time); copies, so callers cannot alter the cache
        header, claims, signing_input, signature = _parse_text(token)
        return dict(header), dict(claims), signing_input, signature
    if isinstance(token, bytes):
        try:
            token = token.decode("ascii")
        except UnicodeDecodeError:
            raise CertificateError(MALFORMED, "the certificate is not ASCII") from None
    if not isinstance(token, str):
        raise CertificateError(MALFORMED, "the certificate is not a string")
    return parse(token)


@functools.lru_cache(maxsize=16)
def _parse_text(token: str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    token = token.strip()
    if len(token) > MAX_TOKEN_LENGTH:
        raise CertificateError(MALFORMED, "the certificate is too long")
    parts = token.split(".")
    if len(parts) != 3:
        raise CertificateError(MALFORMED, "a compact JWS has three dot-separated parts")
    header = _json_part(parts[0], "header")
    claims = _json_part(parts[1], "payload")
    signature = _b64decode(parts[2], "signature")
    if len(signature) != 64:
        raise CertificateError(MALFORMED, "an Ed25519 signature is 64 bytes")
    return header, claims, f"{parts[0]}.{parts[1]}".encode("ascii"), signature


def sign(
    claims: dict[str, Any],
    private_key: Ed25519PrivateKey,
    kid: str | None = None,
    typ: str = CERTIFICATE_TYP,
) -> str:
    """A compact JWS of `claims`, EdDSA-signed (what the server issues; handy in tests)."""
    header: dict[str, Any] = {"alg": "EdDSA", "typ": typ}
    if kid is not None:
        header["kid"] = kid
    signing_input = f"{_b64encode(_compact_json(header))}.{_b64encode(_compact_json(claims))}"
    signature = private_key.sign(signing_input.encode("ascii"))
    return f"{signing_input}.{_b64encode(signature)}"


def public_jwk(public_key: Ed25519PublicKey, kid: str) -> dict[str, str]:
    """The JWK (RFC 8037) of an Ed25519 public key."""
    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return {
        "kty": "OKP",
        "crv": "Ed25519",
        "alg": "EdDSA",
        "use": "sig",
        "kid": kid,
        "x": _b64encode(raw),
    }


def feature_codes(value: Any) -> tuple[str, ...]:
    """Feature codes from a `features` claim or answer field: a list of codes (or of
    `{code, name}` objects), sorted and without duplicates; anything else means none."""
    if not isinstance(value, list):
        return ()
    codes = set()
    for item in value:
        if isinstance(item, dict):
            item = item.get("code")
        if isinstance(item, str) and item:
            codes.add(item)
    return tuple(sorted(codes))


def same_product(a: Any, b: Any) -> bool:
    """Whether two product codes (a claim's, an option's) name the same product: codes are
    compared as the portal stores them, stripped and in lower case (`CADPRO` is `cadpro`)."""
    if isinstance(a, dict):
        a = a.get("code")
    if isinstance(b, dict):
        b = b.get("code")
    return isinstance(a, str) and isinstance(b, str) and a.strip().lower() == b.strip().lower()


def b64url_decode(text: str) -> bytes:
    return _b64decode(text, "value")


def _ed25519_key(jwk: Any) -> Ed25519PublicKey | None:
    if not isinstance(jwk, dict):
        return None
    if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
        return None
    if jwk.get("use", "sig") != "sig" or jwk.get("alg", "EdDSA") not in ALGORITHMS:
        return None
    x = jwk.get("x")
    if not isinstance(x, str):
        return None
    try:
        raw = _b64decode(x, "x")
        return Ed25519PublicKey.from_public_bytes(raw)
    except (CertificateError, ValueError):
        return None


def _json_part(text: str, name: str) -> dict[str, Any]:
    raw = _b64decode(text, name)
    try:
        value = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise CertificateError(MALFORMED, f"the {name} is not JSON") from None
    if not isinstance(value, dict):
        raise CertificateError(MALFORMED, f"the {name} is not a JSON object")
    return value


def _b64decode(text: str, name: str) -> bytes:
    if not _B64URL.match(text):
        raise CertificateError(MALFORMED, f"the {name} is not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise CertificateError(MALFORMED, f"the {name} is not base64url") from None


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _compact_json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode("utf-8")


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _numeric_date(value: Any) -> datetime | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        return datetime.fromtimestamp(value, tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None
