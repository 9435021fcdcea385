"""Billing rules as plain Python: money, cards, periods, receipt numbers and dunning.

No nameko, SQLAlchemy or marshmallow here: every rule is a function a unit test runs in
microseconds. Money is always an `int` of minor units with an ISO 4217 currency code.
"""

from __future__ import annotations

import calendar
import dataclasses
import hashlib
import json
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from common import money

# ISO 4217 codes we accept; their minor units are `common.money.decimals` (ISO 4217).
_ACCEPTED = (
    "EUR", "USD", "GBP", "CHF", "CAD", "AUD", "NZD", "SEK", "NOK", "DKK", "PLN", "CZK", "HUF",
    "RON", "BGN", "SGD", "HKD", "CNY", "INR", "BRL", "MXN", "ZAR", "ILS", "TRY",
    "JPY", "KRW", "ISK", "CLP", "VND",
    "KWD", "BHD", "OMR", "JOD", "TND",
)  # fmt: skip
CURRENCIES: dict[str, int] = {code: money.decimals(code) for code in _ACCEPTED}
INTERVALS = ("month", "year")
MAX_AMOUNT = 10**12  # minor units: far above any plausible charge, far below int64
MAX_SEATS = 10_000

# how a plan's licenses count seats (licensing's `licenses.model`, DESIGN §13): per machine
# activated, or per lease checked out at the moment
NODE_LOCKED, FLOATING = "node_locked", "floating"
MODELS = (NODE_LOCKED, FLOATING)
# a floating license's lease period and borrowing limit: licensing's bounds and defaults
LEASE_SECONDS_MIN, LEASE_SECONDS_MAX, LEASE_SECONDS_DEFAULT = 60, 86_400, 900
BORROW_DAYS_MAX, BORROW_DAYS_DEFAULT = 90, 7

# Dunning: after a failed renewal charge, try again this long after the first failure;
# when the last retry fails too, the recurring payment is past due.
DUNNING_RETRY_DELAYS = (timedelta(days=1), timedelta(days=3), timedelta(days=5))

RECEIPT_PREFIX = "R"


# --- money ---------------------------------------------------------------------------------


def minor_unit_exponent(currency: str) -> int:
    """Digits after the decimal point of `currency` (`EUR` → 2, `JPY` → 0, `KWD` → 3)."""
    return CURRENCIES[currency.upper()]


def format_money(amount: int, currency: str) -> str:
    """`format_money(123450, "EUR")` → `"€1,234.50"`: the one format of `common.money`,
    for the currencies billing accepts (another code is a `KeyError`)."""
    minor_unit_exponent(currency)
    return money.format_money(amount, currency)


def line_total(unit_amount: int, seats: int) -> int:
    """The price of `seats` seats at `unit_amount` minor units each."""
    return unit_amount * seats


# --- cards ---------------------------------------------------------------------------------


def luhn_valid(number: str) -> bool:
    """The Luhn checksum every card number carries."""
    if not number.isdigit() or not 12 <= len(number) <= 19:
        return False
    total = 0
    for index, char in enumerate(reversed(number)):
        digit = int(char)
        if index % 2:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def normalize_card_number(number: str) -> str:
    """Spaces and dashes people type are dropped: `"4242 4242-4242 4242"` → digits."""
    return "".join(char for char in number if char not in " -")


def card_brand(number: str) -> str:
    """The brand a card number's prefix names (`visa`, `mastercard`, `amex`, …, `unknown`)."""
    if number.startswith("4"):
        return "visa"
    two, four = int(number[:2] or 0), int(number[:4] or 0)
    if 51 <= two <= 55 or 2221 <= four <= 2720:
        return "mastercard"
    if two in (34, 37):
        return "amex"
    if number.startswith("6011") or number.startswith("65"):
        return "discover"
    if 3528 <= four <= 3589:
        return "jcb"
    return "unknown"


def card_expired(exp_month: int, exp_year: int, now: datetime) -> bool:
    """A card is valid through the last day of its expiry month."""
    return (exp_year, exp_month) < (now.year, now.month)


