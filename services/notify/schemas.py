"""Payload schemas: the events notify consumes, and the arguments of its RPC methods.

Event schemas EXCLUDE unknown fields: producers may add fields without breaking notify.
What they do check is what an email needs; a payload that fails them is parked.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from marshmallow import (
    EXCLUDE,
    Schema,
    ValidationError,
    fields,
    pre_load,
    validate,
    validates_schema,
)

from common.schemas import StrictSchema
from services.notify.exceptions import InvalidEvent

# Links must be web links: a `javascript:` URL must never become a button in an email.
_link = {"schemes": {"http", "https"}, "require_tld": False}


class Moment(fields.Field):
    """An ISO 8601 date-time (or date) as an aware UTC datetime; a missing zone means UTC."""

    default_error_messages = {"invalid": "Not a valid ISO 8601 date-time."}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        if not isinstance(value, str) or len(value) > 64:
            raise self.make_error("invalid")
        try:
            moment = datetime.fromisoformat(value)
        except ValueError as exc:
            raise self.make_error("invalid") from exc
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _no_nul(value: str) -> bool:
    # PostgreSQL refuses NUL in text: let it through and the insert fails on every redelivery
    if "\x00" in value:
        raise ValidationError("Must not contain NUL characters.")
    return True


_short = [validate.Length(max=64), _no_nul]


def _name(max_length: int = 200) -> fields.String:
    return fields.String(required=True, validate=[validate.Length(min=1, max=max_length), _no_nul])


def _optional(max_length: int) -> fields.String:
    return fields.String(
        load_default=None, allow_none=True, validate=[validate.Length(max=max_length), _no_nul]
    )


def _currency() -> fields.String:
    """An ISO 4217 code such as `EUR`: the email formats the amount by its decimals."""
    return fields.String(
        required=True, validate=validate.Regexp(r"^[A-Z]{3}$", error="Not an ISO 4217 code.")
    )


def _amount(**kwargs: Any) -> fields.Integer:
    """An amount in integer minor units (never a float: no email rounds money)."""
    return fields.Integer(strict=True, **kwargs)


def _present(facts: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in facts.items() if value is not None}


def _lift(data: Any, nested: str, keys: tuple[str, ...]) -> Any:
    """A copy of `data` with `keys` taken from its object `nested` where `data` lacks them:
    a producer may send the facts flat or inside an object, and the email needs them once."""
    if not isinstance(data, dict) or not isinstance(data.get(nested), dict):
        return data
    inner = data[nested]
    return {**{key: inner[key] for key in keys if key in inner}, **data}


class EventSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    event_id = fields.String(required=True, validate=[validate.Length(min=1, max=100), _no_nul])
    # part of the contract, but no email needs it: a producer that forgets it loses nothing
    occurred_at = Moment(load_default=None, allow_none=True)


class _Part(Schema):
    class Meta:
        unknown = EXCLUDE


class Company(_Part):
    customer_id = _name(32)
    name = _name()
    contact_name = _name()
    contact_email = fields.Email(required=True, validate=validate.Length(max=254))


class CompanyRef(_Part):
    """The company an event about one of its users names: no contact needed."""

    customer_id = _name(32)
    name = _name()


class User(_Part):
    """The user an auth event is about, and whom its email goes to."""

    user_id = _name(32)
    email = fields.Email(required=True, validate=validate.Length(max=254))
    name = fields.String(load_default="", validate=[validate.Length(max=200), _no_nul])
    # an unknown role still makes an email (its name as it came): a new role is no poison
    role = _name(32)


def _user(**kwargs: Any) -> fields.Nested:
    return fields.Nested(User, **kwargs)


def _actor() -> fields.String:
    """Who acted: a user's email, or `staff`."""
    return fields.String(
        load_default=None, allow_none=True, validate=[validate.Length(max=254), _no_nul]
    )


class Product(_Part):
    code = _name(64)
    name = _name()


