"""Money as people read and type it: one format everywhere, amounts parsed by the currency.

Amounts travel as integer minor units with an ISO 4217 currency code. `format_money` is the
one way money is shown (portal, receipts, emails, `portalctl`): with the currency's symbol
where people read it without doubt (`"€2,450.00"`, `"$19.99"`, `"£5.00"`, `"¥5,000"`),
else its code and a space (`"CHF 2,450.00"`, `"KWD 1,234.567"`). `parse_amount` reads what
a person types (`"120.00"`) into minor units by the currency's decimals. Pure functions,
no float anywhere.
"""

from __future__ import annotations

import re

# ISO 4217 minor units: every currency not listed here has 2 decimals.
_ZERO_DECIMALS = frozenset(
    {"BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI",
     "VND", "VUV", "XAF", "XOF", "XPF"}
)  # fmt: skip
_THREE_DECIMALS = frozenset({"BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"})

# the currencies shown by their symbol; every other one by its code and a space (a symbol
# such as "kr" or "Fr." names several currencies, and "$" alone is the US dollar here)
SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£", "JPY": "¥"}

_AMOUNT = re.compile(r"^(\d+)(?:\.(\d*))?$")


def decimals(currency: str) -> int:
    """Digits after the decimal point: `decimals("EUR")` → 2, `"JPY"` → 0, `"KWD"` → 3."""
    code = currency.strip().upper()
    if code in _ZERO_DECIMALS:
        return 0
    if code in _THREE_DECIMALS:
        return 3
    return 2


def format_money(minor: int, currency: str) -> str:
    """`format_money(245000, "EUR")` → `"€2,450.00"`; `(5000, "JPY")` → `"¥5,000"`;
    `(245000, "CHF")` → `"CHF 2,450.00"` (no symbol: the code and a space).

    Integers of minor units only (a float or a bool is a `TypeError`, never rounded);
    a negative amount reads `"-€19.99"` (`"-CHF 19.99"`).
    """
    if not isinstance(minor, int) or isinstance(minor, bool):
        raise TypeError("amounts are integers of minor units")
    code = currency.strip().upper()
    places = decimals(code)
    sign = "-" if minor < 0 else ""
    whole, fraction = divmod(abs(minor), 10**places)
    text = f"{whole:,}"
    if places:
        text += "." + str(fraction).rjust(places, "0")
    symbol = SYMBOLS.get(code)
    return f"{sign}{symbol}{text}" if symbol else f"{sign}{code} {text}"


def parse_amount(text: str, currency: str) -> int:
    """Minor units of an amount a person typed, by the currency's decimals.

    `parse_amount("120.00", "EUR")` → `12000`; `("120.5", "EUR")` → `12050`;
    `("5000", "JPY")` → `5000`. A plain integer with no point is taken as minor units, as
    before amounts could be typed with decimals: `("12000", "EUR")` → `12000`. More decimals
    than the currency has (`("1.005", "EUR")`, `("5000.0", "JPY")`), a sign, a thousands
    separator or anything but digits and one point is a `ValueError` naming the problem.
    """
    if not isinstance(text, str):
        raise ValueError(f"amount must be text such as '120.00', not {type(text).__name__}")
    raw = text.strip()
    code = currency.strip().upper()
    places = decimals(code)
    match = _AMOUNT.match(raw)
    if match is None:
        example = "120" if places == 0 else "120." + "0" * places
        raise ValueError(
            f"invalid amount {text!r}: use digits and at most one '.', e.g. {example!r} "
            f"({code}), or an integer of minor units"
        )
    whole, fraction = match.group(1), match.group(2)
    if fraction is None:
        return int(whole)
    if len(fraction) > places:
        raise ValueError(
            f"invalid amount {text!r}: {code} has {places} decimal"
            f"{'' if places == 1 else 's'}, the amount has {len(fraction)}"
        )
    return int(whole) * 10**places + int(fraction.ljust(places, "0") or "0")
