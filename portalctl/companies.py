"""`portalctl company create|find|show`: sales look companies up and create them."""

from __future__ import annotations

import argparse
from typing import Any

from portalctl.base import Rpc, Subparsers, command


def create(rpc: Rpc, args: argparse.Namespace) -> dict[str, Any]:
    payload = {"name": args.name, "contact_name": args.contact_name, "contact_email": args.email}
    if args.password is not None:
        payload["password"] = args.password
    return rpc("auth", "create_company", payload)


def find(rpc: Rpc, args: argparse.Namespace) -> list[dict[str, Any]]:
    return rpc("auth", "find_companies", args.query)


def show(rpc: Rpc, args: argparse.Namespace) -> dict[str, Any]:
    return rpc("auth", "get_company", args.customer_id)


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
    parser = command(commands, common, "show", show, "show one company")
    parser.add_argument("customer_id")
