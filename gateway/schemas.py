"""HTTP request and response bodies of the gateway; the OpenAPI document is built from these.

Request bodies are `StrictSchema`s (unknown fields are an error). Response bodies are `Out`
schemas: the route machinery dumps every JSON result through the route's `response=`, so
these field lists are exactly the keys a client gets, no more, no fewer.
"""

import re
from collections.abc import Mapping
from datetime import date
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from common.audit import ACTIONS, CURSOR_MAX, PAGE_DEFAULT, PAGE_MAX
from common.schemas import (
    TOKEN_MAX,
    Code,
    LicenseId,
    StrictBoolean,
    StrictSchema,
    Text,
)
from gateway.roles import ROLES

PASSWORD_MAX = 1024
EMAIL_MAX = 254
USER_NAME_MAX = 200


class Out(Schema):
    """A response body: every declared field is answered, null when the service left it out."""

    def get_attribute(self, obj: Any, attr: str, default: Any) -> Any:
        if isinstance(obj, Mapping):
            return obj.get(attr)
        return super().get_attribute(obj, attr, default)


class Timestamp(fields.DateTime):
    """An ISO 8601 time as the services send it: answered unchanged, documented as date-time."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        if isinstance(value, str):
            return value
        return super()._serialize(value, attr, obj, **kwargs)


class Day(fields.Date):
    """An ISO 8601 date as the services send it: answered unchanged, documented as date."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        if isinstance(value, str):
            return value
        return super()._serialize(value, attr, obj, **kwargs)


class ErrorDetail(Schema):
    code = fields.String(required=True, metadata={"example": "validation_error"})
    message = fields.String(required=True)
    details = fields.Dict()
    # the request's `X-Request-ID`: what finds its log lines in every process
    request_id = fields.String(metadata={"example": "4f0c2a9d8b7e4c1a9e3f5b6d7c8a9b0e"})


class Error(Schema):
    error = fields.Nested(ErrorDetail, required=True)


class Company(Out):
    customer_id = fields.String(metadata={"example": "C4829113"})
    name = fields.String()
    contact_name = fields.String()
    contact_email = fields.String()


class UserRef(Out):
    """Who the session's user is (`user` of the session answers and of the account)."""

    user_id = fields.String(metadata={"example": "U-7KQX-M2PD"})
    email = fields.String(metadata={"example": "grace@acme.test"})
    name = fields.String()
    role = fields.String(metadata={"description": "owner | license_admin | billing | viewer"})


class Account(Company):
    user = fields.Nested(UserRef, allow_none=True)


class LoginBody(StrictSchema):
    login = Text(
        254,
        metadata={"description": "customer ID (the contact's login) or a user's email (any case)"},
    )
    password = Text(PASSWORD_MAX)


class SessionOut(Out):
    token = fields.String(required=True)
    expires_at = Timestamp(required=True)
    company = fields.Nested(Company)
    user = fields.Nested(UserRef, allow_none=True)


class ChangePasswordBody(StrictSchema):
    current_password = Text(PASSWORD_MAX)
    new_password = Text(PASSWORD_MAX)


class ResetRequestBody(StrictSchema):
    login = Text(254)


class ResetConfirmBody(StrictSchema):
    token = Text(TOKEN_MAX)
    new_password = Text(PASSWORD_MAX)


class TokenCheckBody(StrictSchema):
    token = Text(TOKEN_MAX, metadata={"description": "from the link's #token="})


class TokenCheckOut(Out):
    """A reset or invitation link that still works, and what it is for."""

    valid = fields.Boolean(metadata={"example": True})
    purpose = fields.String(
        metadata={
            "description": "reset (a reset link) | setup (a new company's welcome link) | "
            "invite (a user's invitation)"
        }
    )
    email = fields.String(metadata={"example": "ada@acme.test"})
    company_name = fields.String(metadata={"example": "Acme Engineering"})


class Health(Out):
    status = fields.String()
    services = fields.Dict(keys=fields.String(), values=fields.String())


# --- billing (B1-B3) --------------------------------------------------------------------------


class CardBody(StrictSchema):
    number = Text(32, metadata={"example": "4242424242424242"})
    exp_month = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=12))
    exp_year = fields.Integer(
        required=True, strict=True, validate=validate.Range(min=2000, max=2100)
    )
    cvc = Text(4, min_length=3, metadata={"example": "123"})


