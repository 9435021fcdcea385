"""`portalctl company users` and `portalctl user invite|show|disable|enable`: support sees a
company's users and acts for its owners (an owner locked out, someone who left).

A user is named by email or by user ID (`U-7KQX-M2PD`, any case) wherever one is enough:
auth's staff-only `find_user` says which company they belong to, and the change is then
made as for that company (`disable_user(customer_id, user_id)`), with auth's own rules (the
contact is always an owner; a company keeps an active owner). Every call carries staff as
the actor (`portalctl.cli`), so the company's activity log says who acted.
"""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import Any

from common import identifiers
from portalctl.base import Rpc, Subparsers, command
from portalctl.output import Table

ROLES = ("owner", "license_admin", "billing", "viewer")
USER_COLUMNS = (
    ("user_id", "USER ID"),
    ("email", "EMAIL"),
    ("name", "NAME"),
    ("role", "ROLE"),
    ("status", "STATUS"),
    ("last_login", "LAST LOGIN"),
)


def role(value: str) -> str:
    """`" License-Admin "` → `"license_admin"`; one of `ROLES`."""
    name = value.strip().lower().replace("-", "_")
    if name not in ROLES:
        raise argparse.ArgumentTypeError(f"invalid role {value!r} (choose from {', '.join(ROLES)})")
    return name


def user_ref(value: str) -> str:
    """An email as typed (auth compares emails without case), or a user ID in upper case."""
    text = value.strip()
    return text if "@" in text else identifiers.user_id(text)


def _moment(value: str | None, empty: str) -> str:
    """`2026-12-02T09:30:12.5+00:00` → `2026-12-02 09:30 UTC`; `empty` for none."""
    if not value:
        return empty
    try:
        return f"{datetime.fromisoformat(value):%Y-%m-%d %H:%M} UTC"
    except ValueError:
        return value


def user_row(user: dict[str, Any]) -> dict[str, str]:
    """One line of `company users`: the contact is marked, never-used logins say so."""
    role_text = user.get("role") or ""
    if user.get("contact"):
        role_text += " (contact)"
    status = user.get("status") or ""
    if status == "invited" and user.get("invitation_expires_at"):
        status += f" until {_moment(user['invitation_expires_at'], '')}"
    return {
        "user_id": user.get("user_id") or "",
        "email": user.get("email") or "",
        "name": user.get("name") or "",
        "role": role_text,
        "status": status,
        "last_login": _moment(user.get("last_login_at"), "never"),
    }


def list_users(rpc: Rpc, args: argparse.Namespace) -> Table:
    """`--json` → auth's answer `{"users": [view, …]}` (contact first, then by email)."""
    answer = rpc("auth", "list_users", args.customer_id)
    return Table(USER_COLUMNS, [user_row(user) for user in answer["users"]], answer)


def invite(rpc: Rpc, args: argparse.Namespace) -> dict[str, Any]:
    """The invited user (`invited`); auth emails them a link to accept, valid 7 days."""
    payload = {"email": args.email.strip(), "name": args.name.strip(), "role": args.role}
    return rpc("auth", "invite_user", args.customer_id, payload)


def show(rpc: Rpc, args: argparse.Namespace) -> dict[str, Any]:
    """The user and their company's customer ID."""
    return rpc("auth", "find_user", args.user)


def _change(rpc: Rpc, args: argparse.Namespace, method: str) -> dict[str, Any]:
    found = rpc("auth", "find_user", args.user)
    customer_id = found["customer_id"]
    user = rpc("auth", method, customer_id, found["user_id"])
    return {**user, "customer_id": customer_id}


def disable(rpc: Rpc, args: argparse.Namespace) -> dict[str, Any]:
    """Disabled at once: auth ends the user's sessions, and emails them."""
    return _change(rpc, args, "disable_user")


def enable(rpc: Rpc, args: argparse.Namespace) -> dict[str, Any]:
    return _change(rpc, args, "enable_user")


def register_company_users(commands: Subparsers, common: argparse.ArgumentParser) -> None:
    """`portalctl company users CUSTOMER_ID`, in the `company` group."""
    parser = command(
        commands,
        common,
        "users",
        list_users,
        "list a company's users: ID, email, name, role, status, last login",
    )
    parser.add_argument("customer_id", type=identifiers.customer_id, metavar="CUSTOMER_ID")


def register(groups: Subparsers, common: argparse.ArgumentParser) -> None:
    group = groups.add_parser("user", help="users of companies (team accounts)")
    commands = group.add_subparsers(dest="command", metavar="COMMAND", required=True)
    parser = command(
        commands,
        common,
        "invite",
        invite,
        "invite a user to a company: they are emailed a link to choose a password (7 days)",
    )
    parser.add_argument("customer_id", type=identifiers.customer_id, metavar="CUSTOMER_ID")
    parser.add_argument("email", metavar="EMAIL", help="their email (their login)")
    parser.add_argument("--name", required=True, help="their name, as emails greet them")
    parser.add_argument(
        "--role", required=True, type=role, metavar="ROLE", help=f"one of {', '.join(ROLES)}"
    )
    parser = command(
        commands, common, "show", show, "show a user and their company, by email or user ID"
    )
    parser.add_argument("user", type=user_ref, metavar="EMAIL_OR_USER_ID")
    parser = command(
        commands,
        common,
        "disable",
        disable,
        "disable a user: signed out at once, no sign-in until enabled (the contact cannot be)",
    )
    parser.add_argument("user", type=user_ref, metavar="EMAIL_OR_USER_ID")
    parser = command(commands, common, "enable", enable, "enable a disabled user again")
    parser.add_argument("user", type=user_ref, metavar="EMAIL_OR_USER_ID")
