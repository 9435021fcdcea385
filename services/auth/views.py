"""What leaves the auth service: the dicts its RPC methods return and its events carry."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from common.timeutil import iso
from services.auth import domain
from services.auth.models import Company, PasswordRequest, PasswordToken, User


def company_view(company: Company) -> dict[str, Any]:
    return {
        "customer_id": company.customer_id,
        "name": company.name,
        "contact_name": company.contact_name,
        "contact_email": company.contact_email,
        "has_password": company.password_hash is not None,
        "created_at": iso(company.created_at),
    }


def user_summary(user: User) -> dict[str, Any]:
    """Who a session or an event is about: `{user_id, email, name, role}`."""
    return {"user_id": user.user_id, "email": user.email, "name": user.name, "role": user.role}


def company_summary(company: Company) -> dict[str, Any]:
    """The company as the user events name it."""
    return {"customer_id": company.customer_id, "name": company.name}


def user_view(user: User, invitation_expires_at: datetime | None = None) -> dict[str, Any]:
    """A user as `list_users` and the management methods answer it."""
    return {
        **user_summary(user),
        "status": user.status,
        "contact": user.is_contact,
        "created_at": iso(user.created_at),
        "last_login_at": iso(user.last_login_at),
        "invitation_expires_at": iso(invitation_expires_at),
    }


def found_user(user: User, company: Company, invitation_expires_at: datetime | None) -> dict:
    """`find_user`'s answer: the user, and the company they belong to."""
    return {**user_view(user, invitation_expires_at), "customer_id": company.customer_id}


def authenticated(company: Company, user: User) -> dict[str, Any]:
    """`authenticate`'s answer: the session's company, and its user."""
    return {**company_view(company), "user": user_summary(user)}


def session_view(
    raw_token: str, expires_at: datetime, company: Company, user: User
) -> dict[str, Any]:
    """`login`'s answer: the token (shown once; only its hash is stored), its company and
    its user."""
    return {
        "token": raw_token,
        "expires_at": iso(expires_at),
        "company": company_view(company),
        "user": user_summary(user),
    }


def preferences(user: User) -> dict[str, bool]:
    return {notice: bool(getattr(user, f"notify_{notice}")) for notice in domain.NOTICES}


def preferences_view(user: User) -> dict[str, Any]:
    """`{"preferences": {notice: bool}, "available": [the notices the role may receive]}`."""
    return {"preferences": preferences(user), "available": list(domain.notices_of(user.role))}


def recipient(user: User) -> dict[str, Any]:
    return {"user_id": user.user_id, "email": user.email, "name": user.name}


def user_invited(
    company: Company, user: User, request: PasswordRequest, invited_by: str
) -> dict[str, Any]:
    """`user_invited`: the invitation request's ID and expiry, never a link."""
    return {
        "company": company_summary(company),
        "user": user_summary(user),
        "request_id": request.request_id,
        "expires_at": iso(request.expires_at),
        "invited_by": invited_by,
    }


def user_role_changed(
    company: Company, user: User, old_role: str, changed_by: str
) -> dict[str, Any]:
    return {
        "company": company_summary(company),
        "user": user_summary(user),
        "old_role": old_role,
        "new_role": user.role,
        "changed_by": changed_by,
    }


def user_disabled(company: Company, user: User, disabled_by: str) -> dict[str, Any]:
    return {
        "company": company_summary(company),
        "user": user_summary(user),
        "disabled_by": disabled_by,
    }


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


def password_reset_requested(
    company: Company, user: User, request: PasswordRequest
) -> dict[str, Any]:
    """`password_reset_requested`: the request's ID and expiry, never a link; notify emails
    `user.email`."""
    return {
        "company": company_view(company),
        "user": user_summary(user),
        "request_id": request.request_id,
        "expires_at": iso(request.expires_at),
    }


def password_link(url: str, expires_at: datetime) -> dict[str, Any]:
    """`password_link`'s answer: the link with a fresh token (shown once; only its hash is
    stored), and when it expires."""
    return {"url": url, "expires_at": iso(expires_at)}


def password_changed(company: Company, user: User, how: str, now: datetime) -> dict[str, Any]:
    """`password_changed` of `user`; `how` is "change" (with the current password) or
    "reset"."""
    return {
        "company": company_view(company),
        "user": user_summary(user),
        "how": how,
        "changed_at": iso(now),
    }


def token_check(token: PasswordToken, user: User, company: Company) -> dict[str, Any]:
    """`check_password_token`'s answer for a usable token: `{valid: true, purpose: "reset" |
    "setup" | "invite", email, company_name}` (whose password the link sets)."""
    return {
        "valid": True,
        "purpose": token.purpose,
        "email": user.email,
        "company_name": company.name,
    }
