"""RPC payloads of the billing service and the licensing events it reads, validated."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema

from common import identifiers
from common.schemas import Code, CustomerId, LicenseId, StrictSchema, Text
from services.billing import domain


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
    code = Code()
    product_code = Code()
    amount = Money()
    currency = Currency(required=True, validate=_currency)
    interval = fields.String(required=True, validate=validate.OneOf(domain.INTERVALS))
    active = fields.Boolean(load_default=True)
    # codes of the product's features (licensing's `get_product`) the plan grants
    features = fields.List(Code(), load_default=list, validate=validate.Length(max=100))
    # how its licenses count seats (DESIGN §13); the numbers only for floating, where
    # `domain.license_terms` fills in licensing's defaults
    model = fields.String(load_default=domain.NODE_LOCKED, validate=validate.OneOf(domain.MODELS))
    lease_seconds = fields.Integer(
        strict=True,
        load_default=None,
        validate=validate.Range(min=domain.LEASE_SECONDS_MIN, max=domain.LEASE_SECONDS_MAX),
    )
    max_borrow_days = fields.Integer(
        strict=True, load_default=None, validate=validate.Range(min=0, max=domain.BORROW_DAYS_MAX)
    )

    @validates_schema
    def _numbers_only_when_floating(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("model") == domain.FLOATING:
            return
        for name in ("lease_seconds", "max_borrow_days"):
            if data.get(name) is not None:
                raise ValidationError("Only a floating plan has this (model floating).", name)


class CardIn(StrictSchema):
    number = Text(32)
    exp_month = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=12))
    exp_year = fields.Integer(
        required=True, strict=True, validate=validate.Range(min=2000, max=2100)
    )
    cvc = Text(4, min_length=3)


# a payment method Stripe.js made in the browser
PAYMENT_METHOD_PATTERN = r"^pm_[A-Za-z0-9_]{1,250}$"


def PaymentMethodId() -> fields.String:
    return fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.Regexp(PAYMENT_METHOD_PATTERN, error="Expected a payment method pm_…."),
    )


class _CardOrPaymentMethod(StrictSchema):
    """Exactly one of `card` (typed, for the sandbox) or `payment_method` (Stripe's)."""

    card = fields.Nested(CardIn, load_default=None, allow_none=True)
    payment_method = PaymentMethodId()

    @validates_schema
    def _exactly_one(self, data: dict[str, Any], **kwargs: Any) -> None:
        given = [name for name in ("card", "payment_method") if data.get(name) is not None]
        if not given:
            raise ValidationError("A card or a payment method is required.", "payment_method")
        if len(given) > 1:
            raise ValidationError("Give a card or a payment method, not both.", "payment_method")


class Purchase(_CardOrPaymentMethod):
    plan = Code()
    seats = fields.Integer(
        required=True, strict=True, validate=validate.Range(min=1, max=domain.MAX_SEATS)
    )
    license_id = LicenseId(required=False, load_default=None, allow_none=True)
    # the client's `Idempotency-Key` as older gateways pass it; else the request's own key
    request_key = Text(128, required=False, load_default=None, allow_none=True)


class ReplaceCard(_CardOrPaymentMethod):
    pass


class StripeWebhook(StrictSchema):
    """What the gateway hands over: the raw body as text and the `Stripe-Signature` header."""

    payload = fields.String(required=True, validate=validate.Length(max=262_144))
    signature = fields.String(load_default=None, allow_none=True)


class RecordOffline(StrictSchema):
    customer_id = CustomerId()
    amount = Money()
    currency = Currency(required=True, validate=_currency)
    description = Text(500)


class RunRenewals(StrictSchema):
    as_of = fields.AwareDateTime(load_default=None, allow_none=True, default_timezone=None)


class SeedDemo(StrictSchema):
    """`seed_demo_history`'s arguments: the demo company, its plan, 1 to 100 seats."""

    customer_id = CustomerId()
    plan_code = Code()
    seats = fields.Integer(strict=True, validate=validate.Range(min=1, max=100))


def _single_line(value: str) -> bool:
    if "\n" in value or "\r" in value:
        raise ValidationError("Must be one line.")
    return True


class BillingDetailsIn(StrictSchema):
    """What a company's receipts name as the buyer (`update_billing_details`)."""

    company_name = Text(domain.COMPANY_NAME_MAX, validate=[_single_line])
    address = Text(domain.ADDRESS_MAX)
    vat_id = Text(
        domain.VAT_ID_MAX,
        min_length=0,
        required=False,
        load_default=None,
        allow_none=True,
        validate=[_single_line],
    )


def _receipt_number(value: str) -> bool:
    if not 0 < len(value) <= 32:
        raise ValidationError("Expected a receipt number such as R-2026-000123.")
    return True


class Page(StrictSchema):
    """A page of payments: `limit` 1 to 200 (50), `before` the last receipt number seen."""

    limit = fields.Integer(
        strict=True,
        load_default=domain.PAGE_DEFAULT,
        validate=validate.Range(min=1, max=domain.PAGE_MAX),
    )
    before = fields.String(load_default=None, allow_none=True, validate=_receipt_number)


class StaffPage(Page):
    status = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.OneOf(("paid", "refunded", "disputed")),
    )
    customer_id = CustomerId(required=False, load_default=None, allow_none=True)


class _EventPart(Schema):
    """Events grow fields over time: what billing does not read is ignored."""

    class Meta:
        unknown = EXCLUDE


class _EventLicense(_EventPart):
    license_id = LicenseId()


class LicenseEvent(_EventPart):
    """licensing's `license_issued` / `license_extended`, of a license a payment paid for."""

    event_id = Text(100)
    customer_id = CustomerId()
    receipt_number = Text(32)
    license = fields.Nested(_EventLicense, required=True)


class PaymentNotApplied(_EventPart):
    """licensing's `payment_not_applied`: a paid payment it could not turn into a license."""

    event_id = Text(100)
    customer_id = CustomerId()
    receipt_number = Text(32)
    reason = Text(64)  # an error code: product_archived, license_suspended, …
    message = Text(2000, required=False, load_default=None, allow_none=True)


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
    receipt = identifiers.receipt_number(event["receipt_number"])
    return {**event, "receipt_number": receipt, "license_id": license["license_id"]}


def payment_not_applied(payload: Any) -> dict[str, Any]:
    """`{event_id, customer_id, receipt_number, reason, message}`; a `ValidationError` for a
    malformed payload."""
    if not isinstance(payload, dict):
        raise ValidationError("Expected a JSON object.")
    event = PaymentNotApplied().load(payload)
    return {**event, "receipt_number": identifiers.receipt_number(event["receipt_number"])}
