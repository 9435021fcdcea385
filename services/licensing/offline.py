"""Offline activation's files as plain Python: the request the client kit writes, the response
licensing makes of it, and the deactivation proof the kit writes when it lets its seat go.

Every file is one JSON object of at most 16 KiB of UTF-8 text, with exactly the fields of its
`type` and `version` (an unknown field is refused, not ignored: a kit newer than this server
must not be half understood). A file that breaks a rule raises `FileProblem`, naming what is
wrong in words and the field when there is one; the use cases turn it into `invalid_request`
or `invalid_proof`.

The response carries a deactivation secret (256 bits, derived from the request under a
server-side key: crypto.OfflineSecrets); licensing keeps only its SHA-256, so a proof
carrying the secret can only come from the holder of that response.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from common import identifiers
from common.schemas import plain_text_problem
from services.licensing.domain import INSTALLATION_ID_MAX, LICENSE_ID_MAX, MACHINE_NAME_MAX

FILE_MAX_BYTES = 16 * 1024
VERSION = 1
REQUEST_TYPE, RESPONSE_TYPE, PROOF_TYPE = (
    "activation_request",
    "activation_response",
    "deactivation_proof",
)
PRODUCT_MAX = 64
NONCE_MIN, NONCE_MAX = 22, 128
TIME_MAX = 40
SECRET_LENGTH = 43  # 256 bits, URL-safe
# a field's name as errors echo it: a file's own key may be up to 16 KiB long
NAME_ECHO_MAX = 64

_URL_SAFE = re.compile(r"[A-Za-z0-9_-]+")
# C0 (CR, LF, tab, …), DEL and C1: a machine name goes into emails and logs
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")

REQUEST_FIELDS = (
    "type",
    "version",
    "license_id",
    "installation_id",
    "machine_name",
    "product",
    "requested_at",
    "nonce",
)
_NAMES = {REQUEST_TYPE: "an activation request", PROOF_TYPE: "a deactivation proof"}
PROOF_FIELDS = ("type", "version", "license_id", "installation_id", "deactivated_at", "secret")


class FileProblem(ValueError):
    """What is wrong with a file, in words, and the field it concerns (None: the whole file)."""

    def __init__(self, problem: str, field: str | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.field = field

    def details(self) -> dict[str, str]:
        """`{"problem", "field"?}`: the error's details."""
        details = {"problem": self.problem}
        if self.field is not None:
            details["field"] = self.field
        return details


@dataclass(frozen=True)
class ActivationRequest:
    license_id: str  # canonical (upper case)
    installation_id: str
    machine_name: str
    product: str  # canonical (lower case)
    requested_at: datetime
    nonce: str


@dataclass(frozen=True)
class DeactivationProof:
    license_id: str
    installation_id: str
    deactivated_at: datetime
    secret: str


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # a key given twice would mean whichever JSON parser reads it last: refused
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            name = key[:NAME_ECHO_MAX]
            raise FileProblem(f"The field {name} appears more than once.", name)
        seen[key] = value
    return seen