# --- periods -------------------------------------------------------------------------------


def add_interval(start: datetime, interval: str, count: int = 1) -> datetime:
    """`start` plus `count` months or years, clamped to the month's end (Jan 31 → Feb 28)."""
    if interval not in INTERVALS:
        raise ValueError(f"unknown interval {interval!r}")
    months = count * (12 if interval == "year" else 1)
    month_index = start.month - 1 + months
    year, month = start.year + month_index // 12, month_index % 12 + 1
    day = min(start.day, calendar.monthrange(year, month)[1])
    return start.replace(year=year, month=month, day=day)


@dataclass(frozen=True)
class Period:
    start: datetime
    end: datetime


def renewal_start(next_charge_at: datetime, interval: str, now: datetime) -> datetime:
    """Where the next automatic charge's period starts: `next_charge_at` (the end of the last
    period paid) unless the period starting there is already over (a payment past due for
    months, a pass that did not run), then `now`: never a charge for a period already over.

    `renewal_start(jan_10, "month", now=jan_20)` → `jan_10`; with `now=may_20` → `may_20`.
    """
    if add_interval(next_charge_at, interval) <= now:
        return now
    return next_charge_at


def purchase_period(now: datetime, interval: str, current_expiry: datetime | None) -> Period:
    """A new purchase starts now; a renewal continues where the license ends (if later)."""
    start = now if current_expiry is None or current_expiry < now else current_expiry
    return Period(start, add_interval(start, interval))


# --- receipts ------------------------------------------------------------------------------


def receipt_number(year: int, sequence: int) -> str:
    """`receipt_number(2026, 123)` → `"R-2026-000123"` (sequential per calendar year, UTC)."""
    if sequence < 1:
        raise ValueError("receipt sequences start at 1")
    return f"{RECEIPT_PREFIX}-{year:04d}-{sequence:06d}"


# declines that no later off-session try can get past: the customer's bank asks for them
# (3-D Secure), or the saved card belongs to another payment provider (switched since)
AUTHENTICATION_REQUIRED = "authentication_required"
PAYMENT_METHOD_UNAVAILABLE = "payment_method_unavailable"
CUSTOMER_MUST_ACT = frozenset({AUTHENTICATION_REQUIRED, PAYMENT_METHOD_UNAVAILABLE})


def describe_purchase(product_name: str, plan: str, seats: int, interval: str, kind: str) -> str:
    """The line on a receipt, as a person reads it: the product's name, never its code nor
    the plan's (`plan` is on the payment for staff): `describe_purchase("CAD Pro",
    "cadpro-yearly", 5, "year", "new")` → `"CAD Pro, 5 seats, yearly"`; a renewal reads
    `"CAD Pro, 5 seats, yearly renewal"`."""
    every = "monthly" if interval == "month" else "yearly"
    what = f"{every} renewal" if kind == "renewal" else every
    noun = "seat" if seats == 1 else "seats"
    return f"{product_name}, {seats} {noun}, {what}"


def charge_description(line: str, customer_id: str) -> str:
    """What a charge is for, as the provider's dashboard shows it: the receipt's line and
    the company, so that a finance person finds our receipt from the provider's side:
    `charge_description("CAD Pro, 5 seats, yearly", "C1138935")` →
    `"CAD Pro, 5 seats, yearly (customer C1138935)"`."""
    return f"{line} (customer {customer_id})"


# --- purchases and charges ----------------------------------------------------------------