class ProductRef(_Part):
    """A product as billing and licensing name it: its code, and its name when they know
    it; emails show the name, and the code only when there is no name."""

    code = _name(64)
    name = _optional(200)


class License(_Part):
    license_id = _name(64)
    product = fields.Nested(Product, required=True)
    seats = fields.Integer(required=True, strict=True, validate=validate.Range(min=0))
    expires_at = Moment(load_default=None, allow_none=True)  # None: perpetual
    status = _name(32)


class Installation(_Part):
    installation_id = _name(200)
    machine_name = _name(200)
    activated_at = Moment(required=True)


def _request_id() -> fields.String:
    """auth's password request: the link is asked of auth (`password_link`) at send time."""
    return fields.String(
        load_default=None, allow_none=True, validate=[validate.Length(min=1, max=32), _no_nul]
    )


def _legacy_link() -> fields.Url:
    # events published before issue 11 carried the link itself; those still in flight at
    # the upgrade are sent as they are
    return fields.Url(load_default=None, allow_none=True, **_link)


class CompanyCreated(EventSchema):
    company = fields.Nested(Company, required=True)
    request_id = _request_id()  # None: a password was given, no set-password link
    set_password_url = _legacy_link()
    expires_at = Moment(load_default=None, allow_none=True)


class CompanyInvited(EventSchema):
    """staff sent a company without a password a new set-password link (`resend_invite`)."""

    company = fields.Nested(Company, required=True)
    request_id = _name(32)
    expires_at = Moment(load_default=None, allow_none=True)


