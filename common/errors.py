"""The one error contract that crosses the bus.

A service raises a `PortalError` subclass with a stable snake_case `code`; nameko serialises
its single argument into the reply, and `error_from_reply` turns it back into a
`PortalError` on the caller's side, whatever the subclass was. The gateway maps `code` to an
HTTP status in one table (`gateway/errors.py`).
"""

from __future__ import annotations

import json
from typing import Any

# nameko's `safe_for_serialization` turns every non-string scalar inside exception arguments
# into a string (42 → "42", None → "None", True → "True"), so the error crosses the bus as
# one JSON string, which it leaves alone: `{"portal_error": {"code", "message", "details"}}`.
WIRE_KEY = "portal_error"


class PortalError(Exception):
    """An expected failure with a code, a human message and optional details."""

    code = "error"
    message = "The request failed."

    def __init__(
        self,
        message: str | None = None,
        details: dict[str, Any] | None = None,
        code: str | None = None,
    ) -> None:
        self.code = code or self.code
        self.message = message or self.message
        self.details = details or {}
        super().__init__(json.dumps({WIRE_KEY: self.to_dict()}, default=str))

    def __str__(self) -> str:
        return self.message

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}


class ValidationFailed(PortalError):
    """Input did not match its schema; `details` maps field names to messages."""

    code = "validation_error"
    message = "The request has invalid fields."


class Forbidden(PortalError):
    """This caller may not make this call (e.g. a staff path asked by the gateway)."""

    code = "forbidden"
    message = "This call is not allowed to this caller."


class NotFound(PortalError):
    code = "not_found"
    message = "Not found."


class Conflict(PortalError):
    code = "conflict"
    message = "The request conflicts with the current state."


class ServiceUnavailable(PortalError):
    """The target service did not answer in time, or is not running at all."""

    code = "service_unavailable"
    message = "A service is unavailable; try again shortly."


class RemoteFailure(PortalError):
    """An unexpected error inside another service (a bug there, not bad input here)."""

    code = "internal_error"
    message = "An internal error occurred."


def error_from_reply(error: dict[str, Any]) -> PortalError:
    """Rebuild the exception a remote worker raised from nameko's serialised `error`."""
    args = error.get("exc_args") or []
    payload = _portal_payload(args[0]) if len(args) == 1 else None
    if payload is not None:
        return PortalError(
            code=str(payload["code"]),
            message=str(payload.get("message") or PortalError.message),
            details=payload.get("details") or {},
        )
    return RemoteFailure(details={"remote_type": str(error.get("exc_type"))})


def _portal_payload(arg: Any) -> dict[str, Any] | None:
    """The `{"code", "message", "details"}` a `PortalError` argument carries, else None."""
    if isinstance(arg, str) and arg.startswith("{"):
        try:
            wrapped = json.loads(arg)
        except ValueError:
            return None
        payload = wrapped.get(WIRE_KEY) if isinstance(wrapped, dict) else None
        return payload if isinstance(payload, dict) and "code" in payload else None
    return None


def validation_error(messages: dict[str, Any]) -> ValidationFailed:
    """A `ValidationFailed` from marshmallow's `{field: [messages]}`, naming the fields."""
    fields = ", ".join(sorted(str(name) for name in messages)) or "body"
    return ValidationFailed(f"Invalid value for: {fields}.", details={"fields": messages})
