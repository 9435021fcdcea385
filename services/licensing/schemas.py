"""RPC payloads of the licensing service, validated on the way in (the gateway checks too),
the events it consumes from billing (`payment_succeeded`, `payment_disputed`,
`payment_dispute_closed`), and the payloads of the events it publishes for staff's actions
and for payments it cannot apply.

Identifiers are loaded in their one canonical form (common/identifiers.py): customer and
license IDs upper case, product codes lower case, whatever the caller typed."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time
from typing import Any

from marshmallow import (
    EXCLUDE,
    Schema,
    ValidationError,
    fields,
    post_load,
    pre_load,
    validate,
    validates_schema,
)

from common import identifiers
from common.errors import validation_error
from common.schemas import (
    TOKEN_MAX,
    ClientAddress,
    Code,
    CustomerId,
    LicenseId,
    StrictBoolean,
    StrictSchema,
    Text,
    plain_text_problem,
)
from services.licensing import domain
from services.licensing.exceptions import NOT_APPLICABLE

PASSWORD_MAX = 1024
SOURCE = validate.OneOf(domain.SOURCES)


# C0 (CR, LF, tab, …), DEL and C1: a machine name goes into the text of emails and logs
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _no_nul(value: str) -> bool:
    if "\x00" in value:
        raise ValidationError("Must not contain NUL characters.")
    return True


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


def Flag() -> fields.Boolean:
    """An optional true/false, nothing else (`"no"` or `1` is an error, not a guess)."""
    return StrictBoolean(load_default=False)


# the stored columns are 32 characters: a longer ID names nothing here
ID_MAX = validate.Length(max=32)


class CreateProduct(StrictSchema):
    code = Code()  # `CAD-PRO` is stored as `cad-pro`
    name = Text(200)


def FeatureCodes() -> fields.List:
    """An optional list of feature codes (any case; stored lower case), at most 100."""
    return fields.List(Code(), load_default=list, validate=validate.Length(max=100))


class AddProductFeature(StrictSchema):
    code = Code()  # `Steel` is stored as `steel`
    name = Text(200)


class ChangeLicenseFeatures(StrictSchema):
    """Codes to grant and to withdraw; a code in both is withdrawn."""

    add = FeatureCodes()
    remove = FeatureCodes()


class ListProducts(StrictSchema):
    include_archived = Flag()


class LicenseQuery(StrictSchema):
    # true unless the caller says false: staff and the product's owner see the password
    reveal_password = StrictBoolean(load_default=True)


def LeaseSeconds(**kwargs: Any) -> fields.Integer:
    """A floating license's lease period, 60 s to 24 h (optional: 900)."""
    return fields.Integer(
        strict=True,
        validate=validate.Range(min=domain.LEASE_SECONDS_MIN, max=domain.LEASE_SECONDS_MAX),
        **kwargs,
    )


def MaxBorrowDays(**kwargs: Any) -> fields.Integer:
    """A floating license's longest borrowing, 0 (none) to 90 days (optional: 7)."""
    return fields.Integer(
        strict=True, validate=validate.Range(min=0, max=domain.MAX_BORROW_DAYS_MAX), **kwargs
    )


