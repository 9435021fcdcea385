"""HTTP request and response bodies of the gateway; the OpenAPI document is built from these."""

from marshmallow import Schema, fields

from common.schemas import StrictSchema, Text

PASSWORD_MAX = 1024


class ErrorDetail(Schema):
    code = fields.String(required=True, metadata={"example": "validation_error"})
    message = fields.String(required=True)
    details = fields.Dict()


class Error(Schema):
    error = fields.Nested(ErrorDetail, required=True)


class Company(Schema):
    customer_id = fields.String(metadata={"example": "C4829113"})
    name = fields.String()
    contact_name = fields.String()
    contact_email = fields.String()


class LoginBody(StrictSchema):
    login = Text(254, metadata={"description": "customer ID or contact email (any case)"})
    password = Text(PASSWORD_MAX)


class SessionOut(Schema):
    token = fields.String(required=True)
    expires_at = fields.DateTime(required=True)
    company = fields.Nested(Company)


class ChangePasswordBody(StrictSchema):
    current_password = Text(PASSWORD_MAX)
    new_password = Text(PASSWORD_MAX)


class ResetRequestBody(StrictSchema):
    login = Text(254)


class ResetConfirmBody(StrictSchema):
    token = Text(200)
    new_password = Text(PASSWORD_MAX)


class Health(Schema):
    status = fields.String()
    services = fields.Dict(keys=fields.String(), values=fields.String())