@dataclass(frozen=True)
class Order:
    """What a purchase buys; kept with its charge until the charge is settled."""

    kind: str  # new | renewal
    customer_id: str
    plan: str
    product_code: str
    interval: str
    seats: int
    unit_amount: int
    amount: int
    currency: str
    period_start: str
    period_end: str
    license_id: str | None
    card: dict[str, Any]  # provider, token, brand, last4, exp_month, exp_year (never the number)
    # the product's name when the order was priced (orders written before names: None)
    product_name: str | None = None
    # who bought (common/audit.py Actor.to_dict()), for the audit trail's `purchase` when
    # the charge settles, even in a later pass (orders written before the trail: None)
    actor: dict[str, Any] | None = None
    # the plan's feature codes when priced: what the buyer saw is what the license gets
    features: list[str] = dataclasses.field(default_factory=list)
    # the plan's license model when priced (`LicenseTerms`; orders written before floating
    # licenses: node-locked)
    model: str = NODE_LOCKED
    lease_seconds: int | None = None
    max_borrow_days: int | None = None

    def to_json(self) -> str:
        return json.dumps(self.__dict__)

    @classmethod
    def from_json(cls, raw: str) -> Order:
        # fields a newer release added are left out, so that an instance still on the
        # previous release reads the orders a newer one wrote during a rolling upgrade
        known = {item.name for item in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in json.loads(raw).items() if key in known})


def feature_codes(codes: Iterable[str] | None) -> list[str]:
    """Feature codes as stored and sent: each once, sorted; None (an older plan) is none.

    >>> feature_codes(["steel", "dynamics", "steel"])
    ['dynamics', 'steel']
    """
    return sorted(set(codes or ()))


@dataclass(frozen=True)
class LicenseTerms:
    """How the licenses a plan sells count seats: `model`, and for a floating one its lease
    period and borrowing limit (both None for node-locked)."""

    model: str = NODE_LOCKED
    lease_seconds: int | None = None
    max_borrow_days: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def license_terms(
    model: str | None, lease_seconds: int | None = None, max_borrow_days: int | None = None
) -> LicenseTerms:
    """The terms as stored and sent: None (a plan or payment older than floating licenses)
    is node-locked, whose numbers are None; a floating one gets licensing's defaults for
    the numbers not given. Bounds are the schema's to check.

    >>> license_terms(None)
    LicenseTerms(model='node_locked', lease_seconds=None, max_borrow_days=None)
    >>> license_terms("floating", max_borrow_days=0)
    LicenseTerms(model='floating', lease_seconds=900, max_borrow_days=0)
    """
    if model != FLOATING:
        return LicenseTerms()
    return LicenseTerms(
        FLOATING,
        LEASE_SECONDS_DEFAULT if lease_seconds is None else lease_seconds,
        BORROW_DAYS_DEFAULT if max_borrow_days is None else max_borrow_days,
    )


def unknown_features(codes: Iterable[str], known: Iterable[str]) -> list[str]:
    """The codes of `codes` that are not in `known` (the product's features), sorted.

    >>> unknown_features(["steel", "wind"], {"steel", "dynamics"})
    ['wind']
    """
    return sorted(set(codes) - set(known))


def charge_key(charge_id: int) -> str:
    """The provider's idempotency key of a charge row: one row, one possible charge (kept
    on the row). The random part keeps it unique beyond this database: another deployment
    (or this one restored from a backup) sharing the provider account numbers its rows
    alike, and must never be answered this row's charge.

    >>> import re; bool(re.fullmatch(r"billing-charge-7-[0-9a-f]{12}", charge_key(7)))
    True
    """
    return f"billing-charge-{charge_id}-{secrets.token_hex(6)}"


def new_instance_id() -> str:
    """A billing database's own random ID (16 hex digits)."""
    return secrets.token_hex(8)


def customer_key(customer_id: str, instance_id: str) -> str:
    """The provider's idempotency key of the company's provider customer: the same for every
    instance of one deployment (concurrent first payments make one customer), another for
    another deployment (`instance_id`: the billing database's own random ID).

    >>> customer_key("cus_9", "a1b2")
    'billing-customer-cus_9-a1b2'
    """
    return f"billing-customer-{customer_id}-{instance_id}"


def refund_key(payment_id: int) -> str:
    """The provider's idempotency key of a payment's refund: a payment is refunded once."""
    return f"billing-refund-{payment_id}"