class IssueLicense(StrictSchema):
    customer_id = CustomerId(validate=ID_MAX)
    product = Code()
    seats = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=100_000))
    expires_at = Expiry(load_default=None, allow_none=True)
    features = FeatureCodes()
    # issue it even though its product is archived or its expiry already past
    force = Flag()
    model = fields.String(load_default=domain.NODE_LOCKED, validate=validate.OneOf(domain.MODELS))
    lease_seconds = LeaseSeconds(load_default=None, allow_none=True)
    max_borrow_days = MaxBorrowDays(load_default=None, allow_none=True)

    @validates_schema
    def _terms_of_floating_only(self, data: dict[str, Any], **kwargs: Any) -> None:
        # a node-locked license with a lease period is a mistake to name, not to ignore
        if data.get("model", domain.NODE_LOCKED) == domain.FLOATING:
            return
        given = [
            name for name in ("lease_seconds", "max_borrow_days") if data.get(name) is not None
        ]
        if given:
            raise ValidationError(
                {name: ["Only a floating license has this (model: floating)."] for name in given}
            )

    @post_load
    def _terms(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        terms = domain.lease_terms(data["model"], data["lease_seconds"], data["max_borrow_days"])
        return {
            **data,
            "model": terms.model,
            "lease_seconds": terms.lease_seconds,
            "max_borrow_days": terms.max_borrow_days,
        }


class Extend(StrictSchema):
    expires_at = Expiry(required=True)
    # move the expiry even to an earlier or past date, or give a perpetual license one
    force = Flag()


class Suspend(StrictSchema):
    reason = fields.String(
        load_default=None,
        allow_none=True,
        validate=[validate.Length(max=domain.SUSPENSION_REASON_MAX), _no_nul],
    )


# a note may run over lines (tab, LF and CR); every other control character is refused
_NOTE_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


class Label(fields.String):
    """A license's nickname or note: a string or null, trimmed (`domain.label`: empty is
    null), at most `max_length` characters once trimmed; a nickname is one line."""

    def __init__(self, max_length: int, multiline: bool = False, **kwargs: Any) -> None:
        super().__init__(allow_none=True, **kwargs)
        self.max_length = max_length
        self.control = _NOTE_CONTROL if multiline else _CONTROL

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str | None:
        text = domain.label(super()._deserialize(value, attr, data, **kwargs))
        if text is None:
            return None
        problem = plain_text_problem(text)
        if problem is not None:
            raise ValidationError(problem)
        if len(text) > self.max_length:
            raise ValidationError(f"At most {self.max_length} characters.")
        if self.control.search(text):
            raise ValidationError("Must not contain control characters.")
        return text


class LabelLicense(StrictSchema):
    """The company's labels of a license; a key left out stays as it is, null or "" clears it."""

    nickname = Label(domain.NICKNAME_MAX)
    note = Label(domain.NOTE_MAX, multiline=True)


class Activate(StrictSchema):
    license_id = Text(domain.LICENSE_ID_MAX)
    password = Text(PASSWORD_MAX)
    installation_id = Text(domain.INSTALLATION_ID_MAX, validate=_no_control_characters)
    machine_name = Text(domain.MACHINE_NAME_MAX, validate=_no_control_characters)
    # the product code the kit is configured with: another product's license is refused
    # before a seat is taken (`wrong_product`); absent or null: not checked
    product = Text(64, required=False, load_default=None, allow_none=True)
    client_address = ClientAddress()


class Checkout(StrictSchema):
    """A machine asks for a floating license's seat (credentials exactly as `Activate`)."""

    license_id = Text(domain.LICENSE_ID_MAX)
    password = Text(PASSWORD_MAX)
    installation_id = Text(domain.INSTALLATION_ID_MAX, validate=_no_control_characters)
    machine_name = Text(domain.MACHINE_NAME_MAX, validate=_no_control_characters)
    # a borrowed lease needs no heartbeat until then (a date: through the end of that day)
    borrow_until = Expiry(load_default=None, allow_none=True)
    product = Text(64, required=False, load_default=None, allow_none=True)
    client_address = ClientAddress()


class LeaseCredentials(StrictSchema):
    """A lease ID (any case) and its bearer token, as the product holds them."""

    lease_id = Text(64)
    lease_token = Text(TOKEN_MAX)

    @post_load
    def _canonical(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return {**data, "lease_id": data["lease_id"].strip().upper()}


class LeaseRef(StrictSchema):
    """A lease of a license, as the portal and staff name it."""

    lease_id = Text(64)

    @post_load
    def _canonical(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return {**data, "lease_id": data["lease_id"].strip().upper()}


class ListLeases(StrictSchema):
    include_ended = Flag()


class Deactivate(StrictSchema):
    license_id = Text(domain.LICENSE_ID_MAX)
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

    @post_load
    def _canonical(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return {**data, "receipt_number": identifiers.receipt_number(data["receipt_number"])}


class _Purchase(_EventPart):
    kind = fields.String(required=True, validate=validate.OneOf(["new", "renewal"]))
    # canonical, not held to the code pattern: a code that names no product is a payment
    # to refund (`product_not_found`), not a payload to park
    product_code = fields.String(required=True, validate=validate.Length(min=1, max=64))
    seats = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))
    period_end = fields.AwareDateTime(required=True, default_timezone=UTC)
    license_id = LicenseId(load_default=None, allow_none=True, required=False)
    # the plan's feature codes at purchase time (none from a billing older than features)
    features = fields.List(
        fields.String(validate=validate.Length(min=1, max=64)),
        load_default=list,
        validate=validate.Length(max=100),
    )
    # the plan's license model and lease terms (none from a billing older than floating
    # licenses: node-locked). A node-locked plan's terms are ignored, whatever they say
    model = fields.String(
        load_default=domain.NODE_LOCKED, allow_none=True, validate=validate.OneOf(domain.MODELS)
    )
    lease_seconds = LeaseSeconds(load_default=None, allow_none=True)
    max_borrow_days = MaxBorrowDays(load_default=None, allow_none=True)

    @post_load
    def _canonical(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        terms = domain.lease_terms(data["model"], data["lease_seconds"], data["max_borrow_days"])
        return {
            **data,
            "product_code": identifiers.code(data["product_code"]),
            "features": domain.feature_codes(data["features"]),
            "model": terms.model,
            "lease_seconds": terms.lease_seconds,
            "max_borrow_days": terms.max_borrow_days,
        }


class PaymentSucceeded(_EventPart):
    """billing's `payment_succeeded`: what licensing needs to issue or extend a license."""

    event_id = fields.String(required=True, validate=validate.Length(min=1, max=100))
    customer_id = CustomerId(validate=ID_MAX)
    payment = fields.Nested(_Payment, required=True)
    purchase = fields.Nested(_Purchase, required=True)


class PaymentDisputed(_EventPart):
    """billing's `payment_disputed`: the customer's bank disputes a payment (a chargeback);
    `license_id` the license it paid for, if any."""

    event_id = fields.String(required=True, validate=validate.Length(min=1, max=100))
    customer_id = CustomerId(validate=ID_MAX)
    receipt_number = fields.String(required=True, validate=validate.Length(min=1, max=32))
    license_id = LicenseId(load_default=None, allow_none=True, required=False)

    @post_load
    def _canonical(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return {**data, "receipt_number": identifiers.receipt_number(data["receipt_number"])}


class PaymentDisputeClosed(PaymentDisputed):
    """billing's `payment_dispute_closed`: the dispute was won (the payment stands) or lost."""

    status = fields.String(required=True, validate=validate.OneOf(domain.DISPUTE_OUTCOMES))


# --- events published (what their consumers may rely on; tests hold the payloads to them) --


class _Product(Schema):
    code = fields.String(required=True)
    name = fields.String(required=True)


class _Published(Schema):
    """An event payload as published: every field its consumers read, and the stamp."""

    class Meta:
        unknown = EXCLUDE

    event_id = fields.String(required=True)
    occurred_at = fields.AwareDateTime(required=True)


class LicenseSuspendedEvent(_Published):
    """`license_suspended`: notify emails the customer, with the reason when there is one."""

    license_id = fields.String(required=True)
    customer_id = fields.String(required=True)
    product = fields.Nested(_Product, required=True)
    reason = fields.String(required=True, allow_none=True)


class LicenseResumedEvent(_Published):
    """`license_resumed`: notify tells the customer that the license works again."""

    license_id = fields.String(required=True)
    customer_id = fields.String(required=True)
    product = fields.Nested(_Product, required=True)


class _Machine(Schema):
    machine_name = fields.String(required=True)
    expires_at = fields.AwareDateTime(required=True)
    borrowed = fields.Boolean(required=True)


class SeatsExhaustedEvent(_Published):
    """`seats_exhausted`: notify tells the company's owners that every seat of a floating
    license is in use (at most once a day per license), naming who holds them."""

    customer_id = fields.String(required=True)
    license_id = fields.String(required=True)
    product = fields.Nested(_Product, required=True)
    seats = fields.Integer(required=True)
    machines = fields.List(fields.Nested(_Machine), required=True)
    at = fields.AwareDateTime(required=True)


class LeaseRevokedEvent(_Published):
    """`lease_revoked`: a portal user or staff ended a lease (nobody needs to act on it)."""

    customer_id = fields.String(required=True)
    license_id = fields.String(required=True)
    lease_id = fields.String(required=True)
    installation_id = fields.String(required=True)
    machine_name = fields.String(required=True)
    revoked_by = fields.Dict(required=True)


class PaymentNotAppliedEvent(_Published):
    """`payment_not_applied`: billing refunds the payment (`reason` is an error code)."""

    receipt_number = fields.String(required=True)
    customer_id = fields.String(required=True)
    reason = fields.String(
        required=True,
        validate=validate.OneOf([error.code for error in NOT_APPLICABLE]),
    )
    message = fields.String(required=True)


# --- the gateway's read model (`validation_facts`, `mark_seen`) -----------------------------

MAX_SEEN = 1000  # installations per `mark_seen` call (the gateway sends fewer, every few seconds)
_ID_MAX = 200  # longer than any license or installation ID a certificate carries


def load_seen_pair(value: Any) -> tuple[str, str]:
    """`[license_id, installation_id]`, both non-empty strings of at most 200 characters;
    `validation_error` otherwise."""
    ok = (
        isinstance(value, list | tuple)
        and len(value) == 2
        and all(isinstance(part, str) and 0 < len(part) <= _ID_MAX for part in value)
    )
    if not ok:
        raise validation_error({"seen": ["Use [license_id, installation_id] strings."]})
    return value[0], value[1]


def load_seen(value: Any) -> list[tuple[str, str]]:
    """A list of at most MAX_SEEN `load_seen_pair`s, duplicates dropped (order kept)."""
    if not isinstance(value, list) or len(value) > MAX_SEEN:
        raise validation_error({"seen": [f"Use a list of at most {MAX_SEEN} pairs."]})
    return list(dict.fromkeys(load_seen_pair(pair) for pair in value))
