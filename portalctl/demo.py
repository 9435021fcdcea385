"""`portalctl demo`: a demo company to log in to, with what licensing and billing seed for it.

Idempotent: run it twice and the same company is reused. Each command group that has demo
data defines `seed_demo(rpc, company) -> dict` (`portalctl/licensing.py` seeds licenses with
installations, `portalctl/billing.py` plans and payments); each result is printed under the
group's name.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from common import settings
from portalctl import billing, licensing
from portalctl.base import Rpc, Subparsers, command

DEMO_EMAIL = "demo@example.com"
DEMO_PASSWORD = "demo-portal-2026"  # noqa: S105 - the documented demo login, not a secret
DEMO_COMPANY = {
    "name": "Demo Engineering GmbH",
    "contact_name": "Dana Demo",
    "contact_email": DEMO_EMAIL,
    "password": DEMO_PASSWORD,
}
SEEDERS: dict[str, Callable[[Rpc, dict[str, Any]], dict[str, Any]]] = {
    "licensing": licensing.seed_demo,
    "billing": billing.seed_demo,
}


def ensure_company(rpc: Rpc) -> tuple[dict[str, Any], bool]:
    """The demo company, created on first use; and whether it was created now."""
    for company in rpc("auth", "find_companies", DEMO_EMAIL):
        if company["contact_email"] == DEMO_EMAIL:
            return company, False
    return rpc("auth", "create_company", DEMO_COMPANY), True


def seed(rpc: Rpc) -> dict[str, Any]:
    company, created = ensure_company(rpc)
    result: dict[str, Any] = {
        "company": company,
        "created": created,
        "portal_url": settings.portal_url(),
        "login": {"customer_id": company["customer_id"], "email": DEMO_EMAIL},
        "password": DEMO_PASSWORD,
    }
    for name, seed_demo in SEEDERS.items():
        result[name] = seed_demo(rpc, company)
    return result


def run(rpc: Rpc, args: argparse.Namespace) -> dict[str, Any] | None:
    result = seed(rpc)
    if args.json:
        return result
    print(how_to_log_in(result))
    return None


def how_to_log_in(result: dict[str, Any]) -> str:
    login = result["login"]
    return (
        f"Demo company: {result['company']['name']}\n"
        f"  Portal:      {result['portal_url']}/\n"
        f"  Log in with: {login['customer_id']}  or  {login['email']}\n"
        f"  Password:    {result['password']}\n"
        f"  e.g. curl -s -X POST {result['portal_url']}/api/v1/sessions "
        f"-H 'Content-Type: application/json' "
        f'-d \'{{"login": "{login["email"]}", "password": "{result["password"]}"}}\''
    )


def register(groups: Subparsers, common: argparse.ArgumentParser) -> None:
    command(groups, common, "demo", run, "seed a demo company and print how to log in")