class PasswordResetRequested(EventSchema):
    company = fields.Nested(Company, required=True)
    # the user whose password it is (absent in events before team accounts: the contact)
    user = _user(load_default=None, allow_none=True)
    request_id = _request_id()
    reset_url = _legacy_link()
    expires_at = Moment(required=True)

    @validates_schema
    def _names_a_link(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not data.get("request_id") and not data.get("reset_url"):
            raise ValidationError("Missing data for required field.", "request_id")


class PasswordLink(Schema):
    """auth's `password_link` answer: the link (with a fresh token) and when it expires."""

    class Meta:
        unknown = EXCLUDE

    url = fields.Url(required=True, **_link)
    expires_at = Moment(required=True)


class PasswordChanged(EventSchema):
    company = fields.Nested(Company, required=True)
    user = _user(load_default=None, allow_none=True)  # absent before team accounts
    how = fields.String(required=True, validate=validate.OneOf(["change", "reset"]))
    changed_at = Moment(required=True)


class UserInvited(EventSchema):
    """An owner (or staff) invited a user; the accept link is asked of auth at send time."""

    company = fields.Nested(CompanyRef, required=True)
    user = _user(required=True)
    request_id = _name(32)
    expires_at = Moment(load_default=None, allow_none=True)
    invited_by = _actor()


class UserRoleChanged(EventSchema):
    company = fields.Nested(CompanyRef, required=True)
    user = _user(required=True)
    old_role = fields.String(load_default=None, allow_none=True, validate=_short)
    new_role = _name(32)
    changed_by = _actor()


class UserDisabled(EventSchema):
    company = fields.Nested(CompanyRef, required=True)
    user = _user(required=True)
    disabled_by = _actor()


class LicenseEvent(EventSchema):
    customer_id = _name(32)
    license = fields.Nested(License, required=True)


class LicenseIssued(LicenseEvent):
    pass


class LicenseExtended(LicenseEvent):
    previous_expires_at = Moment(load_default=None, allow_none=True)


class InstallationActivated(LicenseEvent):
    installation = fields.Nested(Installation, required=True)


class LicenseExpiring(LicenseEvent):
    days_left = fields.Integer(required=True, strict=True, validate=validate.Range(min=0))


class PaymentFacts(_Part):
    receipt_number = _name(32)
    amount = _amount(required=True)
    currency = _currency()
    # emails format the amount themselves (common.money, the one format); this is ignored
    amount_formatted = fields.String(load_default=None, allow_none=True, validate=_short)
    description = fields.String(load_default="", validate=[validate.Length(max=500), _no_nul])
    product = fields.Nested(ProductRef, load_default=None, allow_none=True)
    paid_at = Moment(required=True)
    # the period this receipt covers, as its receipt page shows it
    period_start = Moment(load_default=None, allow_none=True)
    period_end = Moment(load_default=None, allow_none=True)
    card_brand = fields.String(load_default=None, allow_none=True, validate=_short)
    card_last4 = fields.String(load_default=None, allow_none=True, validate=_short)


class PurchaseFacts(_Part):
    kind = fields.String(required=True, validate=validate.OneOf(["new", "renewal"]))
    product_code = fields.String(load_default=None, allow_none=True, validate=_short)
    seats = fields.Integer(load_default=None, allow_none=True, strict=True)
    period_start = Moment(load_default=None, allow_none=True)
    period_end = Moment(load_default=None, allow_none=True)
    license_id = fields.String(load_default=None, allow_none=True, validate=_short)


class RecurringFacts(_Part):
    id = _name(64)
    license_id = fields.String(load_default=None, allow_none=True, validate=_short)
    product = fields.Nested(ProductRef, required=True)
    amount = _amount(required=True)
    currency = _currency()
    amount_formatted = fields.String(load_default=None, allow_none=True, validate=_short)
    interval = _name(16)
    next_charge_at = Moment(load_default=None, allow_none=True)
    status = _name(32)
    card_brand = fields.String(load_default=None, allow_none=True, validate=_short)
    card_last4 = fields.String(load_default=None, allow_none=True, validate=_short)


class PaymentSucceeded(EventSchema):
    customer_id = _name(32)
    payment = fields.Nested(PaymentFacts, required=True)
    purchase = fields.Nested(PurchaseFacts, load_default=None, allow_none=True)


class OfflinePaymentRecorded(EventSchema):
    customer_id = _name(32)
    payment = fields.Nested(PaymentFacts, required=True)


class PaymentFailed(EventSchema):
    customer_id = _name(32)
    recurring_payment = fields.Nested(RecurringFacts, required=True)
    attempt = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))
    next_retry_at = Moment(load_default=None, allow_none=True)  # None: the last attempt
    reason = fields.String(load_default=None, allow_none=True, validate=_short)
    # the invoice that failed (absent: the recurring payment's amount)
    amount = _amount(load_default=None, allow_none=True)
    currency = fields.String(
        load_default=None, allow_none=True, validate=validate.Regexp(r"^[A-Z]{3}$")
    )

    @validates_schema
    def _amount_has_a_currency(self, data: dict[str, Any], **kwargs: Any) -> None:
        if (data.get("amount") is None) != (data.get("currency") is None):
            raise ValidationError("An amount needs its currency.", "currency")


class RecurringPaymentCancelled(EventSchema):
    customer_id = _name(32)
    recurring_payment = fields.Nested(RecurringFacts, required=True)
    cancelled_at = Moment(load_default=None, allow_none=True)


class RecurringPaymentResumed(EventSchema):
    customer_id = _name(32)
    recurring_payment = fields.Nested(RecurringFacts, required=True)
    resumed_at = Moment(load_default=None, allow_none=True)


