"""Schema helpers shared by every service and the gateway."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from common import identifiers
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


def plain_text_problem(value: str) -> str | None:
    """Why `value` is not text every database and UTF-8 encoder takes (a NUL character, a
    lone surrogate), or None when it is: `"CAD-WS-07"` → None."""
    if "\x00" in value:
        return "Must not contain NUL characters."
    if _LONE_SURROGATE.search(value):
        return "Must be valid Unicode text (no lone surrogates)."
    return None


def _plain_text(value: str) -> bool:
    problem = plain_text_problem(value)
    if problem is not None:
        raise ValidationError(problem)
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


class StrictBoolean(fields.Boolean):
    """JSON `true` or `false` only: "yes", 1 or null are a 422, not a guess."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


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


# --- identifiers, in their one canonical form (common/identifiers.py) ----------------------

CODE_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
CODE_RULE = "Use letters, digits, . _ - (any case; stored in lower case), at most 64."
# IDs we hand out are letters, digits and dashes (`C0559442`, `L-EDPQ-YVV2`): an email or a
# name is refused here, so it can never be stored as somebody's ID
ID_PATTERN = re.compile(r"^[A-Z0-9][A-Z0-9._-]{0,63}$")
ID_RULE = "Expected an ID such as C0559442 or L-EDPQ-YVV2 (letters, digits, -)."


def _canonical_arg(canonical: Callable[[str], str], value: Any, name: str, max_length: int) -> str:
    value = canonical(text_arg(value, name, max_length))
    if not value:
        raise validation_error({name: ["Must not be blank."]})
    return value


def _id_arg(canonical: Callable[[str], str], value: Any, name: str) -> str:
    value = _canonical_arg(canonical, value, name, 64)
    if not ID_PATTERN.match(value):
        raise validation_error({name: [ID_RULE]})
    return value


def customer_id_arg(value: Any, name: str = "customer_id") -> str:
    """A customer ID argument in canonical form (`" c0559442"` → `"C0559442"`)."""
    return _id_arg(identifiers.customer_id, value, name)


def optional_customer_id_arg(value: Any, name: str = "customer_id") -> str | None:
    """`customer_id_arg`, or None (a staff call that names no company)."""
    return None if value is None else customer_id_arg(value, name)


def license_id_arg(value: Any, name: str = "license_id") -> str:
    """A license ID argument in canonical form (`"l-edpq-yvv2"` → `"L-EDPQ-YVV2"`)."""
    return _id_arg(identifiers.license_id, value, name)


def receipt_number_arg(value: Any, name: str = "receipt_number") -> str:
    """A receipt number argument in canonical form (upper case)."""
    return _id_arg(identifiers.receipt_number, value, name)


def code_arg(value: Any, name: str = "code") -> str:
    """A product or plan code argument in canonical form (`"CAD-PRO"` → `"cad-pro"`)."""
    value = _canonical_arg(identifiers.code, value, name, 64)
    if not CODE_PATTERN.match(value):
        raise validation_error({name: [CODE_RULE]})
    return value


class _Canonical(fields.String):
    """A string field stored in canonical form: canonicalised on load, then validated."""

    canonical: Callable[[str], str] = staticmethod(lambda value: value)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        return type(self).canonical(text)


class _CustomerIdField(_Canonical):
    canonical = staticmethod(identifiers.customer_id)


class _LicenseIdField(_Canonical):
    canonical = staticmethod(identifiers.license_id)


class _CodeField(_Canonical):
    canonical = staticmethod(identifiers.code)


def _not_blank(value: str) -> bool:
    if not value:
        raise ValidationError("Must not be blank.")
    return True


_ID_RULE = validate.Regexp(ID_PATTERN, error=ID_RULE)


def _canonical_field(cls: type[_Canonical], extra: list, **kwargs: Any) -> fields.String:
    validators = [validate.Length(max=64), _not_blank, _plain_text, *extra]
    more = kwargs.pop("validate", None)
    if more is not None:
        validators.extend(more if isinstance(more, (list, tuple)) else [more])
    return cls(required=kwargs.pop("required", True), validate=validators, **kwargs)


def CustomerId(**kwargs: Any) -> fields.String:
    """A customer ID in any case, with spaces around: loaded as `C0559442`."""
    return _canonical_field(_CustomerIdField, [_ID_RULE], **kwargs)


def LicenseId(**kwargs: Any) -> fields.String:
    """A license ID in any case, with spaces around: loaded as `L-EDPQ-YVV2`."""
    return _canonical_field(_LicenseIdField, [_ID_RULE], **kwargs)


def Code(**kwargs: Any) -> fields.String:
    """A product or plan code in any case: `CAD-PRO` is loaded (and stored) as `cad-pro`."""
    rule = validate.Regexp(CODE_PATTERN, error=CODE_RULE)
    return _canonical_field(_CodeField, [rule], **kwargs)


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