# a Stripe PaymentMethod ID, as Stripe.js creates it in the browser (`pm_1Q…`)
PAYMENT_METHOD = validate.Regexp(
    r"^pm_[A-Za-z0-9_]{1,250}\Z", error="Expected a payment method ID such as pm_1Q2w3E4r."
)


class PaymentMeansBody(StrictSchema):
    """How a body pays: exactly one of `card` (the sandbox takes card numbers) or
    `payment_method` (Stripe: the ID Stripe.js made of the card in the browser; the card
    number never reaches us). Which one the provider takes is billing's to say (422
    `card_not_accepted` for a card where Stripe is the provider)."""

    card = fields.Nested(
        CardBody,
        metadata={"description": "the card itself (the sandbox); not with `payment_method`"},
    )
    payment_method = fields.String(
        validate=PAYMENT_METHOD,
        metadata={
            "description": "a Stripe PaymentMethod ID from Stripe.js `createPaymentMethod` "
            "(when the catalog's `payment.provider` is `stripe`); not with `card`",
            "example": "pm_1Q2w3E4r5T6y7U8i",
        },
    )

    exactly_one_of = ("card", "payment_method")  # the OpenAPI document's `oneOf`

    @validates_schema
    def _one_means(self, data: dict[str, Any], **kwargs: Any) -> None:
        given = [name for name in self.exactly_one_of if data.get(name) is not None]
        if not given:
            raise ValidationError("Send `card` or `payment_method`.", "payment_method")
        if len(given) > 1:
            message = "Send `card` or `payment_method`, not both."
            raise ValidationError({"card": [message], "payment_method": [message]})


class PurchaseBody(PaymentMeansBody):
    plan = Code(metadata={"example": "cadpro-yearly", "description": "any case"})
    seats = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=10_000))
    license_id = LicenseId(
        required=False,
        allow_none=True,
        metadata={"description": "renew this license instead of buying a new one (any case)"},
    )


class CardChangeBody(PaymentMeansBody):
    pass


ONE_LINE = validate.Regexp(r"^[^\r\n]*\Z", error="Must be one line.")
# a name or an address is never blank: it has a character the services' trimming keeps
# (Python's white space also holds \x1c-\x1f and \x85, which ECMA's `\s` in the document lacks)
_NOT_SPACE = r"[^\s\x1c-\x1f\x85]"
NAME_LINE = validate.Regexp(
    rf"^[^\r\n]*{_NOT_SPACE}[^\r\n]*\Z", error="Must be one line, not blank."
)
NOT_BLANK = validate.Regexp(rf"^[\s\S]*{_NOT_SPACE}[\s\S]*\Z", error="Must not be blank.")


class BillingDetailsBody(StrictSchema):
    company_name = Text(200, validate=NAME_LINE, metadata={"example": "Acme Engineering GmbH"})
    address = Text(
        500,
        validate=NOT_BLANK,
        metadata={
            "description": "postal address, lines separated by line breaks",
            "example": "Hauptstraße 1\n10115 Berlin\nGermany",
        },
    )
    vat_id = Text(
        32,
        min_length=0,
        required=False,
        allow_none=True,
        validate=ONE_LINE,
        metadata={"description": "optional: null or empty for none", "example": "DE123456789"},
    )


class BillingDetailsOut(Out):
    company_name = fields.String(allow_none=True)
    address = fields.String(allow_none=True)
    vat_id = fields.String(allow_none=True)


class ProductRef(Out):
    code = fields.String()
    name = fields.String(allow_none=True)


class PaymentOut(Out):
    receipt_number = fields.String(metadata={"example": "R-2026-000123"})
    paid_at = Timestamp()
    amount = fields.Integer(metadata={"description": "minor units, e.g. cents"})
    currency = fields.String(metadata={"example": "EUR"})
    amount_formatted = fields.String(metadata={"example": "€1,234.50"})
    description = fields.String()
    status = fields.String(
        metadata={"description": "paid | refunded | disputed (a chargeback still open or lost)"}
    )
    refunded_at = Timestamp(allow_none=True)
    refund_reason = fields.String(
        allow_none=True,
        metadata={
            "description": "why it was refunded (null unless refunded): an error code of "
            "licensing, or refunded_by_provider (a refund made in the provider's dashboard)"
        },
    )
    refunded_amount = fields.Integer(
        allow_none=True,
        metadata={"description": "minor units refunded of a payment that stays paid (partial)"},
    )
    dispute_status = fields.String(
        allow_none=True,
        metadata={"description": "needs_response | won | lost; null unless ever disputed"},
    )
    disputed_at = Timestamp(allow_none=True)
    license_id = fields.String(allow_none=True)
    plan = fields.String(allow_none=True)
    product = fields.Nested(ProductRef, allow_none=True)
    seats = fields.Integer(allow_none=True)
    period_start = Timestamp(allow_none=True)
    period_end = Timestamp(allow_none=True)
    card_brand = fields.String(allow_none=True)
    card_last4 = fields.String(allow_none=True)


