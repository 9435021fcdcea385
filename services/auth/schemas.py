"""RPC payloads of the auth service, validated on the way in."""

from marshmallow import fields, validate

from common.schemas import StrictSchema, Text

LOGIN_MAX = 254
PASSWORD_MAX = 1024  # a bound on what we hash; the policy's own maximum is lower


class CreateCompany(StrictSchema):
    name = Text(200)
    contact_name = Text(200)
    contact_email = fields.Email(required=True, validate=validate.Length(max=254))
    password = Text(PASSWORD_MAX, required=False, allow_none=True)


class Login(StrictSchema):
    login = Text(LOGIN_MAX)
    password = Text(PASSWORD_MAX)


class ChangePassword(StrictSchema):
    current_password = Text(PASSWORD_MAX)
    new_password = Text(PASSWORD_MAX)


class ResetRequest(StrictSchema):
    login = Text(LOGIN_MAX)


class ResetConfirm(StrictSchema):
    token = Text(200)
    new_password = Text(PASSWORD_MAX)
