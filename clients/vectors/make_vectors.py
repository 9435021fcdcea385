"""Writes `vectors.json`: certificates, a JWKS and the verdicts both client kits must give.

The Python kit (clients/python) is the reference: `clients/python/tests/test_vectors.py`
checks that it answers every verdict here and that this file is exactly what this script
writes; the C library's tests read the same file. Everything is fixed (the Ed25519 seeds,
the times, the installation), and Ed25519 signatures are deterministic, so running the
script again gives the same bytes:

    .venv/bin/python clients/vectors/make_vectors.py
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

OUTPUT = Path(__file__).with_name("vectors.json")
KEY = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"license-portal vectors key").digest())
# a well-formed key nobody trusts: signs the unknown-kid vectors
STRANGER = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"a stranger's key").digest())
KID = "vectors-2026"
GRACE = timedelta(days=7)
TOLERANCE = timedelta(hours=1)

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
ISSUED = NOW - timedelta(days=31)
EXPIRES = datetime(2027, 5, 1, 12, 0, tzinfo=UTC)
PRODUCT = "cadpro"
# the installation ID as installation.py derives it: SHA-256 of "license-client/v1\0" +
# namespace + "\0" + the machine identifier (stripped, lower-cased), in hex
MACHINE_IDENTIFIER = "3f9a1c0e5b7d4e2a8c6f0b1d2e3a4c5f"
INSTALLATION = hashlib.sha256(
    b"license-client/v1\0" + PRODUCT.encode() + b"\0" + MACHINE_IDENTIFIER.encode()
).hexdigest()
ANSWER_TYP = "license-validation+jwt"
ANSWER_SECONDS = 300
NONCE = "vN3q7Hk2Lx9Pw4Rt6Yb8Zc1Md5Fg0Js"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def part(value: Any) -> str:
    return b64(json.dumps(value, separators=(",", ":"), sort_keys=True).encode("utf-8"))


def sign(
    claims: dict[str, Any],
    key: Ed25519PrivateKey = KEY,
    header: dict[str, Any] | None = None,
) -> str:
    header = {"alg": "EdDSA", "kid": KID, "typ": "JWT"} if header is None else header
    signing_input = f"{part(header)}.{part(claims)}"
    return f"{signing_input}.{b64(key.sign(signing_input.encode('ascii')))}"


def seconds(moment: datetime) -> int:
    return int(moment.timestamp())


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def claims(**changes: Any) -> dict[str, Any]:
    """An online activation's certificate claims as licensing signs them; a change to None
    drops the claim."""
    values: dict[str, Any] = {
        "iss": "license-portal",
        "sub": "L-7KQX-M2PD",
        "jti": "c0ffee00-0000-4000-8000-000000000001",
        "license_id": "L-7KQX-M2PD",
        "customer_id": "C4829113",
        "product": PRODUCT,
        "product_name": "CAD Pro",
        "seats": 3,
        "installation_id": INSTALLATION,
        "machine_name": "CAD-WS-07",
        "activated_at": seconds(ISSUED),
        "features": [],
        "iat": seconds(ISSUED),
        "exp": seconds(EXPIRES),
    }
    values.update(changes)
    return {name: value for name, value in values.items() if value is not None}


def lease_claims(expires: datetime, borrowed: bool = False) -> dict[str, Any]:
    issued = NOW - timedelta(minutes=5)
    return claims(
        lease_id="LS-4HXN-82QW",
        model="floating",
        borrowed=borrowed,
        iat=seconds(issued),
        activated_at=seconds(issued),
        exp=seconds(expires),
    )


def tamper_payload(token: str, **changes: Any) -> str:
    header, payload, signature = token.split(".")
    decoded = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    decoded.update(changes)
    return f"{header}.{part(decoded)}.{signature}"


def tamper_signature(token: str) -> str:
    header, payload, signature = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=="))
    raw[10] ^= 0x01
    return f"{header}.{payload}.{b64(bytes(raw))}"


def with_header(token: str, header: dict[str, Any]) -> str:
    """The token's payload and signature under another header (the signature then covers
    another signing input: it must be the header that refuses it, not the signature)."""
    _, payload, signature = token.split(".")
    return f"{part(header)}.{payload}.{signature}"


def vector(
    name: str,
    note: str,
    certificate: str,
    code: str,
    *,
    expires_at: datetime | None = None,
    features: tuple[str, ...] = (),
    product: str | None = PRODUCT,
    installation_id: str = INSTALLATION,
    now: datetime = NOW,
    last_seen: datetime | None = None,
    server: str = "none",
    last_online_ok: datetime | None = None,
    activated_offline: bool = False,
    stored_in: str = "activation.json",
    grace_until: datetime | None = None,
) -> dict[str, Any]:
    valid = code == "VALID"
    return {
        "name": name,
        "note": note,
        "certificate": certificate,
        "installation_id": installation_id,
        "product": product,
        "now": iso(now),
        "last_seen": iso(last_seen),
        "server": server,
        "last_online_ok": iso(last_online_ok),
        "activated_offline": activated_offline,
        "stored_in": stored_in,
        "expect": {
            "code": code,
            "valid": valid,
            "online": False,
            "expires_at": iso(expires_at),
            "features": list(features) if valid else [],
            "grace_until": iso(grace_until),
        },
    }


def certificates() -> list[dict[str, Any]]:
    node_locked = sign(claims())
    expired_at = NOW - timedelta(days=1)
    lease_end = NOW + timedelta(minutes=10)
    borrowed_end = NOW + timedelta(days=3)
    grace_ok = NOW - timedelta(days=3)
    grace_gone = NOW - timedelta(days=8)
    answer = sign(answer_claims(), header={"alg": "EdDSA", "kid": KID, "typ": ANSWER_TYP})
    hs256 = f"{part({'alg': 'HS256', 'kid': KID, 'typ': 'JWT'})}.{part(claims())}"
    # the classic key confusion: HMAC keyed with the public key's bytes
    public = KEY.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    hs256 += "." + b64(hmac.new(public, hs256.encode("ascii"), hashlib.sha256).digest())
    header, payload, signature = node_locked.split(".")
    return [
        vector(
            "valid-node-locked",
            "An online activation's certificate with an expiry, checked offline.",
            node_locked,
            "VALID",
            expires_at=EXPIRES,
        ),
        vector(
            "valid-perpetual",
            "No exp claim: a perpetual license, valid with expires_at null.",
            sign(claims(exp=None)),
            "VALID",
        ),
        vector(
            "valid-with-features",
            "The features claim, answered sorted and without duplicates.",
            sign(claims(features=["steel", "fem", "steel"])),
            "VALID",
            expires_at=EXPIRES,
            features=("fem", "steel"),
        ),
        vector(
            "valid-features-as-objects",
            "Features given as {code, name} objects count by their code.",
            sign(claims(features=[{"code": "steel", "name": "Steel design"}, "fem"])),
            "VALID",
            expires_at=EXPIRES,
            features=("fem", "steel"),
        ),
        vector(
            "valid-product-object",
            "A product claim given as {code, name} is matched by its code.",
            sign(claims(product={"code": PRODUCT, "name": "CAD Pro"})),
            "VALID",
            expires_at=EXPIRES,
        ),
        vector(
            "valid-no-product-configured",
            "A kit configured without a product accepts any product's certificate.",
            node_locked,
            "VALID",
            expires_at=EXPIRES,
            product=None,
        ),
        vector(
            "valid-without-kid-single-key",
            "A header without kid is verified with the only key of a one-key JWKS.",
            sign(claims(), header={"alg": "EdDSA", "typ": "JWT"}),
            "VALID",
            expires_at=EXPIRES,
        ),
        vector(
            "valid-alg-ed25519",
            'The fully specified algorithm name "Ed25519" (RFC 9864) is accepted too.',
            sign(claims(), header={"alg": "Ed25519", "kid": KID, "typ": "JWT"}),
            "VALID",
            expires_at=EXPIRES,
        ),
        vector(
            "valid-surrounding-whitespace",
            "Whitespace around the token (a hand-edited file) is ignored.",
            f"  {node_locked}\n",
            "VALID",
            expires_at=EXPIRES,
        ),
        vector(
            "expired",
            "exp is a day before now.",
            sign(claims(exp=seconds(expired_at))),
            "EXPIRED",
            expires_at=expired_at,
        ),
        vector(
            "expired-at-the-second",
            "now equal to exp is already expired (valid while now < exp).",
            sign(claims(exp=seconds(NOW))),
            "EXPIRED",
            expires_at=NOW,
        ),
        vector(
            "expiry-not-a-date",
            "An exp claim that is not a number is refused, not read as perpetual.",
            sign(claims(exp="2027-05-01T12:00:00Z")),
            "MALFORMED",
        ),
        vector(
            "tampered-payload",
            "The payload changed after signing (exp pushed out): the signature fails.",
            tamper_payload(node_locked, exp=seconds(EXPIRES + timedelta(days=3650))),
            "BAD_SIGNATURE",
        ),
        vector(
            "tampered-features",
            "A feature added to a signed payload: the signature fails.",
            tamper_payload(node_locked, features=["steel"]),
            "BAD_SIGNATURE",
        ),
        vector(
            "tampered-signature",
            "One bit of the signature flipped.",
            tamper_signature(node_locked),
            "BAD_SIGNATURE",
        ),
        vector(
            "alg-none",
            'alg "none" with a 64-byte signature: refused for its algorithm.',
            with_header(node_locked, {"alg": "none", "kid": KID, "typ": "JWT"}),
            "UNSUPPORTED_ALGORITHM",
        ),
        vector(
            "alg-none-empty-signature",
            'alg "none" with no signature: refused before the algorithm is read (an Ed25519 '
            "signature is 64 bytes).",
            f"{part({'alg': 'none', 'typ': 'JWT'})}.{payload}.",
            "MALFORMED",
        ),
        vector(
            "alg-hs256",
            "alg HS256 with a 64-byte signature: refused for its algorithm.",
            with_header(node_locked, {"alg": "HS256", "kid": KID, "typ": "JWT"}),
            "UNSUPPORTED_ALGORITHM",
        ),
        vector(
            "alg-hs256-key-confusion",
            "HS256 keyed with the public key's bytes (32-byte MAC): refused as malformed "
            "before any key is used.",
            hs256,
            "MALFORMED",
        ),
        vector(
            "alg-missing",
            "A header without alg.",
            with_header(node_locked, {"kid": KID, "typ": "JWT"}),
            "UNSUPPORTED_ALGORITHM",
        ),
        vector(
            "crit-header",
            "A critical header extension the kit does not know.",
            sign(claims(), header={"alg": "EdDSA", "kid": KID, "typ": "JWT", "crit": ["exp"]}),
            "MALFORMED",
        ),
        vector(
            "unknown-kid",
            "Signed by a key whose kid the JWKS does not hold.",
            sign(claims(), STRANGER, {"alg": "EdDSA", "kid": "stranger-1", "typ": "JWT"}),
            "UNKNOWN_KEY",
        ),
        vector(
            "kid-not-a-string",
            "A kid that is a number.",
            sign(claims(), header={"alg": "EdDSA", "kid": 7, "typ": "JWT"}),
            "MALFORMED",
        ),
        vector(
            "right-kid-wrong-key",
            "The trusted kid, signed by another key.",
            sign(claims(), STRANGER),
            "BAD_SIGNATURE",
        ),
        vector("not-a-jws", "Plain text, no dots.", "not a certificate", "MALFORMED"),
        vector("empty", "An empty certificate.", "", "MALFORMED"),
        vector(
            "four-parts",
            "Four dot-separated parts.",
            f"{node_locked}.{signature}",
            "MALFORMED",
        ),
        vector(
            "bad-base64",
            "Characters outside base64url in the header.",
            f"{header[:-2]}*!.{payload}.{signature}",
            "MALFORMED",
        ),
        vector(
            "base64-padding",
            "base64url is unpadded: an = sign is refused.",
            f"{header}.{payload}=.{signature}",
            "MALFORMED",
        ),
        vector(
            "standard-base64-alphabet",
            "+ and / belong to standard base64, not base64url.",
            f"{header}.{payload}.{signature[:-2]}+/",
            "MALFORMED",
        ),
        vector(
            "payload-not-json",
            "The payload decodes to text that is not JSON.",
            f"{header}.{b64(b'not json')}.{signature}",
            "MALFORMED",
        ),
        vector(
            "payload-json-array",
            "The payload is JSON but not an object.",
            f"{header}.{b64(b'[1,2,3]')}.{signature}",
            "MALFORMED",
        ),
        vector(
            "header-not-utf8",
            "The header decodes to bytes that are not UTF-8.",
            f"{b64(bytes([0xFF, 0xFE, 0x7B]))}.{payload}.{signature}",
            "MALFORMED",
        ),
        vector(
            "signature-too-short",
            "A 32-byte signature.",
            f"{header}.{payload}.{b64(bytes(32))}",
            "MALFORMED",
        ),
        vector(
            "answer-as-certificate",
            "A signed validation answer (typ license-validation+jwt, genuine signature) "
            "stored as a certificate.",
            answer,
            "MALFORMED",
        ),
        vector(
            "wrong-installation",
            "A genuine certificate of another installation (copied from another machine).",
            sign(claims(installation_id="0" * 64)),
            "WRONG_MACHINE",
            expires_at=EXPIRES,
        ),
        vector(
            "wrong-installation-and-expired",
            "The machine is checked before the expiry.",
            sign(claims(installation_id="0" * 64, exp=seconds(expired_at))),
            "WRONG_MACHINE",
            expires_at=expired_at,
        ),
        vector(
            "wrong-product",
            "A cadpro certificate in a kit configured for femsolver.",
            node_locked,
            "WRONG_PRODUCT",
            expires_at=EXPIRES,
            product="femsolver",
        ),
        vector(
            "product-case-differs",
            "Product codes are compared as the server stores them (lower case): a kit "
            "configured with CADPRO accepts a cadpro certificate.",
            node_locked,
            "VALID",
            expires_at=EXPIRES,
            product="CADPRO",
        ),
        vector(
            "clock-rollback-last-seen",
            "now is two hours before the latest time this kit saw (tolerance one hour).",
            node_locked,
            "CLOCK_ROLLBACK",
            expires_at=EXPIRES,
            last_seen=NOW + timedelta(hours=2),
        ),
        vector(
            "clock-behind-last-seen-within-tolerance",
            "now is 59 minutes before the latest time seen: within the tolerance.",
            node_locked,
            "VALID",
            expires_at=EXPIRES,
            last_seen=NOW + timedelta(minutes=59),
        ),
        vector(
            "clock-before-issued",
            "now is two hours before the certificate's iat.",
            sign(claims(iat=seconds(NOW + timedelta(hours=2)))),
            "CLOCK_ROLLBACK",
            expires_at=EXPIRES,
        ),
        vector(
            "clock-before-issued-within-tolerance",
            "now is 30 minutes before iat: within the tolerance.",
            sign(claims(iat=seconds(NOW + timedelta(minutes=30)))),
            "VALID",
            expires_at=EXPIRES,
        ),
        vector(
            "clock-rollback-and-expired",
            "The rollback check comes before the expiry.",
            sign(claims(exp=seconds(expired_at))),
            "CLOCK_ROLLBACK",
            expires_at=expired_at,
            last_seen=NOW + timedelta(days=2),
        ),
        vector(
            "lease-valid",
            "A floating license's lease (lease.json), ten minutes left.",
            sign(lease_claims(lease_end)),
            "VALID",
            expires_at=lease_end,
            stored_in="lease.json",
        ),
        vector(
            "lease-lapsed",
            "The lease's exp passed a minute ago.",
            sign(lease_claims(NOW - timedelta(minutes=1))),
            "LEASE_EXPIRED",
            expires_at=NOW - timedelta(minutes=1),
            stored_in="lease.json",
        ),
        vector(
            "lease-borrowed",
            "A borrowed lease, three days left, checked offline.",
            sign(lease_claims(borrowed_end, borrowed=True)),
            "VALID",
            expires_at=borrowed_end,
            stored_in="lease.json",
        ),
        vector(
            "lease-unreachable",
            "A lease with the server down: valid until the lease's end, no grace period.",
            sign(lease_claims(lease_end)),
            "VALID",
            expires_at=lease_end,
            stored_in="lease.json",
            server="unreachable",
        ),
        vector(
            "grace-within",
            "Online validation, server down, last confirmed online 3 days ago (grace 7 days).",
            node_locked,
            "VALID",
            expires_at=EXPIRES,
            server="unreachable",
            last_online_ok=grace_ok,
            grace_until=grace_ok + GRACE,
        ),
        vector(
            "grace-expired",
            "Online validation, server down, last confirmed online 8 days ago.",
            node_locked,
            "GRACE_EXPIRED",
            expires_at=EXPIRES,
            server="unreachable",
            last_online_ok=grace_gone,
            grace_until=grace_gone + GRACE,
        ),
        vector(
            "grace-never-online",
            "Online validation, server down, never confirmed online: no grace at all.",
            node_locked,
            "GRACE_EXPIRED",
            expires_at=EXPIRES,
            server="unreachable",
        ),
        vector(
            "expired-unreachable",
            "Server down and the certificate expired: EXPIRED, not a grace verdict.",
            sign(claims(exp=seconds(expired_at))),
            "EXPIRED",
            expires_at=expired_at,
            server="unreachable",
            last_online_ok=grace_ok,
        ),
        vector(
            "activated-offline-unreachable",
            'The certificate\'s signed source claim is "offline": no grace period runs out.',
            sign(claims(source="offline", nonce="r3Q8pLm2Vx7Kd9Wt")),
            "VALID",
            expires_at=EXPIRES,
            server="unreachable",
            activated_offline=True,
        ),
    ]


def answer_claims(**changes: Any) -> dict[str, Any]:
    """A signed validation answer's claims about the valid-node-locked certificate, as
    licensing signs them at NOW; a change to None drops the claim."""
    values: dict[str, Any] = {
        "valid": True,
        "code": "VALID",
        "license_id": "L-7KQX-M2PD",
        "installation_id": INSTALLATION,
        "expires_at": iso(EXPIRES),
        "features": [],
        "iat": seconds(NOW),
        "exp": seconds(NOW) + ANSWER_SECONDS,
        "nonce": NONCE,
    }
    values.update(changes)
    return {name: value for name, value in values.items() if value is not None}


def answers() -> list[dict[str, Any]]:
    header = {"alg": "EdDSA", "kid": KID, "typ": ANSWER_TYP}
    valid = sign(answer_claims(), header=header)

    def answer(name: str, note: str, token: str, expect: str, **shown: Any) -> dict[str, Any]:
        return {
            "name": name,
            "note": note,
            "answer": token,
            "certificate_name": "valid-node-locked",
            "nonce": NONCE,
            "now": iso(NOW),
            "expect": expect,
            **shown,
        }

    perpetual = answer_claims()
    perpetual["expires_at"] = None  # present and null: the license has no end any more
    return [
        answer(
            "answer-valid",
            "The server's VALID answer to this request.",
            valid,
            "accepted",
            expires_at=iso(EXPIRES),
        ),
        answer(
            "answer-valid-perpetual",
            "VALID with expires_at null: the license was made perpetual since the certificate "
            "was issued, so the verdict has no expiry (not the certificate's old exp).",
            sign(perpetual, header=header),
            "accepted",
            expires_at=None,
        ),
        answer(
            "answer-deactivated",
            "A DEACTIVATED answer is accepted (and the kit answers DEACTIVATED).",
            sign(
                answer_claims(valid=False, code="DEACTIVATED", expires_at=None, features=[]),
                header=header,
            ),
            "accepted",
        ),
        answer(
            "answer-bad-signature",
            "BAD_SIGNATURE names no license or installation (the server could not read the "
            "certificate): accepted without them.",
            sign(
                answer_claims(
                    valid=False,
                    code="BAD_SIGNATURE",
                    license_id=None,
                    installation_id=None,
                    expires_at=None,
                ),
                header=header,
            ),
            "accepted",
        ),
        answer(
            "answer-iat-within-tolerance",
            "Issued 59 minutes before now (tolerance one hour).",
            sign(answer_claims(iat=seconds(NOW - timedelta(minutes=59))), header=header),
            "accepted",
        ),
        answer(
            "answer-wrong-nonce",
            "The answer to another request (a replay).",
            sign(answer_claims(nonce="an-older-request-nonce"), header=header),
            "rejected",
        ),
        answer(
            "answer-no-nonce",
            "An answer without nonce.",
            sign(answer_claims(nonce=None), header=header),
            "rejected",
        ),
        answer(
            "answer-stale",
            "Issued two hours before now.",
            sign(answer_claims(iat=seconds(NOW - timedelta(hours=2))), header=header),
            "rejected",
        ),
        answer(
            "answer-from-the-future",
            "Issued two hours after now.",
            sign(answer_claims(iat=seconds(NOW + timedelta(hours=2))), header=header),
            "rejected",
        ),
        answer(
            "answer-no-iat",
            "An answer without iat.",
            sign(answer_claims(iat=None), header=header),
            "rejected",
        ),
        answer(
            "answer-other-installation",
            "A genuine answer about another installation.",
            sign(answer_claims(installation_id="0" * 64), header=header),
            "rejected",
        ),
        answer(
            "answer-other-license",
            "A genuine answer about another license.",
            sign(answer_claims(license_id="L-0000-0000"), header=header),
            "rejected",
        ),
        answer(
            "answer-no-code",
            "An answer without code.",
            sign(answer_claims(code=None), header=header),
            "rejected",
        ),
        answer(
            "answer-tampered",
            "A DEACTIVATED answer edited to VALID after signing.",
            tamper_payload(
                sign(answer_claims(valid=False, code="DEACTIVATED"), header=header),
                valid=True,
                code="VALID",
            ),
            "rejected",
        ),
        answer(
            "answer-unknown-kid",
            "Signed by a key the JWKS does not hold.",
            sign(answer_claims(), STRANGER, {**header, "kid": "stranger-1"}),
            "rejected",
        ),
        answer(
            "answer-alg-none",
            'alg "none" over a genuine answer\'s payload and signature.',
            with_header(valid, {**header, "alg": "none"}),
            "rejected",
        ),
        answer(
            "certificate-as-answer",
            "The certificate itself (typ JWT, genuine signature) passed off as an answer.",
            sign(claims(nonce=NONCE, iat=seconds(NOW), valid=True, code="VALID")),
            "rejected",
        ),
    ]


def build() -> str:
    """The text of vectors.json."""
    public = KEY.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    document = {
        "description": "Test vectors for the License Portal client kits (Python reference, "
        "C library): certificates, the JWKS that verifies them, and the verdict a kit "
        "configured as each vector says must give (pinned JWKS, the defaults, the vector's "
        "product, installation ID and clock; the certificate in the data folder's stored_in "
        "file, state.json holding last_seen and last_online_ok). server none: validate "
        "offline; unreachable: validate online against a server URL where nobody answers. "
        "answers: the server's signed validation answer to a request with that nonce, about "
        "the named certificate; accepted means the kit gives the answer's verdict (online), "
        "rejected that it falls back to the certificate as if the server were down; "
        "expires_at, when an answer vector has it, is the verdict's expiry. "
        "Made by make_vectors.py; do not edit.",
        "jwks": {
            "keys": [
                {
                    "kty": "OKP",
                    "crv": "Ed25519",
                    "kid": KID,
                    "x": b64(public),
                    "alg": "EdDSA",
                    "use": "sig",
                }
            ]
        },
        "defaults": {
            "grace_period_seconds": int(GRACE.total_seconds()),
            "clock_tolerance_seconds": int(TOLERANCE.total_seconds()),
        },
        "installation": {
            "namespace": PRODUCT,
            "machine_identifier": MACHINE_IDENTIFIER,
            "installation_id": INSTALLATION,
        },
        "certificates": certificates(),
        "answers": answers(),
    }
    return json.dumps(document, indent=2) + "\n"


if __name__ == "__main__":
    OUTPUT.write_text(build(), encoding="utf-8")