class PaymentList(Out):
    payments = fields.List(fields.Nested(PaymentOut))
    next_before = fields.String(
        allow_none=True,
        metadata={"description": "pass as `before` for the next, older page; null on the last"},
    )


class PaymentsQuery(StrictSchema):
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))
    before = Text(
        64,
        required=False,
        load_default=None,
        metadata={"description": "a receipt number: the page after it"},
    )


class RecurringPaymentOut(Out):
    id = fields.String(metadata={"example": "rp_4f1c2a9b0d7e6c5b4a39"})
    license_id = fields.String(allow_none=True)
    product = fields.Nested(ProductRef)
    plan = fields.String()
    seats = fields.Integer()
    amount = fields.Integer(metadata={"description": "minor units"})
    currency = fields.String()
    amount_formatted = fields.String(metadata={"example": "€1,470.00"})
    interval = fields.String(metadata={"example": "year"})
    next_charge_at = Timestamp()
    status = fields.String(metadata={"description": "active | past_due | cancelled"})
    cancelled_by = fields.String(
        allow_none=True,
        metadata={
            "description": "null unless cancelled: customer (resumable while `next_charge_at` "
            "is ahead), staff, refund or duplicate"
        },
    )
    card_brand = fields.String(allow_none=True)
    card_last4 = fields.String(allow_none=True)


class RecurringPaymentList(Out):
    recurring_payments = fields.List(fields.Nested(RecurringPaymentOut))


class FeatureOut(Out):
    """A feature (module) of a product that a license or a plan holds."""

    code = fields.String(metadata={"example": "steel"})
    name = fields.String(metadata={"example": "Steel design"})


class PlanOut(Out):
    code = fields.String()
    amount = fields.Integer(metadata={"description": "per seat and interval, minor units"})
    currency = fields.String()
    price = fields.String(metadata={"example": "€490.00"})
    interval = fields.String()
    features = fields.List(
        fields.Nested(FeatureOut),
        metadata={"description": "the features a license bought with this plan holds"},
    )
    model = fields.String(metadata={"description": "node_locked or floating"})
    lease_seconds = fields.Integer(
        allow_none=True, metadata={"description": "floating: the lease period, seconds"}
    )
    max_borrow_days = fields.Integer(
        allow_none=True, metadata={"description": "floating: the longest borrowing; 0: none"}
    )


class CatalogProduct(Out):
    code = fields.String()
    name = fields.String()
    plans = fields.List(fields.Nested(PlanOut))


class PaymentProviderOut(Out):
    """How the portal takes cards: `{provider: "sandbox"}`, or `{provider: "stripe",
    publishable_key, js_url}` (load Stripe.js from `js_url`, make a PaymentMethod with the
    publishable key, send its ID as `payment_method`)."""

    provider = fields.String(metadata={"description": "sandbox | stripe", "example": "stripe"})
    publishable_key = fields.String(
        allow_none=True, metadata={"description": "stripe only", "example": "pk_live_51H…"}
    )
    js_url = fields.String(
        allow_none=True,
        metadata={"description": "stripe only: Stripe.js", "example": "https://js.stripe.com/v3/"},
    )


class Catalog(Out):
    products = fields.List(fields.Nested(CatalogProduct))
    payment = fields.Nested(PaymentProviderOut)


class PurchaseOut(Out):
    payment = fields.Nested(PaymentOut)
    license = fields.Dict(
        allow_none=True,
        metadata={
            "description": "the license issued or extended; its `activation_password` only "
            "for the roles owner and license_admin"
        },
    )
    license_status = fields.String(metadata={"description": "issued | extended | pending"})
    recurring_payment = fields.Nested(RecurringPaymentOut)


class PurchaseActionOut(Out):
    """202: the card's bank asks the customer to confirm (3-D Secure). Nothing is charged
    yet: confirm with Stripe.js `confirmCardPayment(client_secret)`, then POST
    `/api/v1/purchases/{purchase_id}/confirm`."""

    status = fields.String(metadata={"example": "requires_action"})
    purchase_id = fields.String(metadata={"example": "pur_4f1c2a9b0d7e6c5b4a39e8d7"})
    client_secret = fields.String(
        metadata={"description": "for Stripe.js only; never store or log it"}
    )


