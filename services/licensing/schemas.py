"""RPC payloads of the licensing service, validated on the way in (the gateway checks too),
and the `payment_succeeded` event it consumes from billing."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, pre_load, validate

from common.schemas import ClientAddress, StrictSchema, Text
from services.licensing import domain

PASSWORD_MAX = 1024
LICENSE_ID_MAX = 64
SOURCE = validate.OneOf(domain.SOURCES)


# C0 (CR, LF, tab, …), DEL and C1: a machine name goes into the text of emails and logs
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _no_control_characters(value: str) -> bool:
    if _CONTROL.search(value):
        raise ValidationError("Must not contain control characters (CR, LF, tab, …).")
    return True


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
    installation_id = Text(domain.INSTALLATION_ID_MAX, validate=_no_control_characters)
    machine_name = Text(domain.MACHINE_NAME_MAX, validate=_no_control_characters)
    client_address = ClientAddress()


class Deactivate(StrictSchema):
    license_id = Text(LICENSE_ID_MAX)
    password = Text(PASSWORD_MAX)
    # not refused here: an installation activated before control characters were refused
    # can still release its seat
    installation_id = Text(domain.INSTALLATION_ID_MAX)
    client_address = ClientAddress()


class ValidationNonce(StrictSchema):
    """`validate`'s optional nonce, echoed in the signed answer."""

    nonce = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.Regexp(
            r"^[\x20-\x7e]{1,64}\Z", error="Use 1 to 64 printable ASCII characters."
        ),
    )


class HistoryQuery(StrictSchema):
    limit = fields.Integer(
        load_default=domain.HISTORY_PAGE_DEFAULT,
        strict=True,
        validate=validate.Range(min=1, max=domain.HISTORY_PAGE_MAX),
    )
    before = fields.Integer(load_default=None, allow_none=True, strict=True)

    @pre_load
    def _cursor_from_text(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        # `next_before` is handed out as a string; a caller passes it back as it came
        before = data.get("before")
        if isinstance(before, str) and before.isdigit() and len(before) < 19:
            return {**data, "before": int(before)}
        return data


class DeactivateInstallation(StrictSchema):
    installation_id = Text(domain.INSTALLATION_ID_MAX)
    source = fields.String(required=True, validate=SOURCE)


# --- events consumed --------------------------------------------------------------------


class _EventPart(Schema):
    """Events may grow fields: what licensing does not use is ignored, not refused."""

    class Meta:
        unknown = EXCLUDE


class _Payment(_EventPart):
    receipt_number = fields.String(required=True, validate=validate.Length(min=1, max=32))


class _Purchase(_EventPart):
    kind = fields.String(required=True, validate=validate.OneOf(["new", "renewal"]))
    product_code = fields.String(required=True, validate=validate.Length(min=1, max=64))
    seats = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))
    period_end = fields.AwareDateTime(required=True, default_timezone=UTC)
    license_id = fields.String(load_default=None, allow_none=True)


class PaymentSucceeded(_EventPart):
    """billing's `payment_succeeded`: what licensing needs to issue or extend a license."""

    event_id = fields.String(required=True, validate=validate.Length(min=1, max=100))
    customer_id = fields.String(required=True, validate=validate.Length(min=1, max=32))
    payment = fields.Nested(_Payment, required=True)
    purchase = fields.Nested(_Purchase, required=True)
