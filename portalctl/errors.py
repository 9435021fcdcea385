"""What portalctl says when a command fails: one line, the problem and how to fix it.

Every expected failure (an error a service answers, bad input found before any call, a bus
that cannot be reached) is printed as `portalctl: <code>: <message> <fix>` on stderr and the
command exits non-zero; a traceback is for bugs only. The fix names the flag or command that
helps (`--force`, `portalctl product unarchive CODE`), because the person at the terminal is
the one who can act on it.
"""

from __future__ import annotations

from typing import Any

from common.errors import PortalError

# code → what the person at the terminal can do about it
FIXES: dict[str, str] = {
    "expires_in_past": "Pass --force to issue it anyway (the license starts out expired).",
    "extension_shortens": "Pass --force to move the expiry date earlier anyway.",
    "license_is_perpetual": "Pass --force to give the perpetual license an end date anyway.",
    "product_not_found": "`portalctl product list --all` lists the products; "
    "`portalctl product create` adds one.",
    "product_archived": "`portalctl product unarchive CODE` puts it back on sale.",
    "product_exists": "Choose another code, or use the existing product "
    "(`portalctl product list --all`).",
    "plan_not_found": "`portalctl plan list --all` lists the plans.",
    "plan_exists": "Choose another code, or use the existing plan (`portalctl plan list --all`).",
    "company_not_found": "`portalctl company find TEXT` finds a company by name, email or "
    "customer ID.",
    "license_not_found": "Check the license ID; `portalctl license list --customer C` lists a "
    "company's licenses.",
    "installation_not_found": "`portalctl license show LICENSE` lists its installations.",
    "payment_not_found": "Check the receipt number; `portalctl payment list --customer C` "
    "lists a company's payments.",
    "recurring_payment_not_found": "Check the recurring payment's ID.",
    "email_taken": "Another company uses it: `portalctl company show EMAIL` shows which.",
    "license_suspended": "`portalctl license resume LICENSE` lifts the suspension.",
    "weak_password": "Choose a longer, less common password (at least 10 characters), or "
    "leave --password out and the contact is emailed a link to set one.",
    "invalid_amount": "Give the amount with the currency's decimals (e.g. 120.00 for EUR) or "
    "in minor units (e.g. 12000).",
    "nothing_to_change": "Give at least one of the options (see --help).",
    "forbidden": "Run portalctl as the staff bus user: AMQP_URI must be staff's "
    "(docs/operations.md, Bus users).",
    "service_unavailable": "Check that the services run and that AMQP_URI is staff's URI of "
    "their bus, then try again.",
    "bus_refused": "Check AMQP_URI: staff's bus user, its password and the vhost "
    "(docs/operations.md, Bus users).",
    "internal_error": "A bug in a service: its log has the details.",
    "user_not_found": "`portalctl company users CUSTOMER_ID` lists a company's users (IDs look "
    "like U-7KQX-M2PD); `portalctl user show EMAIL` finds one by email.",
    "last_owner": "The company would have no active owner left: `portalctl company users "
    "CUSTOMER_ID` shows its owners; another owner must be active first (a contact who has "
    "not set a password yet gets a new link with `portalctl company resend-invite`).",
    "contact_is_owner": "To take this person's access away, make someone else the contact first "
    "(`portalctl company update CUSTOMER_ID --email NEW_EMAIL`).",
    "idempotency_key_reused": "Run the command again (each run has a request key of its own).",
    "unknown_feature": "`portalctl product show CODE` lists the product's features; "
    "`portalctl product feature add --product CODE --code C --name N` adds one.",
    "feature_exists": "The product already has it: `portalctl product show CODE` lists its "
    "features.",
    "invalid_request": "Give the activation request file exactly as the machine wrote it "
    "(`license-client offline-request --license-id L --product P --out FILE`), for this "
    "license.",
    "no_seats_available": "`portalctl license show LICENSE` lists its machines; `portalctl "
    "license deactivate LICENSE INSTALLATION` frees a seat.",
}


# (command, code) → a fix that only that command offers
COMMAND_FIXES: dict[tuple[str, str], str] = {
    ("user invite", "email_taken"): "Every email belongs to one user in one company: "
    "`portalctl user show EMAIL` shows who has it.",
    ("license issue", "product_archived"): "`portalctl product unarchive CODE` puts it back on "
    "sale; or pass --force to issue a license of the archived product anyway.",
}


class UsageError(PortalError):
    """Bad input that portalctl finds itself, before calling any service."""

    code = "usage_error"


def _fields(details: dict[str, Any], prefix: str = "") -> list[str]:
    """`{"fields": {"card": {"number": ["Bad."]}}}` → `["card.number: Bad."]`."""
    problems = []
    for name, value in details.items():
        path = f"{prefix}{name}"
        if isinstance(value, dict):
            problems.extend(_fields(value, f"{path}."))
        elif isinstance(value, list | tuple):
            problems.append(f"{path}: {' '.join(map(str, value))}")
        else:
            problems.append(f"{path}: {value}")
    return problems


def one_line(error: PortalError, command: str = "") -> str:
    """The line printed on stderr: `portalctl: <code>: <message> [<fields>] [<fix>]`;
    `command` ("license issue") picks a fix only that command offers."""
    message = error.message.strip()
    if message and message[-1] not in ".!?":
        message += "."
    parts = [f"portalctl: {error.code}: {message}"]
    details = error.details if isinstance(error.details, dict) else {}
    fields = details.get("fields")
    if isinstance(fields, dict) and fields:
        parts.append("(" + "; ".join(_fields(fields)) + ")")
    # a file's problem in words (`invalid_request`: "nonce: too short"), unless said already
    problem = details.get("problem")
    if isinstance(problem, str) and problem.strip() and problem.strip() not in message:
        field = details.get("field")
        parts.append(f"({field}: {problem.strip()})" if field else f"({problem.strip()})")
    fix = COMMAND_FIXES.get((command, error.code)) or FIXES.get(error.code)
    if fix:
        parts.append(fix)
    return " ".join(" ".join(part.split()) for part in parts)