class StripeWebhookOut(Out):
    received = fields.Boolean(metadata={"example": True})
    duplicate = fields.Boolean(
        metadata={"description": "the event was received before: nothing was done again"}
    )
    type = fields.String(metadata={"example": "payment_intent.succeeded"})


# --- licensing (L1-L5, P1-P3) -----------------------------------------------------------------

INSTALLATION_ID_MAX = 128  # Unicode code points; the licensing service checks the same
MACHINE_NAME_MAX = 200
CERTIFICATE_MAX = 8192
NONCE = validate.Regexp(r"^[\x20-\x7e]{1,64}\Z", error="Use 1 to 64 printable ASCII characters.")
# C0 (CR, LF, tab, …), DEL and C1: a machine name goes into the text of emails and logs
NO_CONTROL_CHARACTERS = validate.Regexp(
    r"^[^\x00-\x1f\x7f-\x9f]*\Z", error="Must not contain control characters (CR, LF, tab, …)."
)


class RenewalOut(Out):
    """How a license renews, from billing's recurring payment of it."""

    status = fields.String(
        metadata={
            "description": "automatic (charged at next_charge_at) | past_due (the charge "
            "fails, retries under way) | cancelled (auto-renew off: the license ends at its "
            "expiry) | none (no recurring payment)"
        }
    )
    next_charge_at = Timestamp(
        allow_none=True, metadata={"description": "the next automatic charge; null for none"}
    )
    amount = fields.Integer(
        allow_none=True,
        metadata={"description": "minor units; null for none, and for roles without billing"},
    )
    currency = fields.String(
        allow_none=True, metadata={"description": "null for none, and for roles without billing"}
    )
    interval = fields.String(
        allow_none=True,
        metadata={
            "description": "month | year: how often it is charged; null for none",
            "example": "year",
        },
    )
    plan = fields.String(
        allow_none=True,
        metadata={
            "description": "the plan it renews on (its code); null for none",
            "example": "cad-pro-year",
        },
    )
    recurring_payment_id = fields.String(
        allow_none=True, metadata={"example": "rp_4f1c2a9b0d7e6c5b4a39"}
    )


class LicenseOut(Out):
    license_id = fields.String(metadata={"example": "L-7KQX-M2PD"})
    product = fields.Nested(ProductRef)
    model = fields.String(
        metadata={
            "description": "node_locked (activations) | floating (leases, design §13)",
            "example": "node_locked",
        }
    )
    lease_seconds = fields.Integer(
        allow_none=True,
        metadata={"description": "floating: how long a lease lasts without a heartbeat"},
    )
    max_borrow_days = fields.Integer(
        allow_none=True,
        metadata={"description": "floating: the longest borrowing in days (0: none)"},
    )
    seats = fields.Integer()
    seats_in_use = fields.Integer(
        metadata={"description": "active installations, or (floating) live leases"}
    )
    expires_at = Timestamp(allow_none=True, metadata={"description": "null: perpetual"})
    status = fields.String(metadata={"description": "active | expired | suspended"})
    suspension_reason = fields.String(
        allow_none=True, metadata={"description": "why it is suspended; null unless suspended"}
    )
    suspension_cause = fields.String(
        allow_none=True,
        metadata={
            "description": "staff | payment_disputed (a chargeback: resumed when it is won); "
            "null unless suspended"
        },
    )
    created_at = Timestamp()
    features = fields.List(
        fields.Nested(FeatureOut),
        metadata={"description": "the features (modules) the license unlocks, by code"},
    )
    nickname = fields.String(
        allow_none=True,
        metadata={"description": "the company's own name for it; null: none", "example": "Design"},
    )
    note = fields.String(
        allow_none=True, metadata={"description": "the company's note; null: none"}
    )
    renewal = fields.Nested(
        RenewalOut,
        allow_none=True,
        metadata={
            "description": "how it renews (billing's recurring payment); null while "
            "billing cannot say"
        },
    )


class LicenseList(Out):
    licenses = fields.List(fields.Nested(LicenseOut))


# --- floating licenses (design §13): leases, heartbeats, borrowing ---------------------------

LEASE_STATUSES = "live | checked_in | revoked | expired"


