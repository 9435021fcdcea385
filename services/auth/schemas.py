"""RPC arguments of the auth service, validated on the way in."""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields, validate, validates_schema

from common.errors import ValidationFailed
from common.identifiers import user_id as canonical_user_id
from common.schemas import (
    CLIENT_ADDRESS_MAX,
    TOKEN_MAX,
    ClientAddress,
    StrictBoolean,
    StrictSchema,
    Text,
    text_arg,
)
from services.auth.domain import NOTICES, ROLES

LOGIN_MAX = 254
PASSWORD_MAX = 1024  # a bound on what we hash; the policy's own maximum is lower
QUERY_MAX = 200  # how much of a `find_companies` query is looked at
REQUEST_ID_MAX = 32  # `password_link`'s request IDs (ours are 32 hex digits)
USER_ID_MAX = 32  # a bound on what is looked up (ours are U-XXXX-XXXX)
NOTICE_MAX = 64


def _not_blank(value: str) -> bool:
    if not value.strip():
        raise ValidationError("Must not be blank.")
    return True


def _email(**kwargs: Any) -> fields.Email:
    return fields.Email(validate=validate.Length(max=254), **kwargs)


class CreateCompany(StrictSchema):
    name = Text(200, validate=_not_blank)
    contact_name = Text(200, validate=_not_blank)
    contact_email = _email(required=True)
    password = Text(PASSWORD_MAX, required=False, allow_none=True)


COMPANY_FIELDS = ("name", "contact_name", "contact_email")


class UpdateCompany(StrictSchema):
    """`update_company`'s payload: the fields to change, at least one."""

    name = Text(200, required=False, validate=_not_blank)
    contact_name = Text(200, required=False, validate=_not_blank)
    contact_email = _email(required=False)

    @validates_schema
    def _changes_something(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not data:
            raise ValidationError(f"Give at least one of: {', '.join(COMPANY_FIELDS)}.")


class InviteUser(StrictSchema):
    email = _email(required=True)
    name = Text(200, validate=_not_blank)
    role = fields.String(required=True, validate=validate.OneOf(ROLES))


class UpdateUser(StrictSchema):
    """`update_user`'s payload: the fields to change, at least one."""

    name = Text(200, required=False, validate=_not_blank)
    role = fields.String(required=False, validate=validate.OneOf(ROLES))

    @validates_schema
    def _changes_something(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not data:
            raise ValidationError("Give at least one of: name, role.")


class Preferences(StrictSchema):
    """Notices to turn on (true) or off (false); those not named stay as they are."""

    installation_activated = StrictBoolean(required=False)
    license_expiring = StrictBoolean(required=False)
    receipts = StrictBoolean(required=False)
    payment_failed = StrictBoolean(required=False)
    seats_exhausted = StrictBoolean(required=False)


class UpdatePreferences(StrictSchema):
    preferences = fields.Nested(Preferences, required=True)


class AcceptInvitation(StrictSchema):
    token = Text(TOKEN_MAX)
    password = Text(PASSWORD_MAX)


class Login(StrictSchema):
    login = Text(LOGIN_MAX)
    password = Text(PASSWORD_MAX)
    client_address = ClientAddress()


class ChangePassword(StrictSchema):
    current_password = Text(PASSWORD_MAX)
    new_password = Text(PASSWORD_MAX)
    client_address = ClientAddress()


class ResetRequest(StrictSchema):
    login = Text(LOGIN_MAX)
    client_address = ClientAddress()


class ResetConfirm(StrictSchema):
    token = Text(TOKEN_MAX)
    new_password = Text(PASSWORD_MAX)


def lookup_arg(value: Any, max_length: int) -> str:
    """A scalar argument that only looks something up (a token, a customer ID, a password to
    compare), or "" when `text_arg` refuses it (not a string, empty, too long, NUL).

    Never a validation error: the contract answers what names nothing in one way whatever
    its shape (`unauthenticated`, `company_not_found`, `False`), and "" names nothing.
    """
    try:
        return text_arg(value, "argument", max_length)
    except ValidationFailed:
        return ""


def address_arg(value: Any) -> str | None:
    """An optional client address argument, or None (unknown) when `lookup_arg` refuses it;
    never a validation error. What is not an IP address is unknown too: the use cases count
    failures under `common.throttle.address_key`, which says so."""
    return lookup_arg(value, CLIENT_ADDRESS_MAX) or None


def query_arg(value: Any) -> str:
    """`find_companies`' query: any value, as text, cut to QUERY_MAX ("" lists the first 50)."""
    return str(value)[:QUERY_MAX]


def user_id_arg(value: Any) -> str:
    """A user ID argument in canonical form, or "" (names nobody: `user_not_found`) when
    `lookup_arg` refuses it."""
    return canonical_user_id(lookup_arg(value, USER_ID_MAX))


def notice_arg(value: Any) -> str:
    """A notice name (`domain.NOTICES`), or a `validation_error` naming `notice`."""
    if value not in NOTICES:
        raise ValidationFailed(
            "Invalid value for: notice.",
            details={"fields": {"notice": [f"Use one of: {', '.join(NOTICES)}."]}},
        )
    return value
