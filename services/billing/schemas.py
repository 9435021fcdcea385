"""RPC payloads of the billing service and the licensing events it reads, validated."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from common.schemas import StrictSchema, Text
from services.billing import domain

_code = validate.Regexp(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", error="Use letters, digits, - _ .")


def _currency(value: str) -> bool:
    if value not in domain.CURRENCIES:
        raise ValidationError("Not a supported ISO 4217 currency code (e.g. EUR, USD).")
    return True


class Currency(fields.String):
    """An ISO 4217 code; accepted in any case, stored upper-case."""

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> str:
        return super()._deserialize(value, attr, data, **kwargs).strip().upper()


def Money() -> fields.Integer:
    """An amount in minor units: an integer (never a float, never a string)."""
    return fields.Integer(
        required=True, strict=True, validate=validate.Range(min=1, max=domain.MAX_AMOUNT)
    )


class CreatePlan(StrictSchema):
    code = Text(64, validate=[_code])
    product_code = Text(64, validate=[_code])
    amount = Money()
    currency = Currency(required=True, validate=_currency)
    interval = fields.String(required=True, validate=validate.OneOf(domain.INTERVALS))
    active = fields.Boolean(load_default=True)


class CardIn(StrictSchema):
    number = Text(32)
    exp_month = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=12))
    exp_year = fields.Integer(
        required=True, strict=True, validate=validate.Range(min=2000, max=2100)
    )
    cvc = Text(4, min_length=3)


class Purchase(StrictSchema):
    plan = Text(64)
    seats = fields.Integer(
        required=True, strict=True, validate=validate.Range(min=1, max=domain.MAX_SEATS)
    )
    card = fields.Nested(CardIn, required=True)
    license_id = Text(64, required=False, load_default=None, allow_none=True)
    # the client's `Idempotency-Key` (the gateway passes the header on)
    request_key = Text(64, required=False, load_default=None, allow_none=True)


class RecordOffline(StrictSchema):
    customer_id = Text(32)
    amount = Money()
    currency = Currency(required=True, validate=_currency)
    description = Text(500)


class RunRenewals(StrictSchema):
    as_of = fields.AwareDateTime(load_default=None, allow_none=True, default_timezone=None)


class SeedDemo(StrictSchema):
    """`seed_demo_history`'s arguments: the demo company, its plan, 1 to 100 seats."""

    customer_id = Text(64)
    plan_code = Text(64)
    seats = fields.Integer(strict=True, validate=validate.Range(min=1, max=100))


class _EventPart(Schema):
    """Events grow fields over time: what billing does not read is ignored."""

    class Meta:
        unknown = EXCLUDE


class _EventLicense(_EventPart):
    license_id = Text(64)


class LicenseEvent(_EventPart):
    """licensing's `license_issued` / `license_extended`, of a license a payment paid for."""

    event_id = Text(100)
    customer_id = Text(32)
    receipt_number = Text(32)
    license = fields.Nested(_EventLicense, required=True)


def license_event(payload: Any) -> dict[str, Any] | None:
    """`{event_id, customer_id, receipt_number, license_id}` of a license event.

    None for an event that no payment caused (it names no `receipt_number`); a
    `ValidationError` for a malformed one.
    """
    if not isinstance(payload, dict):
        raise ValidationError("Expected a JSON object.")
    if payload.get("receipt_number") is None:
        return None
    event = LicenseEvent().load(payload)
    license = event.pop("license")
    return {**event, "license_id": license["license_id"]}
