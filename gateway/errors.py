"""One table from error code to HTTP status, and the JSON error envelope.

Every error the gateway answers is `{"error": {"code", "message", "details", "request_id"}}`.
Services raise `PortalError`s with a code (they know nothing of HTTP); this table is the
only place where a code becomes a status, and `tests/unit/gateway/test_error_table.py` fails
while any code that a service or the gateway raises is missing from it.
"""

from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Response

from common.context import current_request_id
from gateway.responses import json_response

STATUS_BY_CODE: dict[str, int] = {
    "bad_request": 400,
    "invalid_event": 400,
    "invalid_json": 400,
    "invalid_signature": 400,
    "invalid_token": 400,
    "invalid_credentials": 401,
    "invalid_lease_token": 401,
    "unauthenticated": 401,
    "authentication_failed": 402,
    "card_declined": 402,
    "insufficient_funds": 402,
    "csrf_failed": 403,
    "forbidden": 403,
    "license_expired": 403,
    "license_suspended": 403,
    "company_not_found": 404,
    "installation_not_found": 404,
    "lease_not_found": 404,
    "license_not_found": 404,
    "not_found": 404,
    "payment_not_found": 404,
    "plan_not_found": 404,
    "product_not_found": 404,
    "purchase_not_found": 404,
    "recurring_payment_not_found": 404,
    "user_not_found": 404,
    "method_not_allowed": 405,
    "request_timeout": 408,
    "conflict": 409,
    "contact_is_owner": 409,
    "email_taken": 409,
    "feature_exists": 409,
    "floating_license": 409,
    "invitation_not_pending": 409,
    "last_owner": 409,
    "no_seats_available": 409,
    "node_locked_license": 409,
    "password_already_set": 409,
    "plan_exists": 409,
    "product_archived": 409,
    "product_exists": 409,
    "recurring_payment_ended": 409,
    "wrong_product": 409,
    "lease_expired": 410,
    "payload_too_large": 413,
    "unsupported_media_type": 415,
    "borrow_not_allowed": 422,
    "card_not_accepted": 422,
    "expires_in_past": 422,
    "extension_shortens": 422,
    "idempotency_key_reused": 422,
    "invalid_proof": 422,
    "invalid_request": 422,
    "license_is_perpetual": 422,
    "unknown_feature": 422,
    "validation_error": 422,
    "weak_password": 422,
    "too_many_attempts": 429,
    "internal_error": 500,
    "payment_unconfirmed": 503,
    "service_unavailable": 503,
}


def status_for(code: str) -> int:
    """The status for `code`. A code from a newer service than this gateway still gets a
    sensible one: 404 for `*_not_found`, else 400."""
    if code in STATUS_BY_CODE:
        return STATUS_BY_CODE[code]
    if code.endswith("_not_found"):
        return 404
    return 400


def error_response(
    code: str, message: str, details: dict[str, Any] | None = None, status: int | None = None
) -> Response:
    """The error envelope with the status of `code` (or `status`) and a `Retry-After` when
    waiting helps: the throttle's own delay, or 5 seconds for an unavailable service. Within
    a request, the envelope also names its `request_id` (`gateway.request_ids`)."""
    status = status or status_for(code)
    headers = {}
    details = details or {}
    if code == "too_many_attempts" and details.get("retry_after"):
        headers["Retry-After"] = str(int(details["retry_after"]))
    elif status == 503:
        headers["Retry-After"] = "5"
    error: dict[str, Any] = {"code": code, "message": message, "details": details}
    request_id = current_request_id()
    if request_id is not None:
        error["request_id"] = request_id
    return json_response({"error": error}, status, headers)
