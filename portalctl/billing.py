"""`portalctl plan|payment|billing …`: prices, offline sales and renewal passes, for staff.

Also `seed_demo(rpc, company)`, which `portalctl demo` calls: demo plans, a payment history
and a recurring payment with its next charge.
"""

from __future__ import annotations

import argparse
from datetime import UTC, date, datetime, time
from typing import Any

from common.errors import PortalError
from portalctl.base import Rpc, Subparsers, command

DEMO_PRODUCT = {"code": "cadpro", "name": "CAD Pro"}
DEMO_PLANS = (
    {"code": "cadpro-monthly", "amount": 4900, "currency": "EUR", "interval": "month"},
    {"code": "cadpro-yearly", "amount": 49000, "currency": "EUR", "interval": "year"},
)
DEMO_SEATS = 5


def create_plan(rpc: Rpc, args: argparse.Namespace) -> dict[str, Any]:
    return rpc(
        "billing",
        "create_plan",
        {
            "code": args.code,
            "product_code": args.product,
            "amount": args.amount,
            "currency": args.currency,
            "interval": args.interval,
        },
    )


def list_plans(rpc: Rpc, args: argparse.Namespace) -> list[dict[str, Any]]:
    return rpc("billing", "list_plans", args.all)


def record_offline(rpc: Rpc, args: argparse.Namespace) -> dict[str, Any]:
    return rpc(
        "billing",
        "record_offline_payment",
        {
            "customer_id": args.customer,
            "amount": args.amount,
            "currency": args.currency,
            "description": args.description,
        },
    )


def list_payments(rpc: Rpc, args: argparse.Namespace) -> list[dict[str, Any]]:
    return rpc("billing", "list_payments", args.customer)


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
    parser = command(commands, common, "create", create_plan, "create a plan (price per seat)")
    parser.add_argument("--code", required=True)
    parser.add_argument("--product", required=True, help="the product code")
    parser.add_argument(
        "--amount", required=True, type=int, help="per seat and interval, in minor units"
    )
    parser.add_argument("--currency", required=True, help="ISO 4217, e.g. EUR")
    parser.add_argument("--interval", required=True, choices=("month", "year"))
    parser = command(commands, common, "list", list_plans, "list plans on sale")
    parser.add_argument("--all", action="store_true", help="include plans no longer on sale")

    group = groups.add_parser("payment", help="payments and receipts")
    commands = group.add_subparsers(dest="command", metavar="COMMAND", required=True)
    parser = command(
        commands,
        common,
        "record-offline",
        record_offline,
        "record an offline or phone sale; the receipt is emailed, not listed in the portal",
    )
    parser.add_argument("--customer", required=True, help="the customer ID")
    parser.add_argument("--amount", required=True, type=int, help="in minor units")
    parser.add_argument("--currency", required=True, help="ISO 4217, e.g. EUR")
    parser.add_argument("--description", required=True)
    parser = command(commands, common, "list", list_payments, "a company's portal payments")
    parser.add_argument("--customer", required=True, help="the customer ID")
    parser = command(commands, common, "receipt", show_receipt, "one receipt, any channel")
    parser.add_argument("receipt_number")

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
