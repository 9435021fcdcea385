"""What leaves the auth service: the dicts its RPC methods return and its events carry."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from common.timeutil import iso
from services.auth.models import Company


def company_view(company: Company) -> dict[str, Any]:
    return {
        "customer_id": company.customer_id,
        "name": company.name,
        "contact_name": company.contact_name,
        "contact_email": company.contact_email,
        "has_password": company.password_hash is not None,
        "created_at": iso(company.created_at),
    }


def session_view(raw_token: str, expires_at: datetime, company: Company) -> dict[str, Any]:
    """`login`'s answer: the token (shown once; only its hash is stored) and its company."""
    return {"token": raw_token, "expires_at": iso(expires_at), "company": company_view(company)}


def company_created(
    company: Company, set_password_url: str | None, expires_at: datetime | None
) -> dict[str, Any]:
    """`company_created`: with a set-password link (and its expiry) when no password was given."""
    event = {"company": company_view(company), "set_password_url": set_password_url}
    if set_password_url is not None:
        event["expires_at"] = iso(expires_at)
    return event


def password_reset_requested(
    company: Company, reset_url: str, expires_at: datetime
) -> dict[str, Any]:
    return {"company": company_view(company), "reset_url": reset_url, "expires_at": iso(expires_at)}


def password_changed(company: Company, how: str, now: datetime) -> dict[str, Any]:
    """`password_changed`; `how` is "change" (with the current password) or "reset"."""
    return {"company": company_view(company), "how": how, "changed_at": iso(now)}