class LeaseView(Out):
    """A lease of a floating license: one machine holding one seat until `expires_at`."""

    lease_id = fields.String(metadata={"example": "LS-7KQX-M2PD"})
    license_id = fields.String(metadata={"example": "L-7KQX-M2PD"})
    installation_id = fields.String(metadata={"description": "exactly as the product sent it"})
    machine_name = fields.String(metadata={"example": "CAD-WS-07"})
    started_at = Timestamp()
    expires_at = Timestamp(
        metadata={"description": "the seat is free from then on unless a heartbeat extends it"}
    )
    last_heartbeat_at = Timestamp(allow_none=True)
    borrowed = fields.Boolean(metadata={"description": "a long lease that needs no heartbeat"})
    borrowed_until = Timestamp(allow_none=True)
    status = fields.String(metadata={"description": LEASE_STATUSES})
    ended_at = Timestamp(allow_none=True, metadata={"description": "null while live"})


class LeaseList(Out):
    leases = fields.List(fields.Nested(LeaseView))


class UsageDay(Out):
    date = Day(metadata={"example": "2026-12-02"})
    peak = fields.Integer(metadata={"description": "the most live leases at once that day"})


class UsageOut(Out):
    peak_30d = fields.Integer(metadata={"description": "the most live leases at once, 30 days"})
    days = fields.List(
        fields.Nested(UsageDay),
        metadata={"description": "the last 30 days, oldest first, only days with a record"},
    )


