"""`portalctl company create|find|show|update|resend-invite|users`: sales and support look
companies up, create them, correct them, re-send the set-password invitation and list
their users (`portalctl/users.py`)."""

from __future__ import annotations

import argparse
from typing import Any

from common import identifiers
from portalctl.base import Rpc, Subparsers, command
from portalctl.errors import UsageError
from portalctl.users import register_company_users


def create(rpc: Rpc, args: argparse.Namespace) -> dict[str, Any]:
    payload = {"name": args.name, "contact_name": args.contact_name, "contact_email": args.email}
    if args.password is not None:
        payload["password"] = args.password
    return rpc("auth", "create_company", payload)


def find(rpc: Rpc, args: argparse.Namespace) -> list[dict[str, Any]]:
    return rpc("auth", "find_companies", args.query)


def show(rpc: Rpc, args: argparse.Namespace) -> dict[str, Any]:
    """By customer ID (any case) or by the contact's email (any case): auth tells them apart."""
    return rpc("auth", "get_company", args.customer_id_or_email.strip())


def update(rpc: Rpc, args: argparse.Namespace) -> dict[str, Any]:
    changes = {
        field: value
        for field, value in (
            ("name", args.name),
            ("contact_name", args.contact_name),
            ("contact_email", args.email),
        )
        if value is not None
    }
    if not changes:
        raise UsageError("Nothing to change.", code="nothing_to_change")
    return rpc("auth", "update_company", args.customer_id, changes)


def resend_invite(rpc: Rpc, args: argparse.Namespace) -> dict[str, Any]:
    return rpc("auth", "resend_invite", args.customer_id)


def register(groups: Subparsers, common: argparse.ArgumentParser) -> None:
    group = groups.add_parser("company", help="companies (customers)")
    commands = group.add_subparsers(dest="command", metavar="COMMAND", required=True)
    parser = command(commands, common, "create", create, "create a company")
    parser.add_argument("--name", required=True)
    parser.add_argument("--contact-name", required=True)
    parser.add_argument("--email", required=True, help="the contact person's email (the login)")
    parser.add_argument(
        "--password",
        help="the company-wide password; without it the contact is emailed a link to set one",
    )
    parser = command(commands, common, "find", find, "find companies by name, email or customer ID")
    parser.add_argument("query")
    parser = command(
        commands, common, "show", show, "show one company, by customer ID or contact email"
    )
    parser.add_argument("customer_id_or_email", metavar="CUSTOMER_ID_OR_EMAIL")
    parser = command(
        commands,
        common,
        "update",
        update,
        "change a company's name, contact name or contact email (the login)",
    )
    parser.add_argument("customer_id", type=identifiers.customer_id, metavar="CUSTOMER_ID")
    parser.add_argument("--name")
    parser.add_argument("--contact-name")
    parser.add_argument("--email", help="the new contact email; no other company may use it")
    parser = command(
        commands,
        common,
        "resend-invite",
        resend_invite,
        "email the contact a new set-password link (the old one stops working); for a "
        "company that has not set its password yet",
    )
    parser.add_argument("customer_id", type=identifiers.customer_id, metavar="CUSTOMER_ID")
    register_company_users(commands, common)
