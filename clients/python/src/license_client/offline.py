"""The three files of offline activation, as plain functions: build them, parse them.

An air-gapped machine writes an **activation request**, someone carries it to the portal, the
portal answers with an **activation response**, which is carried back and installed; later the
machine deletes its certificate and writes a **deactivation proof** that frees the seat.
Each file is one JSON object in UTF-8, at most 16 KiB, with exactly the fields below (an
unknown field is refused, so nothing such as a signing key can ride along):

    {"type": "activation_request", "version": 1, "license_id": "L-7KQX-M2PD",
     "installation_id": "…", "machine_name": "CAD-WS-07", "product": "cadpro",
     "requested_at": "2026-12-02T10:00:00+00:00", "nonce": "…"}
    {"type": "activation_response", "version": 1, "license_id", "installation_id",
     "product", "nonce", "issued_at", "certificate": "<compact JWS>",
     "deactivation_secret": "<43 url-safe chars>"}
    {"type": "deactivation_proof", "version": 1, "license_id", "installation_id",
     "deactivated_at", "secret"}
"""

from __future__ import annotations

import json
import re
import secrets
from datetime import datetime, timezone
from typing import Any

from .errors import InvalidResponseFile
from .times import parse_time as parse_time  # the kit's one time parser, used from here

MAX_FILE_BYTES = 16 * 1024
VERSION = 1
REQUEST_TYPE = "activation_request"
RESPONSE_TYPE = "activation_response"
PROOF_TYPE = "deactivation_proof"
MAX_ID_LENGTH = 128
MAX_NAME_LENGTH = 200
_URLSAFE = re.compile(r"\A[A-Za-z0-9_-]+\Z")

RESPONSE_FIELDS = (
    "type",
    "version",
    "license_id",
    "installation_id",
    "product",
    "nonce",
    "issued_at",
    "certificate",
    "deactivation_secret",
)


def new_nonce() -> str:
    """A fresh request nonce: 32 url-safe characters (192 bits)."""
    return secrets.token_urlsafe(24)


def request_document(
    license_id: str,
    installation_id: str,
    machine_name: str,
    product: str,
    requested_at: datetime,
    nonce: str,
) -> dict[str, Any]:
    """The activation request's fields.

    >>> request_document("L-7KQX-M2PD", "inst-1", "CAD-WS-07", "cadpro",
    ...     datetime(2026, 12, 2, 10, tzinfo=timezone.utc), "n" * 32)["requested_at"]
    '2026-12-02T10:00:00+00:00'
    """
    return {
        "type": REQUEST_TYPE,
        "version": VERSION,
        "license_id": license_id,
        "installation_id": installation_id,
        "machine_name": machine_name,
        "product": product,
        "requested_at": iso(requested_at),
        "nonce": nonce,
    }


def proof_document(
    license_id: str, installation_id: str, deactivated_at: datetime, secret: str
) -> dict[str, Any]:
    """The deactivation proof's fields."""
    return {
        "type": PROOF_TYPE,
        "version": VERSION,
        "license_id": license_id,
        "installation_id": installation_id,
        "deactivated_at": iso(deactivated_at),
        "secret": secret,
    }


def dumps(document: dict[str, Any]) -> str:
    """A file's text: indented (people open these files to see what they carry), one newline."""
    return json.dumps(document, indent=2) + "\n"


def parse_response(text: str | bytes) -> dict[str, Any]:
    """The fields of an activation response, or `InvalidResponseFile` saying what is wrong.

    Only the shape is checked here; whether it answers this machine's request and whether its
    certificate verifies is the client's business.
    """
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else bytes(text)
    if len(data) > MAX_FILE_BYTES:
        raise _bad(f"The file is larger than {MAX_FILE_BYTES // 1024} KiB.")
    try:
        document = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise _bad("The file is not UTF-8 text.") from None
    except ValueError:
        raise _bad("The file is not JSON (is it complete? it may have been cut short).") from None
    if not isinstance(document, dict):
        raise _bad("The file is not a JSON object.")
    kind = document.get("type")
    if kind != RESPONSE_TYPE:
        hint = " (this is the request: take it to the portal)" if kind == REQUEST_TYPE else ""
        raise _bad(f"The file is not an activation response{hint}.", "type")
    version = document.get("version")
    if type(version) is not int or version != VERSION:
        raise _bad(f"Response version {version!r} is not supported (expected 1).", "version")
    for name in document:
        if name not in RESPONSE_FIELDS:
            raise _bad(f"The file has an unknown field {name!r}.", name)
    for name in RESPONSE_FIELDS[2:]:
        if name not in document:
            raise _bad(f"The field {name!r} is missing.", name)
        value = document[name]
        if not isinstance(value, str) or not value.strip():
            raise _bad(f"The field {name!r} is not a non-empty text.", name)
    for name in ("license_id", "installation_id", "product", "nonce"):
        if len(document[name]) > MAX_ID_LENGTH:
            raise _bad(f"The field {name!r} is longer than {MAX_ID_LENGTH} characters.", name)
    if parse_time(document["issued_at"]) is None:
        raise _bad("The field 'issued_at' is not a date and time with a time zone.", "issued_at")
    secret = document["deactivation_secret"]
    if len(secret) < 43 or len(secret) > MAX_ID_LENGTH or not _URLSAFE.match(secret):
        raise _bad(
            "The field 'deactivation_secret' is not 43+ url-safe characters.",
            "deactivation_secret",
        )
    return document


def iso(moment: datetime) -> str:
    """Whole seconds in UTC, `+00:00` (the server's format)."""
    return moment.astimezone(timezone.utc).replace(microsecond=0).isoformat()


def _bad(problem: str, field: str | None = None) -> InvalidResponseFile:
    details: dict[str, Any] = {"problem": problem}
    if field is not None:
        details["field"] = field
    return InvalidResponseFile(
        f"This is not a usable activation response: {problem} Use the response file the "
        "portal gave for this machine's request, copied whole.",
        details=details,
    )