class RecurringPaymentCardChanged(EventSchema):
    customer_id = _name(32)
    # with the new card's brand and last four digits
    recurring_payment = fields.Nested(RecurringFacts, required=True)
    previous_card_brand = fields.String(load_default=None, allow_none=True, validate=_short)
    previous_card_last4 = fields.String(load_default=None, allow_none=True, validate=_short)
    changed_at = Moment(load_default=None, allow_none=True)

    @pre_load
    def _card_beside(self, data: Any, **kwargs: Any) -> Any:
        # the new card may come beside the recurring payment instead of in it
        if not isinstance(data, dict) or not isinstance(data.get("recurring_payment"), dict):
            return data
        card = {key: data[key] for key in ("card_brand", "card_last4") if data.get(key)}
        return {**data, "recurring_payment": {**card, **_present(data["recurring_payment"])}}

    @validates_schema
    def _names_the_card(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not data["recurring_payment"].get("card_last4"):
            raise ValidationError("The new card is missing.", "recurring_payment")


class PaymentRefunded(EventSchema):
    """billing refunded a payment it could not deliver: the facts flat (or in `payment`)."""

    customer_id = _name(32)
    receipt_number = _name(32)
    amount = _amount(required=True, validate=validate.Range(min=0))
    currency = _currency()
    description = fields.String(load_default="", validate=[validate.Length(max=500), _no_nul])
    product = fields.Nested(ProductRef, load_default=None, allow_none=True)
    # why, as an error code (`product_archived`, `license_suspended`, …)
    reason = _optional(64)
    paid_at = Moment(load_default=None, allow_none=True)
    refunded_at = Moment(load_default=None, allow_none=True)
    card_brand = fields.String(load_default=None, allow_none=True, validate=_short)
    card_last4 = fields.String(load_default=None, allow_none=True, validate=_short)

    @pre_load
    def _flat(self, data: Any, **kwargs: Any) -> Any:
        keys = ("receipt_number", "amount", "currency", "description", "product", "paid_at")
        return _lift(data, "payment", (*keys, "card_brand", "card_last4"))


class PaymentDisputed(EventSchema):
    """The customer's bank disputes a payment (a chargeback): which receipt, how much, why
    (`reason`, the provider's code), and the license it paid for (suspended meanwhile)."""

    customer_id = _name(32)
    receipt_number = _name(32)
    license_id = _optional(64)
    amount = _amount(required=True, validate=validate.Range(min=0))
    currency = _currency()
    reason = _optional(64)
    # the product's name as billing knows it (loaded as `item`: templates know
    # `product_name` as the portal's); `product` when a producer sends it instead
    item = fields.String(
        data_key="product_name",
        load_default=None,
        allow_none=True,
        validate=[validate.Length(max=200), _no_nul],
    )
    product = fields.Nested(ProductRef, load_default=None, allow_none=True)


class PaymentDisputeClosed(PaymentDisputed):
    """The dispute is over: `won` (the payment stands, the license works again) or `lost`
    (the payment was reversed, the license stays suspended)."""

    status = fields.String(required=True, validate=validate.OneOf(["won", "lost"]))


class LicenseStatusEvent(EventSchema):
    """A license suspended or resumed: the facts flat (as licensing sends them) or in
    `license`; the whole license too, when it comes, for the facts table."""

    customer_id = _name(32)
    license_id = _name(64)
    product = fields.Nested(ProductRef, load_default=None, allow_none=True)
    license = fields.Nested(License, load_default=None, allow_none=True)

    @pre_load
    def _flat(self, data: Any, **kwargs: Any) -> Any:
        return _lift(data, "license", ("license_id", "product"))


class Feature(_Part):
    """A feature (module) of a product: `{code, name}`."""

    code = _name(64)
    name = _optional(200)


def _codes() -> fields.List:
    return fields.List(fields.String(validate=[validate.Length(min=1, max=64), _no_nul]))


class LicenseFeaturesChanged(EventSchema):
    """Staff (or a purchase) changed the features of a license: `features` are the ones it
    holds now; `added` / `removed` codes, named from `features` and, when licensing sends
    them, `added_features` / `removed_features` (a removed one is no longer in `features`)."""

    customer_id = _name(32)
    license_id = _name(64)
    product = fields.Nested(ProductRef, load_default=None, allow_none=True)
    features = fields.List(fields.Nested(Feature), load_default=list)
    added = _codes()
    removed = _codes()
    added_features = fields.List(fields.Nested(Feature), load_default=list)
    removed_features = fields.List(fields.Nested(Feature), load_default=list)
    # a user's email, `staff`, or licensing's actor `{type, email?}`: no email names it
    changed_by = fields.Raw(load_default=None, allow_none=True)

    @validates_schema
    def _changes_something(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not data.get("added") and not data.get("removed"):
            raise ValidationError("Neither added nor removed names a feature.", "added")


class SeatHolder(_Part):
    """A machine holding a seat of a floating license: its lease's end, and whether it
    is borrowed (held to that end, whatever its software does)."""

    machine_name = _name()
    expires_at = Moment(required=True)
    borrowed = fields.Boolean(load_default=False)


class SeatsExhausted(EventSchema):
    """A check-out of a floating license found every seat taken (licensing tells at most
    once a day per license): who holds them, until when."""

    customer_id = _name(32)
    license_id = _name(64)
    product = fields.Nested(ProductRef, load_default=None, allow_none=True)
    seats = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))
    machines = fields.List(fields.Nested(SeatHolder), load_default=list)
    at = Moment(load_default=None, allow_none=True)  # the refused check-out


