"""What leaves the auth service: the dicts its RPC methods return and its events carry."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from common.timeutil import iso
from services.auth.models import Company, PasswordRequest


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


def company_created(company: Company, setup: PasswordRequest | None) -> dict[str, Any]:
    """`company_created`: with the set-up request (its ID and expiry) when no password was
    given. Never a link: notify asks `password_link` for it when it sends the email."""
    event: dict[str, Any] = {"company": company_view(company), "request_id": None}
    if setup is not None:
        event.update(request_id=setup.request_id, expires_at=iso(setup.expires_at))
    return event


def company_invited(company: Company, setup: PasswordRequest) -> dict[str, Any]:
    """`company_invited`: a new set-up request for a company without a password (its ID and
    expiry, never a link), with the company as `company_created` carries it."""
    return {
        "customer_id": company.customer_id,
        "contact_email": company.contact_email,
        "company": company_view(company),
        "request_id": setup.request_id,
        "expires_at": iso(setup.expires_at),
    }


def invite_view(company: Company) -> dict[str, Any]:
    """`resend_invite`'s answer: the invitation is on its way to the contact email."""
    return {
        "customer_id": company.customer_id,
        "contact_email": company.contact_email,
        "sent": True,
    }


def password_reset_requested(company: Company, request: PasswordRequest) -> dict[str, Any]:
    """`password_reset_requested`: the request's ID and expiry, never a link."""
    return {
        "company": company_view(company),
        "request_id": request.request_id,
        "expires_at": iso(request.expires_at),
    }


def password_link(url: str, expires_at: datetime) -> dict[str, Any]:
    """`password_link`'s answer: the link with a fresh token (shown once; only its hash is
    stored), and when it expires."""
    return {"url": url, "expires_at": iso(expires_at)}


def password_changed(company: Company, how: str, now: datetime) -> dict[str, Any]:
    """`password_changed`; `how` is "change" (with the current password) or "reset"."""
    return {"company": company_view(company), "how": how, "changed_at": iso(now)}
