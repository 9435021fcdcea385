"""Schema helpers shared by every service and the gateway."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from common.errors import validation_error

CLIENT_ADDRESS_MAX = 45  # the longest IPv6 text form (with an embedded IPv4 address)
# The longest session or reset token anyone looks up (ours are 43 characters): the gateway
# answers a longer one `unauthenticated` without asking auth, and auth does the same.
TOKEN_MAX = 200


def load(schema: Schema, data: Any) -> dict[str, Any]:
    """Validate `data` with `schema`, raising a `ValidationFailed` that names the fields."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise validation_error({"_schema": ["Expected a JSON object."]})
    try:
        return schema.load(data)
    except ValidationError as exc:
        raise validation_error(exc.messages) from exc


# half of a UTF-16 surrogate pair alone (JSON's "\ud800" parses to one): no UTF-8 text holds it
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _plain_text(value: str) -> bool:
    if "\x00" in value:
        raise ValidationError("Must not contain NUL characters.")
    if _LONE_SURROGATE.search(value):
        raise ValidationError("Must be valid Unicode text (no lone surrogates).")
    return True


def Text(max_length: int, min_length: int = 1, **kwargs: Any) -> fields.String:
    """A required string field with length bounds, no NUL characters and no lone surrogates.

    `validate=` adds validators to these instead of replacing them.
    """
    validators = [validate.Length(min=min_length, max=max_length), _plain_text]
    extra = kwargs.pop("validate", None)
    if extra is not None:
        validators.extend(extra if isinstance(extra, (list, tuple)) else [extra])
    return fields.String(required=kwargs.pop("required", True), validate=validators, **kwargs)


class StrictSchema(Schema):
    """Unknown fields are an error, so typos in a client are found, not ignored."""

    class Meta:
        unknown = "raise"


def text_arg(value: Any, name: str, max_length: int = 64) -> str:
    """A plain string argument of an RPC method, or a `ValidationFailed` naming it.

    For the scalar arguments (IDs, receipt numbers) that do not come in a payload schema:
    1 to `max_length` characters, no NUL.
    """
    if not isinstance(value, str) or not 0 < len(value) <= max_length or "\x00" in value:
        raise validation_error({name: [f"Expected a string of 1 to {max_length} characters."]})
    return value


def optional_text_arg(value: Any, name: str, max_length: int = 64) -> str | None:
    """`text_arg`, or None when the argument is None (e.g. a staff call with no company)."""
    return None if value is None else text_arg(value, name, max_length)


def _ip_address(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError as exc:
        raise ValidationError("Expected an IPv4 or IPv6 address.") from exc
    return True


def ClientAddress() -> fields.String:
    """The caller's address as the gateway saw it, for throttling; absent or null: unknown."""
    return fields.String(
        load_default=None,
        allow_none=True,
        validate=[validate.Length(min=1, max=CLIENT_ADDRESS_MAX), _ip_address],
    )