def _object(text: Any, kind: str, type_: str, fields: tuple[str, ...]) -> dict[str, Any]:
    """The file's JSON object, checked for size, type, version and exactly `fields`."""
    if not isinstance(text, str):
        raise FileProblem(f"The {kind} must be the text of the file.")
    if not text.strip():
        raise FileProblem(f"The {kind} is empty.")
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise FileProblem(f"The {kind} is not valid UTF-8 text.") from exc
    if size > FILE_MAX_BYTES:
        raise FileProblem(f"The {kind} is larger than 16 KiB ({size} bytes).")
    try:
        data = json.loads(text, object_pairs_hook=_refuse_duplicates)
    except FileProblem:
        raise
    except (ValueError, RecursionError) as exc:
        raise FileProblem(
            f"The {kind} is not valid JSON (truncated or damaged?): {exc}."[:300]
        ) from exc
    if not isinstance(data, dict):
        raise FileProblem(f"The {kind} must be one JSON object.")
    if data.get("type") != type_:
        raise FileProblem(f"This file is not {_NAMES[type_]}.", "type")
    version = data.get("version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise FileProblem("The version must be a whole number.", "version")
    if version != VERSION:
        raise FileProblem(f"Version {version} is not supported (only {VERSION}).", "version")
    for name in fields:
        if name not in data:
            raise FileProblem(f"The field {name} is missing.", name)
    for name in data:
        if name not in fields:
            name = str(name)[:NAME_ECHO_MAX]
            raise FileProblem(f"The field {name} is not expected here.", name)
    return data


def _text(data: dict[str, Any], name: str, max_length: int, control_ok: bool = False) -> str:
    """The text of field `name`; `control_ok` admits control characters other than NUL
    (an installation ID as the online API stores it). NUL and lone surrogates never pass:
    no database or UTF-8 encoder takes them."""
    value = data[name]
    if not isinstance(value, str):
        raise FileProblem(f"The field {name} must be text.", name)
    if not value.strip():
        raise FileProblem(f"The field {name} is empty.", name)
    if len(value) > max_length:
        raise FileProblem(f"The field {name} is longer than {max_length} characters.", name)
    reason = plain_text_problem(value)
    if reason is not None:
        # "Must not contain …" → "The field x must not contain …"
        raise FileProblem(f"The field {name} {reason[:1].lower()}{reason[1:]}", name)
    if not control_ok and _CONTROL.search(value):
        raise FileProblem(f"The field {name} contains control characters.", name)
    return value


def _time(data: dict[str, Any], name: str) -> datetime:
    value = _text(data, name, TIME_MAX)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise FileProblem(f"The field {name} is not an ISO 8601 date-time.", name) from exc
    if moment.tzinfo is None:
        raise FileProblem(f"The field {name} must name its time zone (e.g. +00:00).", name)
    return moment


def _url_safe(data: dict[str, Any], name: str, minimum: int, maximum: int) -> str:
    value = _text(data, name, maximum)
    if len(value) < minimum or not _URL_SAFE.fullmatch(value):
        size = f"exactly {minimum}" if minimum == maximum else f"{minimum} to {maximum}"
        raise FileProblem(f"The field {name} must be {size} URL-safe characters.", name)
    return value


def parse_request(text: Any) -> ActivationRequest:
    """An activation request file's text → its facts, or `FileProblem`.

    `parse_request('{"type": "activation_request", "version": 1, "license_id": "l-7kqx-m2pd",
    "installation_id": "0f3c…", "machine_name": "CAD-WS-07", "product": "CADPRO",
    "requested_at": "2026-12-02T10:00:00+00:00", "nonce": "…22+ url-safe…"}')` has
    `license_id` "L-7KQX-M2PD" and `product` "cadpro".
    """
    data = _object(text, "request", REQUEST_TYPE, REQUEST_FIELDS)
    return ActivationRequest(
        license_id=identifiers.license_id(_text(data, "license_id", LICENSE_ID_MAX)),
        installation_id=_text(data, "installation_id", INSTALLATION_ID_MAX),
        machine_name=_text(data, "machine_name", MACHINE_NAME_MAX),
        product=identifiers.code(_text(data, "product", PRODUCT_MAX)),
        requested_at=_time(data, "requested_at"),
        nonce=_url_safe(data, "nonce", NONCE_MIN, NONCE_MAX),
    )


def parse_proof(text: Any) -> DeactivationProof:
    """A deactivation proof file's text → its facts, or `FileProblem` (the secret is only
    checked for its shape here; whether it is the right one, `secret_matches`)."""
    data = _object(text, "proof", PROOF_TYPE, PROOF_FIELDS)
    return DeactivationProof(
        license_id=identifiers.license_id(_text(data, "license_id", LICENSE_ID_MAX)),
        installation_id=_text(data, "installation_id", INSTALLATION_ID_MAX, control_ok=True),
        deactivated_at=_time(data, "deactivated_at"),
        secret=_url_safe(data, "secret", SECRET_LENGTH, SECRET_LENGTH),
    )


def request_problem(
    request: ActivationRequest, license_id: str, product: str
) -> FileProblem | None:
    """Why a well-formed request does not belong to this license (None: it does)."""
    if request.license_id != license_id:
        return FileProblem(
            f"This request is for license {request.license_id}, not {license_id}.", "license_id"
        )
    if request.product != product:
        return FileProblem(
            f"This request is for product {request.product}, not {product}.", "product"
        )
    return None


def secret_hash(secret: str) -> str:
    """What licensing keeps of a secret: its SHA-256, in hex (64 characters)."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def secret_matches(stored_hash: str | None, secret: str) -> bool:
    """Constant-time: does `secret` hash to the stored hash (None: nothing to match)?"""
    if not stored_hash:
        return False
    return hmac.compare_digest(stored_hash.encode("ascii"), secret_hash(secret).encode("ascii"))


def response_text(
    *,
    license_id: str,
    installation_id: str,
    product: str,
    nonce: str,
    issued_at: str,
    certificate: str,
    secret: str,
) -> str:
    """The response file's text: the request's nonce, the certificate and the secret."""
    return json.dumps(
        {
            "type": RESPONSE_TYPE,
            "version": VERSION,
            "license_id": license_id,
            "installation_id": installation_id,
            "product": product,
            "nonce": nonce,
            "issued_at": issued_at,
            "certificate": certificate,
            "deactivation_secret": secret,
        },
        indent=2,
        ensure_ascii=False,
    )
