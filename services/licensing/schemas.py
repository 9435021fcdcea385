"""RPC payloads of the licensing service, validated on the way in (the gateway checks too)."""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Any

from marshmallow import fields, validate

from common.schemas import StrictSchema, Text
from services.licensing import domain

PASSWORD_MAX = 1024
LICENSE_ID_MAX = 64
SOURCE = validate.OneOf(domain.SOURCES)


class Expiry(fields.Field):
    """`YYYY-MM-DD` (valid through the end of that day, UTC) or an ISO 8601 date-time."""

    default_error_messages = {"invalid": "Use YYYY-MM-DD or an ISO 8601 date-time."}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        if not isinstance(value, str) or not 10 <= len(value) <= 40:
            raise self.make_error("invalid")
        try:
            if len(value) == 10:
                day = datetime.strptime(value, "%Y-%m-%d").date()
                return datetime.combine(day, time(23, 59, 59), tzinfo=UTC)
            moment = datetime.fromisoformat(value)
        except ValueError as exc:
            raise self.make_error("invalid") from exc
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class CreateProduct(StrictSchema):
    code = Text(
        64, validate=validate.Regexp(r"^[a-z0-9][a-z0-9._-]*$", error="Use a-z, 0-9, . _ -")
    )
    name = Text(200)


class IssueLicense(StrictSchema):
    customer_id = Text(32)
    product = Text(64)
    seats = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=100_000))
    expires_at = Expiry(load_default=None, allow_none=True)


class Extend(StrictSchema):
    expires_at = Expiry(required=True)


class Activate(StrictSchema):
    license_id = Text(LICENSE_ID_MAX)
    password = Text(PASSWORD_MAX)
    installation_id = Text(domain.INSTALLATION_ID_MAX)
    machine_name = Text(domain.MACHINE_NAME_MAX)


class Deactivate(StrictSchema):
    license_id = Text(LICENSE_ID_MAX)
    password = Text(PASSWORD_MAX)
    installation_id = Text(domain.INSTALLATION_ID_MAX)


class HistoryQuery(StrictSchema):
    limit = fields.Integer(
        load_default=domain.HISTORY_PAGE_DEFAULT,
        strict=True,
        validate=validate.Range(min=1, max=domain.HISTORY_PAGE_MAX),
    )
    before = fields.Integer(load_default=None, allow_none=True, strict=True)


class DeactivateInstallation(StrictSchema):
    installation_id = Text(domain.INSTALLATION_ID_MAX)
    source = fields.String(required=True, validate=SOURCE)