class LicenseSuspended(LicenseStatusEvent):
    reason = _optional(500)  # staff's words, shown to the customer


class LicenseResumed(LicenseStatusEvent):
    pass


EVENT_SCHEMAS: dict[str, type[EventSchema]] = {
    "company_created": CompanyCreated,
    "password_reset_requested": PasswordResetRequested,
    "password_changed": PasswordChanged,
    "license_issued": LicenseIssued,
    "license_extended": LicenseExtended,
    "installation_activated": InstallationActivated,
    "license_expiring": LicenseExpiring,
    "payment_succeeded": PaymentSucceeded,
    "payment_failed": PaymentFailed,
    "recurring_payment_cancelled": RecurringPaymentCancelled,
    "offline_payment_recorded": OfflinePaymentRecorded,
    "company_invited": CompanyInvited,
    "license_suspended": LicenseSuspended,
    "license_resumed": LicenseResumed,
    "license_features_changed": LicenseFeaturesChanged,
    "seats_exhausted": SeatsExhausted,
    "payment_refunded": PaymentRefunded,
    "payment_disputed": PaymentDisputed,
    "payment_dispute_closed": PaymentDisputeClosed,
    "recurring_payment_resumed": RecurringPaymentResumed,
    "recurring_payment_card_changed": RecurringPaymentCardChanged,
    "user_invited": UserInvited,
    "user_role_changed": UserRoleChanged,
    "user_disabled": UserDisabled,
}


def load_event(kind: str, payload: Any) -> dict[str, Any]:
    """The validated event of type `kind`, or `InvalidEvent` saying what is wrong with it."""
    schema = EVENT_SCHEMAS.get(kind)
    if schema is None:
        raise InvalidEvent(f"No email is made for events of type {kind!r}.")
    if not isinstance(payload, dict):
        raise InvalidEvent(f"Expected an object, got {type(payload).__name__}.")
    try:
        return schema().load(payload)
    except ValidationError as exc:
        raise InvalidEvent(details={"fields": exc.messages}) from exc


class ListDeliveries(StrictSchema):
    limit = fields.Integer(load_default=50, strict=True, validate=validate.Range(min=1, max=500))
    recipient = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=254))


class NoticeRecipient(Schema):
    """One entry of auth's `notice_recipients` answer."""

    class Meta:
        unknown = EXCLUDE

    user_id = _name(32)
    email = fields.Email(required=True, validate=validate.Length(max=254))
    name = fields.String(
        load_default="", allow_none=True, validate=[validate.Length(max=200), _no_nul]
    )


class ListParked(StrictSchema):
    limit = fields.Integer(load_default=50, strict=True, validate=validate.Range(min=1, max=500))
