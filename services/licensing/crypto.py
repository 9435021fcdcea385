"""Activation certificates (compact JWS, EdDSA/Ed25519) and activation passwords at rest.

Certificates follow RFC 7515 (JWS compact form) with RFC 8037 (`alg: EdDSA`, OKP keys), so
any JWT library verifies them offline with the JWKS from `GET /api/v1/signing-keys`. The
`kid` is the RFC 7638 thumbprint of the public key.

Key formats (`LICENSE_SIGNING_KEY`): a PEM private key (PKCS#8, `openssl genpkey -algorithm
ed25519`), or base64 of the raw 32-byte private key. `LICENSE_SIGNING_KEYS_RETIRED` lists
keys that still verify but no longer sign, separated by commas: PEM (public or private),
the same base64 raw private key form, or `x:<base64url raw public key>` (a JWK's `x`).

Activation passwords are encrypted with Fernet (AES-128-CBC + HMAC-SHA256) under a key
derived from `SECRET_KEY` with HKDF, so the database alone never reveals them. Offline
deactivation secrets are HMAC-SHA256 of their request under another key derived the same way
(`OfflineSecrets`): each purpose has its own key, never the raw `SECRET_KEY`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

# the JWS half lives in common (the gateway signs validation answers with these keys too)
from common.jws import (  # noqa: F401 - re-exported: licensing's code and tests use them here
    CERTIFICATE_TYP,
    MAX_CERTIFICATE_LENGTH,
    VALIDATION_TYP,
    BadSignature,
    Keyring,
    b64url,
    b64url_decode,
    thumbprint,
)

_PEM = re.compile(rb"-----BEGIN ([A-Z ]+)-----.+?-----END \1-----", re.S)


def generate_private_key_text() -> bytes:
    """A new key in the base64 raw form, as written to `var/license_signing_key`."""
    raw = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    return base64.b64encode(raw)


def _load_one(text: bytes) -> Ed25519PrivateKey | Ed25519PublicKey:
    text = text.strip()
    if text.startswith(b"-----BEGIN"):
        if b"PRIVATE" in text.split(b"\n", 1)[0]:
            key = serialization.load_pem_private_key(text, password=None)
        else:
            key = serialization.load_pem_public_key(text)
        if not isinstance(key, Ed25519PrivateKey | Ed25519PublicKey):
            raise ValueError("not an Ed25519 key")
        return key
    if text.startswith(b"x:"):
        return Ed25519PublicKey.from_public_bytes(b64url_decode(text[2:].decode()))
    try:
        raw = base64.b64decode(text, validate=True)
    except binascii.Error:
        raw = b64url_decode(text.decode())
    if len(raw) != 32:
        raise ValueError("an Ed25519 raw private key is 32 bytes")
    return Ed25519PrivateKey.from_private_bytes(raw)


def load_private_key(text: bytes) -> Ed25519PrivateKey:
    key = _load_one(text)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("LICENSE_SIGNING_KEY must be a private key")
    return key


def load_key_list(text: bytes | None) -> list[Ed25519PublicKey]:
    """The public keys of a comma-separated list of keys (PEM blocks may span lines)."""
    if not text or not text.strip():
        return []
    keys: list[Ed25519PublicKey] = []
    for block in _PEM.finditer(text):
        keys.append(_public_of(_load_one(block.group(0))))
    rest = _PEM.sub(b",", text)
    for part in re.split(rb"[,\s]+", rest):
        if part.strip():
            keys.append(_public_of(_load_one(part)))
    return keys


def _public_of(key: Ed25519PrivateKey | Ed25519PublicKey) -> Ed25519PublicKey:
    return key.public_key() if isinstance(key, Ed25519PrivateKey) else key


def _derive(secret_key: bytes, purpose: bytes) -> bytes:
    """A 32-byte key for one `purpose` of `SECRET_KEY` (HKDF-SHA256)."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"license-portal", info=purpose).derive(
        secret_key
    )


class PasswordBox:
    """Encrypts activation passwords at rest with a key derived from `SECRET_KEY`."""

    def __init__(self, secret_key: bytes) -> None:
        derived = _derive(secret_key, b"licensing: activation passwords")
        self._fernet = Fernet(base64.urlsafe_b64encode(derived))

    def encrypt(self, password: str) -> str:
        return self._fernet.encrypt(password.encode()).decode("ascii")

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode()
        except InvalidToken as exc:
            raise ValueError("activation password cannot be decrypted with SECRET_KEY") from exc


class OfflineSecrets:
    """The deactivation secret of an offline activation request, derived from the request
    (HMAC-SHA256 under a key derived from `SECRET_KEY` for this purpose alone).

    The same request always gives the same secret, so a response made twice (a double
    upload) still frees the seat; a new request (a new nonce) gives a new one. Nothing
    stores the secret: licensing keeps its hash and derives it again when answering.
    """

    def __init__(self, secret_key: bytes) -> None:
        self._key = _derive(secret_key, b"licensing: offline deactivation secrets")

    def secret(self, license_id: str, installation_id: str, nonce: str) -> str:
        """43 URL-safe characters (256 bits). `|` separates unambiguously: a license ID and
        a nonce never hold one, so only the installation ID, in the middle, may."""
        message = f"{license_id}|{installation_id}|{nonce}".encode()
        return b64url(hmac.new(self._key, message, hashlib.sha256).digest())