class IsoDateTime(fields.AwareDateTime):
    """An ISO 8601 date-time with its offset (`2026-12-09T18:00:00+01:00`, or `…Z`), handed
    on as ISO text: the services take JSON, never a datetime."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        return super()._deserialize(value, attr, data, **kwargs).isoformat()


_DAY = re.compile(r"\d{4}-\d{2}-\d{2}\Z")


# how the document says "a day or a date-time" (`DayOrDateTime`, the audit trail's filters)
DAY_OR_TIME = [{"type": "string", "format": "date"}, {"type": "string", "format": "date-time"}]


class DayOrDateTime(fields.String):
    """`YYYY-MM-DD` or an ISO 8601 date-time with its offset, handed on as ISO text: a day
    as it is (the service reads it as the end of that day, UTC), a date-time as
    `IsoDateTime` does. A string in the OpenAPI document, since it may be either."""

    default_error_messages = {"invalid": "Use YYYY-MM-DD or an ISO 8601 date-time with its offset."}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        try:
            if isinstance(value, str) and _DAY.match(value):
                return date.fromisoformat(value).isoformat()
            return IsoDateTime().deserialize(value)
        except (ValueError, ValidationError) as exc:
            raise self.make_error("invalid") from exc


class InstallationOut(Out):
    installation_id = fields.String(metadata={"description": "exactly as the product sent it"})
    machine_name = fields.String()
    status = fields.String(metadata={"description": "active | deactivated"})
    activated_at = Timestamp()
    last_seen_at = Timestamp()
    deactivated_at = Timestamp(allow_none=True)
    deactivated_by = fields.String(
        allow_none=True, metadata={"description": "product | portal | staff | offline"}
    )


class InstallationList(Out):
    installations = fields.List(fields.Nested(InstallationOut))


class LicenseDetail(LicenseOut):
    activation_password = fields.String(
        allow_none=True,
        metadata={
            "example": "K7QX-M2PD-9TRW-H4NC",
            "description": "null unless the session's role is owner or license_admin",
        },
    )
    installations = fields.List(fields.Nested(InstallationOut))
    leases = fields.List(
        fields.Nested(LeaseView),
        metadata={"description": "floating: the live leases, oldest first; else empty"},
    )
    usage = fields.Nested(
        UsageOut, allow_none=True, metadata={"description": "floating: peak use; else null"}
    )


class ActorOut(Out):
    """Who acted: `{type: "user", user_id, email}`, `{type: "staff"}`, `{type: "product"}`
    or `{type: "system"}`; fields a type does not have are null."""

    type = fields.String(metadata={"description": "user | staff | product | system"})
    user_id = fields.String(
        allow_none=True, metadata={"description": "a user's, while the user exists"}
    )
    email = fields.String(
        allow_none=True, metadata={"description": "a user's email when they acted"}
    )


class HistoryEventOut(Out):
    id = fields.String()
    type = fields.String(
        metadata={
            "description": "activated | reactivated | deactivated | activation_refused | "
            "lease_checked_out | lease_checked_in | lease_revoked | lease_expired | lease_refused"
        }
    )
    at = Timestamp()
    installation_id = fields.String()
    machine_name = fields.String(allow_none=True)
    source = fields.String(metadata={"description": "product | portal | staff | offline"})
    reason = fields.String(allow_none=True, metadata={"example": "no_seats_available"})
    actor = fields.Nested(ActorOut, allow_none=True)


class HistoryPage(Out):
    events = fields.List(fields.Nested(HistoryEventOut))
    next_before = fields.String(
        allow_none=True, metadata={"description": "pass as `before` for the next, older page"}
    )


class HistoryQuery(StrictSchema):
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))
    before = fields.Integer(load_default=None, validate=validate.Range(min=1))


# licensing's rules for the labels (trimmed, then at most this long; no control characters
# but a note's line breaks and tabs), said in the document only: licensing checks them
NICKNAME_MAX = 60
NOTE_MAX = 500


class LicenseLabelBody(StrictSchema):
    """The company's labels of a license: strings or null, and no other field. Licensing
    owns their rules (trimming, lengths, one line) and answers 422 `validation_error` naming
    the field, which the gateway passes on."""

    nickname = fields.String(
        allow_none=True,
        metadata={
            "description": "the company's name for it, one line; null or empty clears it",
            "example": "Design office",
            "maxLength": NICKNAME_MAX,
            "pattern": "^[^\\x00-\\x1f\\x7f-\\x9f]*$",
        },
    )
    note = fields.String(
        allow_none=True,
        metadata={
            "description": "the company's note (lines allowed); null or empty clears it",
            "example": "Workstations on floor 2",
            "maxLength": NOTE_MAX,
            "pattern": "^[^\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f-\\x9f]*$",
        },
    )

    at_least_one_of = ("nickname", "note")  # the OpenAPI document's `minProperties`

    @validates_schema
    def _something(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not data:
            raise ValidationError("Send `nickname`, `note` or both.", "_schema")


class ActivationPasswordOut(Out):
    license_id = fields.String()
    activation_password = fields.String(metadata={"example": "K7QX-M2PD-9TRW-H4NC"})


class ActivationBody(StrictSchema):
    license_id = Text(64, metadata={"example": "L-7KQX-M2PD"})
    password = Text(
        PASSWORD_MAX,
        metadata={"description": "this license's activation password or the company password"},
    )
    installation_id = Text(
        INSTALLATION_ID_MAX,
        validate=NO_CONTROL_CHARACTERS,
        metadata={"description": "any Unicode but control characters, 1-128"},
    )
    machine_name = Text(
        MACHINE_NAME_MAX,
        validate=NO_CONTROL_CHARACTERS,
        metadata={"description": "any Unicode but control characters, 1-200"},
    )
    product = Text(
        64,
        required=False,
        allow_none=True,
        metadata={
            "description": "optional: the product code the kit is configured with, any case; "
            "another product's license is refused with 409 wrong_product before a seat is "
            "taken",
            "example": "cadpro",
        },
    )


class DeactivationBody(StrictSchema):
    license_id = Text(64)
    password = Text(PASSWORD_MAX)
    installation_id = Text(INSTALLATION_ID_MAX)


class LeaseBody(ActivationBody):
    borrow_until = DayOrDateTime(
        allow_none=True,
        load_default=None,
        metadata={
            "description": "borrow: a lease until then that needs no heartbeat; an ISO 8601 "
            "date-time with its offset, or `YYYY-MM-DD` for the end of that day (UTC); at "
            "most the license's max_borrow_days ahead, else 422 borrow_not_allowed",
            "example": "2026-12-09T18:00:00+00:00",
            "anyOf": DAY_OR_TIME,
        },
    )


class LeaseOut(Out):
    lease = fields.Nested(LeaseView)
    lease_token = fields.String(
        metadata={
            "description": "answered once: send it as `Authorization: Bearer <lease_token>` "
            "to heartbeat and check in"
        }
    )
    certificate = fields.String(
        metadata={
            "description": "compact JWS, EdDSA/Ed25519: claims as an activation's plus "
            "lease_id, model: floating, borrowed; `exp` is the lease's expiry"
        }
    )


class HeartbeatOut(Out):
    lease = fields.Nested(LeaseView)
    certificate = fields.String(metadata={"description": "a new one, with the new `exp`"})


class ValidationBody(StrictSchema):
    certificate = Text(CERTIFICATE_MAX, metadata={"description": "the compact JWS"})
    nonce = fields.String(
        validate=NONCE,
        metadata={"description": "optional, 1-64 printable ASCII: echoed in `signed_answer`"},
    )


class ActivationOut(Out):
    activation = fields.Dict(
        metadata={
            "description": "installation_id, machine_name, status, activated_at, "
            "license_id, product, expires_at, license_status"
        }
    )
    certificate = fields.String(metadata={"description": "compact JWS, EdDSA/Ed25519"})


class ValidationOut(Out):
    valid = fields.Boolean()
    code = fields.String(
        metadata={
            "description": "VALID | EXPIRED | SUSPENDED | DEACTIVATED | LEASE_EXPIRED | "
            "BAD_SIGNATURE"
        }
    )
    license_id = fields.String(allow_none=True)
    installation_id = fields.String(allow_none=True)
    expires_at = Timestamp(allow_none=True)
    features = fields.List(
        fields.String(),
        metadata={
            "description": "the license's feature codes as of now; empty unless VALID",
            "example": ["steel"],
        },
    )
    lease_id = fields.String(
        allow_none=True,
        metadata={
            "description": "the lease a lease certificate names; null for an activation "
            "certificate or BAD_SIGNATURE",
            "example": "LS-7KQX-M2PD",
        },
    )
    lease_expires_at = Timestamp(
        allow_none=True,
        metadata={
            "description": "when that lease ends or ended (`expires_at` is the license's); "
            "null when `lease_id` is, or for a lease licensing does not know"
        },
    )
    deactivated_at = Timestamp(
        allow_none=True,
        metadata={"description": "DEACTIVATED only: when the machine was deactivated"},
    )
    deactivated_by = fields.String(
        allow_none=True,
        metadata={
            "description": "DEACTIVATED only: who deactivated it (portal, client, staff)",
            "example": "portal",
        },
    )
    suspended_at = Timestamp(
        allow_none=True,
        metadata={"description": "SUSPENDED only: when the license was suspended"},
    )
    suspension_reason = fields.String(
        allow_none=True,
        metadata={"description": "SUSPENDED only: the reason staff or billing gave, if any"},
    )
    signed_answer = fields.String(
        metadata={
            "description": "this answer as a compact JWS (EdDSA, the certificate keys, typ "
            "license-validation+jwt): its fields + iat + the nonce sent"
        }
    )


# --- offline activation (design §11): files carried to and from an air-gapped machine -------

OFFLINE_FILE_MAX = 16 * 1024  # bytes of UTF-8: the largest request or proof file


class OfflineActivationBody(StrictSchema):
    # no length bound here: a file over OFFLINE_FILE_MAX is an `invalid_request` that says
    # so (`views.offline_file`), as for any other fault of the file, not a validation_error
    request = fields.String(
        required=True,
        metadata={
            "description": "the text of the activation request file the product wrote "
            "(JSON, at most 16 KiB)",
            "example": '{"type": "activation_request", "version": 1, ...}',
        },
    )


class OfflineDeactivationBody(StrictSchema):
    proof = fields.String(
        required=True,
        metadata={
            "description": "the text of the deactivation proof file the product wrote "
            "(JSON, at most 16 KiB)",
            "example": '{"type": "deactivation_proof", "version": 1, ...}',
        },
    )


class OfflineActivationOut(Out):
    activation = fields.Dict(
        metadata={
            "description": "as an online activation's, with source: offline: "
            "installation_id, machine_name, status, activated_at, last_seen_at, "
            "deactivated_at, deactivated_by, license_id, product, expires_at, "
            "license_status (the features are in the certificate's claims)"
        }
    )
    certificate = fields.String(metadata={"description": "compact JWS, EdDSA/Ed25519"})
    response = fields.String(
        metadata={
            "description": "the text of the activation response file to carry back to the "
            "machine (JSON; holds the certificate and the deactivation secret)"
        }
    )


class Jwk(Out):
    kty = fields.String(metadata={"example": "OKP"})
    crv = fields.String(metadata={"example": "Ed25519"})
    x = fields.String()
    kid = fields.String()
    use = fields.String(metadata={"example": "sig"})
    alg = fields.String(metadata={"example": "EdDSA"})


class Jwks(Out):
    keys = fields.List(fields.Nested(Jwk))


# --- portal browser session -------------------------------------------------------------------


class WebSessionOut(Out):
    """`POST /web/session`: the session itself is in the HttpOnly cookie, never in the body."""

    expires_at = Timestamp(required=True)
    company = fields.Nested(Company)
    user = fields.Nested(UserRef, allow_none=True)


# --- team accounts: users, invitations, notification preferences, the audit trail ------------


class UserOut(Out):
    user_id = fields.String(metadata={"example": "U-7KQX-M2PD"})
    email = fields.String(metadata={"example": "grace@acme.test"})
    name = fields.String()
    role = fields.String(metadata={"description": "owner | license_admin | billing | viewer"})
    status = fields.String(metadata={"description": "invited | active | disabled"})
    contact = fields.Boolean(
        metadata={"description": "the company's contact: always an owner, staff change it"}
    )
    created_at = Timestamp()
    last_login_at = Timestamp(allow_none=True)
    invitation_expires_at = Timestamp(
        allow_none=True, metadata={"description": "while invited: when the emailed link expires"}
    )


class UserList(Out):
    users = fields.List(fields.Nested(UserOut))


class InviteBody(StrictSchema):
    email = Text(EMAIL_MAX, validate=validate.Email(), metadata={"example": "grace@acme.test"})
    name = Text(USER_NAME_MAX, validate=NAME_LINE, metadata={"example": "Grace Hopper"})
    role = fields.String(
        required=True, validate=validate.OneOf(ROLES), metadata={"example": "license_admin"}
    )


class UpdateUserBody(StrictSchema):
    name = Text(USER_NAME_MAX, required=False, validate=NAME_LINE)
    role = fields.String(validate=validate.OneOf(ROLES), metadata={"example": "viewer"})

    at_least_one_of = ("name", "role")  # the OpenAPI document's `minProperties`

    @validates_schema
    def _something(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not data:
            raise ValidationError("Send `name`, `role` or both.", "_schema")


class AcceptInvitationBody(StrictSchema):
    token = Text(TOKEN_MAX, metadata={"description": "from the invitation link's #token="})
    password = Text(PASSWORD_MAX, metadata={"description": "the user's own new password"})


class NoticeFlags(Out):
    installation_activated = fields.Boolean(metadata={"description": "a new machine activated"})
    license_expiring = fields.Boolean(metadata={"description": "30, 7 and 1 days before"})
    receipts = fields.Boolean(metadata={"description": "payments, offline payments, refunds"})
    payment_failed = fields.Boolean(metadata={"description": "an automatic renewal failed"})
    seats_exhausted = fields.Boolean(
        metadata={"description": "every seat of a floating license was in use"}
    )


class NoticeSwitches(StrictSchema):
    installation_activated = StrictBoolean()
    license_expiring = StrictBoolean()
    receipts = StrictBoolean()
    payment_failed = StrictBoolean()
    seats_exhausted = StrictBoolean()


class NotificationPreferencesOut(Out):
    preferences = fields.Nested(NoticeFlags)
    available = fields.List(
        fields.String(),
        metadata={
            "description": "the notices the user's role may receive",
            "example": ["installation_activated", "license_expiring"],
        },
    )


class NotificationPreferencesBody(StrictSchema):
    preferences = fields.Nested(
        NoticeSwitches,
        required=True,
        metadata={"description": "some or all of the notices: on (true) or off (false)"},
    )


class AuditTarget(Out):
    type = fields.String(metadata={"example": "license"})
    id = fields.String(allow_none=True, metadata={"example": "L-7KQX-M2PD"})


class AuditEventOut(Out):
    event_id = fields.String()
    at = Timestamp()
    actor = fields.Nested(ActorOut)
    action = fields.String(metadata={"example": "installation_deactivated"})
    target = fields.Nested(AuditTarget)
    details = fields.Dict(
        metadata={"example": {"installation_id": "ws-07", "machine_name": "CAD-WS-07"}}
    )


class AuditPage(Out):
    events = fields.List(fields.Nested(AuditEventOut))
    next_before = fields.String(
        allow_none=True,
        metadata={"description": "pass as `before` for the next, older page; null on the last"},
    )


class AuditEventsQuery(StrictSchema):
    limit = fields.Integer(load_default=PAGE_DEFAULT, validate=validate.Range(min=1, max=PAGE_MAX))
    before = Text(CURSOR_MAX, required=False, load_default=None)
    user_id = Text(32, required=False, load_default=None)
    action = fields.String(load_default=None, validate=validate.OneOf(ACTIONS))
    since = Text(64, required=False, load_default=None, metadata={"anyOf": DAY_OR_TIME})
    until = Text(64, required=False, load_default=None, metadata={"anyOf": DAY_OR_TIME})
    format = fields.String(load_default=None, validate=validate.OneOf(("json", "csv")))