def authorization_key(customer_id: str, request_key: str, card: str = "") -> str:
    """The provider's key of a card check for one request and one card: a redelivery checks
    it once, and the same request key with another card checks that card (never answers
    the first card's result). `card`: `card_fingerprint(...)`.

    `authorization_key("C1", "k", "visa/4242/12/2030")` → `"billing-auth-"` + 40 hex
    digits (fits 64).
    """
    text = f"{customer_id}\n{request_key}\n{card}"
    digest = hashlib.sha256(text.encode()).hexdigest()
    return f"billing-auth-{digest[:40]}"


def card_fingerprint(brand: str, last4: str, exp_month: int, exp_year: int) -> str:
    """What tells two cards apart without their number: `"visa/4242/12/2030"`."""
    return f"{brand}/{last4}/{exp_month}/{exp_year}"


def purchase_fingerprint(
    plan: str,
    seats: int,
    license_id: str | None,
    card: dict[str, Any] | None,
    payment_method: str | None = None,
) -> str:
    """What identifies a purchase request, to tell a retry from another request that reuses
    its key: the plan, seats, license and the card's last four digits and expiry (never a
    hash of the whole number, which could be searched back), or the provider's payment
    method ID. 64 hex digits."""
    body: dict[str, Any] = {"plan": plan, "seats": seats, "license_id": license_id}
    if payment_method is not None:
        body["payment_method"] = payment_method
    else:
        card = card or {}
        number = normalize_card_number(str(card.get("number", "")))
        body["card"] = [number[-4:], card.get("exp_month"), card.get("exp_year")]
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def new_purchase_id() -> str:
    """The public ID of a purchase a customer may have to confirm (`pur_` + 24 hex digits)."""
    return "pur_" + secrets.token_hex(12)


# a purchase waiting this long for its customer's authentication is given up
ACTION_EXPIRES_AFTER = timedelta(hours=24)


def new_reference() -> str:
    """The public ID of a recurring payment: opaque, unguessable (`rp_` + 20 hex digits)."""
    return "rp_" + secrets.token_hex(10)


# --- dunning -------------------------------------------------------------------------------


def next_retry_at(first_failed_at: datetime, failures: int) -> datetime | None:
    """When to charge again after `failures` failed attempts of one invoice; None: give up.

    With the default schedule: 1 failure → first + 1 day, 2 → + 3 days, 3 → + 5 days,
    4 → None (the recurring payment is past due).
    """
    if failures < 1:
        raise ValueError("no failure, no retry")
    if failures > len(DUNNING_RETRY_DELAYS):
        return None
    return first_failed_at + DUNNING_RETRY_DELAYS[failures - 1]


def max_attempts() -> int:
    """Charges tried per invoice: the first one and every retry."""
    return 1 + len(DUNNING_RETRY_DELAYS)


# --- recurring payments a customer controls -----------------------------------------------

CANCELLED_BY_CUSTOMER = "customer"
CANCELLED_BY_STAFF = "staff"
CANCELLED_BY_REFUND = "refund"
CANCELLED_BY_DISPUTE = "dispute"


def resumable(
    status: str, cancelled_by: str | None, next_charge_at: datetime, now: datetime
) -> bool:
    """A cancelled recurring payment can be resumed while the period paid for runs and only
    when the customer cancelled it (not one a refund or staff ended)."""
    return status == "cancelled" and cancelled_by == CANCELLED_BY_CUSTOMER and next_charge_at > now


# --- pages and billing details -------------------------------------------------------------

PAGE_DEFAULT = 50
PAGE_MAX = 200
COMPANY_NAME_MAX = 200
ADDRESS_MAX = 500
VAT_ID_MAX = 32


def normalize_address(text: str) -> str:
    """A postal address as typed: line endings unified, each line and the whole trimmed,
    empty lines in the middle kept out (`"Main St 1\r\n\r\n1010 Wien "` →
    `"Main St 1\n1010 Wien"`)."""
    lines = [line.strip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    return "\n".join(line for line in lines if line)


def normalize_vat_id(text: str | None) -> str | None:
    """A VAT ID as printed on invoices: trimmed, upper case (`" de123456789 "` →
    `"DE123456789"`); blank → None."""
    if text is None:
        return None
    value = " ".join(text.split()).upper()
    return value or None
