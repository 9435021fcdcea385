"""Sessions, the account and its password (DESIGN.md §4, A1-A3)."""

from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Request

from gateway import schemas
from gateway.http import route
from gateway.routes.base import RouteGroup

PUBLIC_COMPANY_FIELDS = ("customer_id", "name", "contact_name", "contact_email")


def public_company(company: dict[str, Any]) -> dict[str, Any]:
    return {key: company[key] for key in PUBLIC_COMPANY_FIELDS}


class AccountRoutes(RouteGroup):
    @route(
        "POST",
        "/api/v1/sessions",
        summary="Log in with the customer ID or contact email and the company password",
        body=schemas.LoginBody,
        response=schemas.SessionOut,
        status=201,
        tags=["account"],
        errors=["invalid_credentials", "too_many_attempts"],
    )
    def create_session(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        """`{"login": "C4829113", "password": "..."}` → 201 `{token, expires_at, company}`."""
        session = self.auth.login(body)
        return {**session, "company": public_company(session["company"])}

    @route(
        "DELETE",
        "/api/v1/sessions/current",
        summary="Log out (revoke this session)",
        status=204,
        auth="session",
        tags=["account"],
    )
    def delete_session(self, request: Request) -> None:
        self.auth.logout(self.require_token(request))

    @route(
        "GET",
        "/api/v1/account",
        summary="The logged-in company's account",
        response=schemas.Company,
        auth="session",
        tags=["account"],
    )
    def get_account(self, request: Request) -> dict[str, Any]:
        """→ `{customer_id, name, contact_name, contact_email}`."""
        return public_company(self.current_company(request))

    @route(
        "PUT",
        "/api/v1/account/password",
        summary="Change the company password; every other session is revoked",
        body=schemas.ChangePasswordBody,
        status=204,
        auth="session",
        tags=["account"],
        errors=["invalid_credentials", "weak_password", "too_many_attempts"],
    )
    def change_password(self, request: Request, body: dict[str, Any]) -> None:
        """`{"current_password": "...", "new_password": "..."}` → 204."""
        self.auth.change_password(self.require_token(request), body)

    @route(
        "POST",
        "/api/v1/password-resets",
        summary="Email a password reset link (the answer is the same for unknown logins)",
        body=schemas.ResetRequestBody,
        status=202,
        tags=["account"],
    )
    def request_password_reset(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        """`{"login": "ada@acme.test"}` → 202, whatever the login."""
        self.auth.request_password_reset(body)
        return {
            "status": "accepted",
            "message": "If the login belongs to an account, a reset link is on its way.",
        }

    @route(
        "POST",
        "/api/v1/password-resets/confirm",
        summary="Set a new password with the token from the reset email",
        body=schemas.ResetConfirmBody,
        status=204,
        tags=["account"],
        errors=["invalid_token", "weak_password"],
    )
    def confirm_password_reset(self, request: Request, body: dict[str, Any]) -> None:
        """`{"token": "...", "new_password": "..."}` → 204; 400 `invalid_token`."""
        self.auth.confirm_password_reset(body)
