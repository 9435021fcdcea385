"""Who may use which route: the roles of a company's users, and the one check.

Every session route declares the roles it admits (`@route(..., roles=LICENSE_ADMINS)`); a
session route without a declaration does not load. The table of the whole API is therefore
the routes themselves (`gateway.http.ROUTES`, also in the OpenAPI document as
`x-roles`), and `tests/e2e/test_roles.py` holds every route against every role over HTTP
with its own copy of the expected table (design §10):

- `owner`: everything, and the only one who manages users and reads the audit trail;
- `license_admin`: licenses, activation passwords, installations, deactivations;
- `billing`: payments, receipts, recurring payments, purchases, billing details;
- `viewer`: reads licenses, installations and history, never an activation password.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from common.errors import Forbidden

OWNER = "owner"
LICENSE_ADMIN = "license_admin"
BILLING = "billing"
VIEWER = "viewer"
ROLES = (OWNER, LICENSE_ADMIN, BILLING, VIEWER)

EVERYONE = ROLES
OWNERS = (OWNER,)
LICENSE_ADMINS = (OWNER, LICENSE_ADMIN)
BILLING_USERS = (OWNER, BILLING)

# roles that may see a license's activation password
PASSWORD_READERS = LICENSE_ADMINS


def role_of(company: Mapping[str, Any]) -> str | None:
    """The role of the session's user (`company["user"]`, as auth's `authenticate`
    answers); a session of a company without users (an older auth) is its owner's. A role
    this gateway does not know is None: it may do nothing, rather than everything."""
    user = company.get("user")
    if user is None:
        return OWNER
    role = user.get("role")
    return role if role in ROLES else None


def check(company: Mapping[str, Any], allowed: Iterable[str]) -> None:
    """403 `forbidden` with `details.required_roles` unless the session's role is allowed."""
    allowed = tuple(allowed)
    role = role_of(company)
    if role not in allowed:
        raise Forbidden(
            "Your role does not allow this. Ask an owner of your account.",
            details={"required_roles": list(allowed), "role": role},
        )


def may(company: Mapping[str, Any], allowed: Iterable[str]) -> bool:
    """Whether the session's role is among `allowed` (for pages that hide what it cannot do)."""
    return role_of(company) in tuple(allowed)
