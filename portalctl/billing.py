"""`portalctl plan|payment|billing …`: prices, offline sales and renewal passes, for staff.

Amounts are typed as people write them, `120.00` (by the currency's decimals) or, as before,
a whole number of minor units (`12000`); `common.money.parse_amount` is the one rule, and the
services still take integer minor units.

Also `seed_demo(rpc, company)`, which `portalctl demo` calls: demo plans, a payment history
and a recurring payment with its next charge.
"""

from __future__ import annotations

import argparse
from datetime import UTC, date, datetime, time
from typing import Any

from common import identifiers
from common.errors import PortalError
from common.money import parse_amount
from portalctl.base import Rpc, Subparsers, command, feature_codes
from portalctl.errors import UsageError

DEMO_PRODUCT = {"code": "cadpro", "name": "CAD Pro"}
DEMO_PLANS = (
    {"code": "cadpro-monthly", "amount": 4900, "currency": "EUR", "interval": "month"},
    {"code": "cadpro-yearly", "amount": 49000, "currency": "EUR", "interval": "year"},
    # seats shared by the office (renews the demo's floating license)
    {
        "code": "cadpro-floating-yearly",
        "amount": 98000,
        "currency": "EUR",
        "interval": "year",
        "model": "floating",
        "lease_seconds": 900,
        "max_borrow_days": 7,
    },
)
DEMO_SEATS = 5
PAGE_MAX = 200
AMOUNT_HELP = "e.g. 120.00 (the currency's decimals) or 12000 (minor units)"


def minor_units(amount: str, currency: str) -> int:
    """`--amount` in the currency's minor units: `("120.00", "EUR")` → 12000, `("12000",
    "EUR")` → 12000, `("5000", "JPY")` → 5000; else a `UsageError` naming the problem."""
    try:
        return parse_amount(amount, currency.strip().upper())
    except ValueError as exc:
        raise UsageError(f"--amount: {exc}.", code="invalid_amount") from None


def _limit(value: str) -> int:
    try:
        limit = int(value)
    except ValueError:
        limit = 0
    if not 1 <= limit <= PAGE_MAX:
        raise argparse.ArgumentTypeError(f"give a whole number from 1 to {PAGE_MAX}")
    return limit


def create_plan(rpc: Rpc, args: argparse.Namespace) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "code": args.code,
        "product_code": args.product,
        "amount": minor_units(args.amount, args.currency),
        "currency": args.currency,
        "interval": args.interval,
    }
    if args.features:
        payload["features"] = args.features
    # only what was typed: billing applies the defaults and the rules of the numbers
    terms = (
        ("model", args.model),
        ("lease_seconds", args.lease_seconds),
        ("max_borrow_days", args.max_borrow_days),
    )
    payload.update({key: value for key, value in terms if value is not None})
    return rpc("billing", "create_plan", payload)


def list_plans(rpc: Rpc, args: argparse.Namespace) -> list[dict[str, Any]]:
    return rpc("billing", "list_plans", args.all)


def archive_plan(rpc: Rpc, args: argparse.Namespace) -> dict[str, Any]:
    return rpc("billing", "archive_plan", args.code)


def unarchive_plan(rpc: Rpc, args: argparse.Namespace) -> dict[str, Any]:
    return rpc("billing", "unarchive_plan", args.code)


def record_offline(rpc: Rpc, args: argparse.Namespace) -> dict[str, Any]:
    return rpc(
        "billing",
        "record_offline_payment",
        {
            "customer_id": args.customer,
            "amount": minor_units(args.amount, args.currency),
            "currency": args.currency,
            "description": args.description,
        },
    )


