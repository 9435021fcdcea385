"""The one money format and amounts typed by people (common.money)."""

from __future__ import annotations

import pytest

from common import money


@pytest.mark.parametrize(
    ("currency", "places"),
    [
        ("EUR", 2),
        ("usd", 2),
        (" gbp ", 2),
        ("JPY", 0),
        ("KRW", 0),
        ("ISK", 0),
        ("BHD", 3),
        ("KWD", 3),
        ("JOD", 3),
        ("OMR", 3),
        ("TND", 3),
        ("XYZ", 2),
    ],
)
def test_decimals_follow_iso_4217(currency: str, places: int) -> None:
    assert money.decimals(currency) == places


@pytest.mark.parametrize(
    ("minor", "currency", "text"),
    [
        (245000, "EUR", "€2,450.00"),
        (5, "usd", "$0.05"),
        (0, "EUR", "€0.00"),
        (-1999, "GBP", "-£19.99"),
        (5000, "JPY", "¥5,000"),
        (1234567, "KWD", "KWD 1,234.567"),
        (7, "BHD", "BHD 0.007"),
        (245000, "CHF", "CHF 2,450.00"),
        (-1999, "CHF", "-CHF 19.99"),
        (100, "XXX", "XXX 1.00"),
        (245000, "gbp", "£2,450.00"),
        (-1999, "EUR", "-€19.99"),
        (100000000000, "EUR", "€1,000,000,000.00"),
    ],
)
def test_format_money(minor: int, currency: str, text: str) -> None:
    assert money.format_money(minor, currency) == text


def test_format_money_refuses_floats_and_bools() -> None:
    with pytest.raises(TypeError):
        money.format_money(12.5, "EUR")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        money.format_money(True, "EUR")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "currency", "minor"),
    [
        ("120.00", "EUR", 12000),
        ("120.5", "EUR", 12050),
        ("120.", "EUR", 12000),
        (" 0.05 ", "EUR", 5),
        ("12000", "EUR", 12000),  # no point: minor units, as before
        ("5000", "JPY", 5000),
        ("1.234", "KWD", 1234),
        ("1.2", "KWD", 1200),
        ("0", "EUR", 0),
    ],
)
def test_parse_amount(text: str, currency: str, minor: int) -> None:
    assert money.parse_amount(text, currency) == minor


@pytest.mark.parametrize(
    ("text", "currency", "words"),
    [
        ("1.005", "EUR", "EUR has 2 decimals, the amount has 3"),
        ("5000.0", "JPY", "JPY has 0 decimals, the amount has 1"),
        ("1.2345", "KWD", "KWD has 3 decimals"),
        ("-5.00", "EUR", "digits and at most one '.'"),
        ("1,200.00", "EUR", "digits and at most one '.'"),
        ("12 EUR", "EUR", "digits and at most one '.'"),
        ("", "EUR", "digits and at most one '.'"),
        ("1.2.3", "EUR", "digits and at most one '.'"),
        ("abc", "JPY", "'120'"),
    ],
)
def test_parse_amount_names_the_problem(text: str, currency: str, words: str) -> None:
    with pytest.raises(ValueError, match="invalid amount") as excinfo:
        money.parse_amount(text, currency)
    assert words in str(excinfo.value)


def test_parsed_amounts_format_back() -> None:
    assert money.format_money(money.parse_amount("2450.00", "EUR"), "EUR") == "€2,450.00"
    assert money.format_money(money.parse_amount("5000", "JPY"), "JPY") == "¥5,000"
