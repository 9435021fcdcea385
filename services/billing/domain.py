"""Billing rules as plain Python: money, cards, periods, receipt numbers and dunning.

No nameko, SQLAlchemy or marshmallow here: every rule is a function a unit test runs in
microseconds. Money is always an `int` of minor units with an ISO 4217 currency code.
"""

from __future__ import annotations

import calendar
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

# ISO 4217 codes we accept, with their minor-unit exponent (2 unless listed otherwise).
CURRENCIES: dict[str, int] = {
    "EUR": 2, "USD": 2, "GBP": 2, "CHF": 2, "CAD": 2, "AUD": 2, "NZD": 2, "SEK": 2,
    "NOK": 2, "DKK": 2, "PLN": 2, "CZK": 2, "HUF": 2, "RON": 2, "BGN": 2, "SGD": 2,
    "HKD": 2, "CNY": 2, "INR": 2, "BRL": 2, "MXN": 2, "ZAR": 2, "ILS": 2, "TRY": 2,
    "JPY": 0, "KRW": 0, "ISK": 0, "CLP": 0, "VND": 0,
    "KWD": 3, "BHD": 3, "OMR": 3, "JOD": 3, "TND": 3,
}  # fmt: skip
INTERVALS = ("month", "year")
MAX_AMOUNT = 10**12  # minor units: far above any plausible charge, far below int64
MAX_SEATS = 10_000

# Dunning: after a failed renewal charge, try again this long after the first failure;
# when the last retry fails too, the recurring payment is past due.
DUNNING_RETRY_DELAYS = (timedelta(days=1), timedelta(days=3), timedelta(days=5))

RECEIPT_PREFIX = "R"


# --- money ---------------------------------------------------------------------------------


def minor_unit_exponent(currency: str) -> int:
    """Digits after the decimal point of `currency` (`EUR` → 2, `JPY` → 0, `KWD` → 3)."""
    return CURRENCIES[currency.upper()]


def format_money(amount: int, currency: str) -> str:
    """`format_money(123450, "EUR")` → `"EUR 1,234.50"`; integers only, never a float."""
    if not isinstance(amount, int) or isinstance(amount, bool):
        raise TypeError("amounts are integers of minor units")
    currency = currency.upper()
    exponent = minor_unit_exponent(currency)
    sign = "-" if amount < 0 else ""
    whole, fraction = divmod(abs(amount), 10**exponent)
    text = f"{whole:,}"
    if exponent:
        text += "." + str(fraction).rjust(exponent, "0")
    return f"{sign}{currency} {text}"


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


def describe_purchase(product: str, plan: str, seats: int, interval: str, kind: str) -> str:
    """The line on a receipt: `"CADPRO, 5 seats, yearly (plan cadpro-yearly)"`."""
    every = "monthly" if interval == "month" else "yearly"
    what = "renewal" if kind == "renewal" else every
    noun = "seat" if seats == 1 else "seats"
    return f"{product}, {seats} {noun}, {what} (plan {plan})"


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

    def to_json(self) -> str:
        return json.dumps(self.__dict__)

    @classmethod
    def from_json(cls, raw: str) -> Order:
        return cls(**json.loads(raw))


def charge_key(charge_id: int) -> str:
    """The provider's idempotency key of a charge row: one row, one possible charge."""
    return f"billing-charge-{charge_id}"


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