def list_payments(rpc: Rpc, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every channel's payments, newest first; `--before R` is the page after receipt R."""
    return rpc(
        "billing",
        "list_all_payments",
        status=args.status,
        customer_id=args.customer,
        limit=args.limit,
        before=args.before,
    )


def show_receipt(rpc: Rpc, args: argparse.Namespace) -> dict[str, Any]:
    return rpc("billing", "get_receipt", args.receipt_number)


def run_renewals(rpc: Rpc, args: argparse.Namespace) -> dict[str, Any]:
    as_of = None
    if args.as_of:
        as_of = datetime.combine(args.as_of, time(23, 59, 59), tzinfo=UTC).isoformat()
    return rpc("billing", "run_renewals", as_of)


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError("use YYYY-MM-DD") from exc


def _ensure_demo_product(rpc: Rpc) -> str:
    """The demo product in licensing: "exists", "created", or why it was not created."""
    try:
        products = rpc("licensing", "list_products")
        if any(item["code"] == DEMO_PRODUCT["code"] for item in products):
            return "exists"
        rpc("licensing", "create_product", dict(DEMO_PRODUCT))
        return "created"
    except PortalError as exc:
        return f"not created ({exc.code})"


def seed_demo(rpc: Rpc, company: dict[str, Any]) -> dict[str, Any]:
    """Demo plans, two past portal payments and a recurring payment for `company`."""
    product = _ensure_demo_product(rpc)
    for plan in DEMO_PLANS:
        try:
            rpc("billing", "create_plan", {**plan, "product_code": DEMO_PRODUCT["code"]})
        except PortalError as exc:
            if exc.code != "plan_exists":
                raise
    seeded = rpc(
        "billing", "seed_demo_history", company["customer_id"], "cadpro-monthly", DEMO_SEATS
    )
    recurring = rpc("billing", "list_recurring_payments", company["customer_id"])
    return {
        "product": product,
        "plans": [plan["code"] for plan in DEMO_PLANS],
        "history_created": seeded.get("created", False),
        "payments": len(rpc("billing", "list_payments", company["customer_id"])),
        "next_charges": [
            {"id": r["id"], "amount": r["amount_formatted"], "next_charge_at": r["next_charge_at"]}
            for r in recurring
            if r["status"] == "active"
        ],
        "test_cards": {
            "succeeds": "4242424242424242",
            "declined": "4000000000000002",
            "insufficient_funds": "4000000000009995",
        },
    }


def register(groups: Subparsers, common: argparse.ArgumentParser) -> None:
    group = groups.add_parser("plan", help="prices of products")
    commands = group.add_subparsers(dest="command", metavar="COMMAND", required=True)
    parser = command(
        commands,
        common,
        "create",
        create_plan,
        "create a plan (price per seat) of an existing product; it is on sale at once",
    )
    parser.add_argument(
        "--code", required=True, type=identifiers.code, help="any case; stored in lower case"
    )
    parser.add_argument("--product", required=True, type=identifiers.code, help="its code")
    parser.add_argument("--amount", required=True, help=f"per seat and interval, {AMOUNT_HELP}")
    parser.add_argument("--currency", required=True, help="ISO 4217, e.g. EUR")
    parser.add_argument("--interval", required=True, choices=("month", "year"))
    parser.add_argument(
        "--features",
        type=feature_codes,
        default=None,
        help="the product's feature codes a purchase grants, comma separated (default: none)",
    )
    parser.add_argument(
        "--model",
        choices=("node_locked", "floating"),
        default=None,
        help="the licenses it sells: node_locked (default) or floating (leases)",
    )
    parser.add_argument(
        "--lease-seconds",
        type=int,
        default=None,
        help="floating only: a lease's period, 60 to 86400 (default 900)",
    )
    parser.add_argument(
        "--max-borrow-days",
        type=int,
        default=None,
        help="floating only: the longest borrowing, 0 to 90 (0: not allowed; default 7)",
    )
    parser = command(commands, common, "list", list_plans, "list plans on sale")
    parser.add_argument("--all", action="store_true", help="include plans no longer on sale")
    parser = command(
        commands,
        common,
        "archive",
        archive_plan,
        "take a plan off sale at once (its recurring payments go on)",
    )
    parser.add_argument("code", type=identifiers.code)
    parser = command(
        commands, common, "unarchive", unarchive_plan, "put an archived plan back on sale"
    )
    parser.add_argument("code", type=identifiers.code)

    group = groups.add_parser("payment", help="payments and receipts")
    commands = group.add_subparsers(dest="command", metavar="COMMAND", required=True)
    parser = command(
        commands,
        common,
        "record-offline",
        record_offline,
        "record an offline or phone sale; the receipt is emailed, not listed in the portal",
    )
    parser.add_argument(
        "--customer", required=True, type=identifiers.customer_id, help="the customer ID"
    )
    parser.add_argument("--amount", required=True, help=AMOUNT_HELP)
    parser.add_argument("--currency", required=True, help="ISO 4217, e.g. EUR")
    parser.add_argument("--description", required=True)
    parser = command(
        commands,
        common,
        "list",
        list_payments,
        "payments of every company and channel, newest first",
    )
    parser.add_argument(
        "--status",
        choices=("paid", "refunded"),
        help="only these (refunded: paid, then refunded because no license could follow)",
    )
    parser.add_argument(
        "--customer", type=identifiers.customer_id, help="only this company's (customer ID)"
    )
    parser.add_argument(
        "--limit", type=_limit, default=50, help=f"at most this many, 1 to {PAGE_MAX} (50)"
    )
    parser.add_argument(
        "--before",
        type=identifiers.receipt_number,
        help="the next page: the payments older than this receipt number",
    )
    parser = command(commands, common, "receipt", show_receipt, "one receipt, any channel")
    parser.add_argument("receipt_number", type=identifiers.receipt_number)

    group = groups.add_parser("billing", help="billing operations")
    commands = group.add_subparsers(dest="command", metavar="COMMAND", required=True)
    parser = command(
        commands,
        common,
        "run-renewals",
        run_renewals,
        "charge due recurring payments now (safe to repeat: each period is charged once)",
    )
    parser.add_argument(
        "--as-of",
        type=_date,
        help="YYYY-MM-DD: also charge what falls due until the end of that day (UTC)",
    )
