"""One table from error code to HTTP status, and the JSON error envelope.

Every error the gateway answers is `{"error": {"code", "message", "details"}}`. Services raise
`PortalError`s with a code (they know nothing of HTTP); this table is the only place where a
code becomes a status.
"""

from __future__ import annotations

import json
from typing import Any

from werkzeug.wrappers import Response

STATUS_BY_CODE: dict[str, int] = {
    "bad_request": 400,
    "invalid_json": 400,
    "invalid_token": 400,
    "invalid_credentials": 401,
    "unauthenticated": 401,
    "card_declined": 402,
    "insufficient_funds": 402,
    "payment_failed": 402,
    "forbidden": 403,
    "csrf_failed": 403,
    "license_expired": 403,
    "license_suspended": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "conflict": 409,
    "email_taken": 409,
    "plan_exists": 409,
    "no_seats_available": 409,
    "payload_too_large": 413,
    "validation_error": 422,
    "weak_password": 422,
    "too_many_attempts": 429,
    "internal_error": 500,
    "payment_unconfirmed": 503,
    "service_unavailable": 503,
}

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def status_for(code: str) -> int:
    """The status for `code`; unknown `*_not_found` codes are 404, other unknown codes 400."""
    if code in STATUS_BY_CODE:
        return STATUS_BY_CODE[code]
    if code.endswith("_not_found"):
        return 404
    return 400


def json_response(
    payload: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    body = "" if payload is None else json.dumps(payload, ensure_ascii=False)
    response = Response(
        body, status=status, mimetype="application/json" if payload is not None else None
    )
    response.headers.update(SECURITY_HEADERS)
    if headers:
        response.headers.update(headers)
    return response


def error_response(
    code: str, message: str, details: dict[str, Any] | None = None, status: int | None = None
) -> Response:
    status = status or status_for(code)
    headers = {}
    details = details or {}
    if code == "too_many_attempts" and details.get("retry_after"):
        headers["Retry-After"] = str(int(details["retry_after"]))
    elif status == 503:
        headers["Retry-After"] = "5"
    return json_response(
        {"error": {"code": code, "message": message, "details": details}}, status, headers
    )
