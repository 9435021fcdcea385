"""Billing rules: money, cards, periods, receipt numbers and the dunning schedule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from common import money
from services.billing import domain

T0 = datetime(2026, 1, 31, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("amount", "currency", "text"),
    [
        (123450, "EUR", "€1,234.50"),
        (5, "usd", "$0.05"),
        (0, "EUR", "€0.00"),
        (-1999, "GBP", "-£19.99"),
        (1500, "JPY", "¥1,500"),
        (1234567, "KWD", "KWD 1,234.567"),
        (100000000000, "EUR", "€1,000,000,000.00"),
    ],
)
def test_money_is_formatted_from_integer_minor_units(amount, currency, text) -> None:
    assert domain.format_money(amount, currency) == text


def test_money_refuses_floats_and_unknown_currencies() -> None:
    with pytest.raises(TypeError):
        domain.format_money(12.5, "EUR")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        domain.format_money(True, "EUR")  # type: ignore[arg-type]
    with pytest.raises(KeyError):
        domain.format_money(100, "XXX")


@pytest.mark.parametrize(
    ("number", "valid"),
    [
        ("4242424242424242", True),
        ("4000000000000002", True),
        ("4000000000009995", True),
        ("5555555555554444", True),
        ("378282246310005", True),
        ("4242424242424241", False),
        ("0000", False),
        ("42424242424242424242", False),
        ("4242x24242424242", False),
        ("", False),
    ],
)
def test_luhn(number, valid) -> None:
    assert domain.luhn_valid(number) is valid


def test_card_brand_and_normalisation() -> None:
    assert domain.normalize_card_number("4242 4242-4242 4242") == "4242424242424242"
    assert domain.card_brand("4242424242424242") == "visa"
    assert domain.card_brand("5555555555554444") == "mastercard"
    assert domain.card_brand("2223003122003222") == "mastercard"
    assert domain.card_brand("378282246310005") == "amex"
    assert domain.card_brand("6011111111111117") == "discover"
    assert domain.card_brand("9999999999999995") == "unknown"


def test_a_card_is_valid_through_its_expiry_month() -> None:
    now = datetime(2026, 5, 31, 23, 59, tzinfo=UTC)
    assert not domain.card_expired(5, 2026, now)
    assert domain.card_expired(4, 2026, now)
    assert domain.card_expired(12, 2025, now)
    assert not domain.card_expired(1, 2027, now)


def test_intervals_clamp_to_the_end_of_the_month() -> None:
    assert domain.add_interval(T0, "month") == datetime(2026, 2, 28, 10, 0, tzinfo=UTC)
    assert domain.add_interval(T0, "month", 13) == datetime(2027, 2, 28, 10, 0, tzinfo=UTC)
    assert domain.add_interval(T0, "year") == datetime(2027, 1, 31, 10, 0, tzinfo=UTC)
    assert domain.add_interval(T0, "month", -2) == datetime(2025, 11, 30, 10, 0, tzinfo=UTC)
    leap = datetime(2028, 2, 29, tzinfo=UTC)
    assert domain.add_interval(leap, "year") == datetime(2029, 2, 28, tzinfo=UTC)
    with pytest.raises(ValueError):
        domain.add_interval(T0, "week")


def test_a_renewal_continues_where_the_license_ends() -> None:
    later = T0 + timedelta(days=20)
    period = domain.purchase_period(T0, "year", later)
    assert (period.start, period.end) == (later, domain.add_interval(later, "year"))
    expired = domain.purchase_period(T0, "month", T0 - timedelta(days=3))
    assert expired.start == T0
    assert domain.purchase_period(T0, "month", None).start == T0


def test_receipt_numbers() -> None:
    assert domain.receipt_number(2026, 123) == "R-2026-000123"
    assert domain.receipt_number(2027, 1) == "R-2027-000001"
    assert domain.receipt_number(2026, 1234567) == "R-2026-1234567"
    with pytest.raises(ValueError):
        domain.receipt_number(2026, 0)


def test_dunning_retries_after_one_three_and_five_days_then_gives_up() -> None:
    schedule = [domain.next_retry_at(T0, failures) for failures in (1, 2, 3, 4)]
    assert schedule == [
        T0 + timedelta(days=1),
        T0 + timedelta(days=3),
        T0 + timedelta(days=5),
        None,
    ]
    assert domain.max_attempts() == 4
    with pytest.raises(ValueError):
        domain.next_retry_at(T0, 0)


def test_receipt_lines() -> None:
    assert domain.describe_purchase("CADPRO", "cad-y", 1, "year", "new") == (
        "CADPRO, 1 seat, yearly"
    )
    assert domain.describe_purchase("CADPRO", "cad-m", 3, "month", "renewal") == (
        "CADPRO, 3 seats, monthly renewal"
    )
    assert domain.line_total(4900, 3) == 14700


# --- issue 10: names, fingerprints, resuming, billing details -----------------------------


def test_billing_formats_money_the_one_way() -> None:
    for currency, places in domain.CURRENCIES.items():
        assert money.decimals(currency) == places
        assert domain.format_money(1234567, currency) == money.format_money(1234567, currency)


def test_receipt_lines_name_the_product() -> None:
    assert domain.describe_purchase("CAD Pro", "cadpro-yearly", 5, "year", "new") == (
        "CAD Pro, 5 seats, yearly"
    )
    assert domain.describe_purchase("CAD Pro", "cad-m", 1, "month", "renewal") == (
        "CAD Pro, 1 seat, monthly renewal"
    )


def test_a_purchase_fingerprint_tells_requests_apart_without_the_card_number() -> None:
    card = {"number": "4242 4242 4242 4242", "exp_month": 12, "exp_year": 2030, "cvc": "1"}
    same = {**card, "number": "4242-4242-4242-4242", "cvc": "999"}
    one = domain.purchase_fingerprint("cad-m", 2, None, card)
    assert one == domain.purchase_fingerprint("cad-m", 2, None, same)
    assert len(one) == 64 and "4242" not in one
    assert one != domain.purchase_fingerprint("cad-m", 3, None, card)
    assert one != domain.purchase_fingerprint("cad-y", 2, None, card)
    assert one != domain.purchase_fingerprint("cad-m", 2, "L-1", card)
    assert one != domain.purchase_fingerprint(
        "cad-m", 2, None, {**card, "number": "5555555555554444"}
    )


def test_provider_keys_fit_the_ledger() -> None:
    assert domain.refund_key(7) == "billing-refund-7"
    key = domain.authorization_key("C1000001", "k" * 128)
    assert key.startswith("billing-auth-") and len(key) <= 64
    assert key == domain.authorization_key("C1000001", "k" * 128)
    assert key != domain.authorization_key("C2000002", "k" * 128)


@pytest.mark.parametrize(
    ("status", "by", "ahead", "resumable"),
    [
        ("cancelled", "customer", True, True),
        ("cancelled", "customer", False, False),
        ("cancelled", "staff", True, False),
        ("cancelled", "refund", True, False),
        ("cancelled", None, True, False),
        ("active", None, True, False),
    ],
)
def test_only_a_customers_cancellation_is_resumable_within_its_period(
    status, by, ahead, resumable
) -> None:
    next_charge = T0 + (timedelta(days=1) if ahead else -timedelta(seconds=1))
    assert domain.resumable(status, by, next_charge, T0) is resumable


def test_billing_details_are_kept_as_printed() -> None:
    assert domain.normalize_address(" Main St 1 \r\n\r\n 1010 Wien \r") == "Main St 1\n1010 Wien"
    assert domain.normalize_vat_id("  atu 1234  5678 ") == "ATU 1234 5678"
    assert domain.normalize_vat_id("   ") is None and domain.normalize_vat_id(None) is None
