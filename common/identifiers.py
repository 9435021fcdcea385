"""One canonical form for every identifier a person types.

Customers copy IDs out of emails, type them in lower case, paste them with a space: each
identifier is accepted in any case and with surrounding spaces, and stored, compared and
answered in its canonical form everywhere (HTTP, RPC, `portalctl`, events, every service's
records). Customer IDs, license IDs and receipt numbers are upper case (`C0559442`,
`L-EDPQ-YVV2`, `R-2026-000123`); product and plan codes are lower case (`CAD-PRO` →
`cad-pro`), so a vendor's upper-case SKU names the same product however it is typed.
"""

from __future__ import annotations


def customer_id(value: str) -> str:
    """`" c0559442 "` → `"C0559442"`."""
    return value.strip().upper()


def license_id(value: str) -> str:
    """`"l-edpq-yvv2"` → `"L-EDPQ-YVV2"`."""
    return value.strip().upper()


def receipt_number(value: str) -> str:
    """`"r-2026-000123"` → `"R-2026-000123"`."""
    return value.strip().upper()


def code(value: str) -> str:
    """A product or plan code: `" CAD-PRO "` → `"cad-pro"`."""
    return value.strip().lower()


def user_id(value: str) -> str:
    """A user of a company: `" u-7kqx-m2pd "` → `"U-7KQX-M2PD"`."""
    return value.strip().upper()
