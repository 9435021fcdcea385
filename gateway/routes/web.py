"""The portal: its pages, its browser session and its static files (no CDN, no build step).

Pages are Jinja templates in `gateway/web/pages/`, rendered with the company of the session
for the header; each page's script (`gateway/web/static/*.js`, ES modules) then fills it
from the JSON API. The browser never sees the session token: `POST /web/session` logs in like
`POST /api/v1/sessions` but puts the token in an HttpOnly, SameSite cookie, plus a readable
CSRF cookie that the script copies into `X-CSRF-Token` on every state change
(checked in `RouteGroup.require_token`).
"""

from __future__ import annotations

import mimetypes
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, select_autoescape
from werkzeug.exceptions import NotFound
from werkzeug.security import safe_join
from werkzeug.utils import redirect
from werkzeug.wrappers import Request, Response

from common import settings
from common.errors import PortalError
from gateway import schemas
from gateway.errors import SECURITY_HEADERS, json_response
from gateway.http import route
from gateway.routes.accounts import public_company
from gateway.routes.base import (
    CSRF_COOKIE,
    CSRF_HEADER,
    SESSION_COOKIE,
    RouteGroup,
    csrf_matches,
    csrf_token_for,
)

WEB = Path(__file__).resolve().parent.parent / "web"

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "object-src 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}

_pages = Environment(
    loader=FileSystemLoader(str(WEB / "pages")),
    autoescape=select_autoescape(default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


def secure_cookies() -> bool:
    """Cookies are `Secure` when the portal is served over HTTPS."""
    return settings.portal_url().lower().startswith("https://")


def render(name: str, status: int = 200, **context: Any) -> Response:
    html = _pages.get_template(name).render(**context)
    response = Response(html, status=status, mimetype="text/html")
    response.headers.update(PAGE_HEADERS)
    return response


def set_session_cookies(response: Response, token: str, expires_at: str | None) -> None:
    max_age = None
    if expires_at:
        expires = datetime.fromisoformat(expires_at)
        if expires.tzinfo is None:
            expires = expires.replace(tzinfo=UTC)
        max_age = max(0, int((expires - datetime.now(UTC)).total_seconds()))
    secure = secure_cookies()
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=max_age,
        path="/",
        secure=secure,
        httponly=True,
        samesite="Lax",
    )
    response.set_cookie(
        CSRF_COOKIE,
        csrf_token_for(token),
        max_age=max_age,
        path="/",
        secure=secure,
        httponly=False,
        samesite="Strict",
    )


def clear_session_cookies(response: Response) -> None:
    secure = secure_cookies()
    response.delete_cookie(SESSION_COOKIE, path="/", secure=secure, httponly=True, samesite="Lax")
    response.delete_cookie(CSRF_COOKIE, path="/", secure=secure, samesite="Strict")


def to_login(request: Request) -> Response:
    """Redirect to the login page, coming back here afterwards."""
    target = request.path
    if request.query_string:
        target += "?" + request.query_string.decode("latin-1")
    response = redirect("/login?next=" + quote(target, safe="/"), code=303)
    response.headers.update(PAGE_HEADERS)
    return response


class WebRoutes(RouteGroup):
    # --- helpers ------------------------------------------------------------------------

    def portal_page(self, request: Request, template: str, **context: Any) -> Response:
        """A page for a logged-in company, or a redirect to the login page."""
        token = request.cookies.get(SESSION_COOKIE)
        if not token or len(token) > 200:
            return to_login(request)
        try:
            company = public_company(self.auth.authenticate(token))
        except PortalError as exc:
            if exc.code == "unauthenticated":
                response = to_login(request)
                clear_session_cookies(response)
                return response
            return render(
                "unavailable.html", status=503, title="Temporarily unavailable", company=None
            )
        csrf = csrf_token_for(token)
        response = render(template, company=company, csrf=csrf, **context)
        if request.cookies.get(CSRF_COOKIE) != csrf:
            response.set_cookie(
                CSRF_COOKIE, csrf, path="/", secure=secure_cookies(), samesite="Strict"
            )
        return response

    def public_page(self, request: Request, template: str, **context: Any) -> Response:
        return render(template, company=None, **context)

    # --- pages --------------------------------------------------------------------------

    @route(
        "GET",
        "/",
        summary="The portal: licenses when logged in, else the login page",
        tags=["web"],
        content_type="text/html",
    )
    def index(self, request: Request) -> Response:
        target = "/licenses" if request.cookies.get(SESSION_COOKIE) else "/login"
        return redirect(target, code=303)

    @route("GET", "/login", summary="Log in page", tags=["web"], content_type="text/html")
    def login_page(self, request: Request) -> Response:
        token = request.cookies.get(SESSION_COOKIE)
        if token and len(token) <= 200 and not request.args.get("signed_out"):
            try:
                self.auth.authenticate(token)
            except PortalError:
                pass  # expired, revoked or auth is down: the login form it is
            else:
                return redirect("/licenses", code=303)
        return self.public_page(request, "login.html", title="Log in")

    @route(
        "GET",
        "/forgot-password",
        summary="Ask for a password reset link",
        tags=["web"],
        content_type="text/html",
    )
    def forgot_password_page(self, request: Request) -> Response:
        return self.public_page(request, "forgot-password.html", title="Reset your password")

    @route(
        "GET",
        "/reset-password",
        summary="The page a reset email links to (the token travels in the URL fragment)",
        tags=["web"],
        content_type="text/html",
    )
    def reset_password_page(self, request: Request) -> Response:
        return self.public_page(request, "reset-password.html", title="Set a new password")

    @route(
        "GET", "/licenses", summary="Licenses & Activations", tags=["web"], content_type="text/html"
    )
    def licenses_page(self, request: Request) -> Response:
        return self.portal_page(
            request, "licenses.html", title="Licenses & Activations", nav="licenses"
        )

    @route(
        "GET",
        "/licenses/<license_id>",
        summary="License details",
        tags=["web"],
        content_type="text/html",
    )
    def license_page(self, request: Request, license_id: str) -> Response:
        return self.portal_page(
            request,
            "license.html",
            title=f"License {license_id[:64]}",
            nav="licenses",
            license_id=license_id[:64],
        )

    @route("GET", "/payments", summary="Payment history", tags=["web"], content_type="text/html")
    def payments_page(self, request: Request) -> Response:
        return self.portal_page(request, "payments.html", title="Payment history", nav="payments")

    @route(
        "GET",
        "/recurring-payments",
        summary="Recurring payments",
        tags=["web"],
        content_type="text/html",
    )
    def recurring_payments_page(self, request: Request) -> Response:
        return self.portal_page(
            request, "recurring-payments.html", title="Recurring payments", nav="recurring"
        )

    @route("GET", "/buy", summary="Buy or renew a plan", tags=["web"], content_type="text/html")
    def buy_page(self, request: Request) -> Response:
        return self.portal_page(request, "buy.html", title="Buy or renew", nav="buy")

    @route(
        "GET",
        "/account",
        summary="Company account and password",
        tags=["web"],
        content_type="text/html",
    )
    def account_page(self, request: Request) -> Response:
        return self.portal_page(request, "account.html", title="Account", nav="account")

    # --- browser session ----------------------------------------------------------------

    @route(
        "POST",
        "/web/session",
        summary="Log in the portal: the session goes into an HttpOnly cookie, not the body",
        body=schemas.LoginBody,
        response=schemas.WebSessionOut,
        status=201,
        tags=["web"],
        errors=["invalid_credentials", "too_many_attempts", "csrf_failed"],
    )
    def create_web_session(self, request: Request, body: dict[str, Any]) -> Response:
        """`{"login": "C4829113", "password": "..."}` → 201 `{expires_at, company}`, cookies
        `portal_session` (HttpOnly, SameSite=Lax) and `portal_csrf` (readable, Strict)."""
        # login CSRF: a cross-site form cannot send JSON, and browsers say where a fetch is from
        is_json = request.mimetype == "application/json"
        if not is_json or request.headers.get("Sec-Fetch-Site") == "cross-site":
            raise PortalError("Log in from the portal's own page.", code="csrf_failed")
        session = self.auth.login(body)
        response = json_response(
            {"expires_at": session["expires_at"], "company": public_company(session["company"])},
            201,
        )
        set_session_cookies(response, session["token"], session["expires_at"])
        return response

    @route(
        "POST",
        "/web/logout",
        summary="Log out of the portal: revoke the cookie session and clear the cookies",
        tags=["web"],
        errors=["csrf_failed"],
        content_type="text/html",
    )
    def web_logout(self, request: Request) -> Response:
        """A form post (`csrf` field) or a fetch (`X-CSRF-Token`) → 303 to the login page."""
        token = request.cookies.get(SESSION_COOKIE)
        if token and len(token) <= 200:
            sent = request.headers.get(CSRF_HEADER) or request.form.get("csrf", "")
            if not csrf_matches(token, sent):
                return render(
                    "unavailable.html",
                    status=403,
                    title="Please reload",
                    company=None,
                    message="This page was out of date. Reload it, then log out again.",
                )
            try:
                self.auth.logout(token)
            except PortalError as exc:
                if exc.code != "unauthenticated":
                    raise
        response = redirect("/login?signed_out=1", code=303)
        response.headers.update(SECURITY_HEADERS)
        clear_session_cookies(response)
        return response

    # --- static files -------------------------------------------------------------------

    @route(
        "GET",
        "/static/<path:name>",
        summary="Static files of the portal",
        tags=["web"],
        content_type="application/octet-stream",
    )
    def static(self, request: Request, name: str) -> Response:
        path = safe_join(str(WEB / "static"), name)
        if path is None or not Path(path).is_file():
            raise NotFound()
        mimetype = mimetypes.guess_type(path)[0] or "application/octet-stream"
        if path.endswith(".js"):
            mimetype = "text/javascript"  # ES modules need a JavaScript type
        response = Response(Path(path).read_bytes(), mimetype=mimetype)
        response.headers["Cache-Control"] = "no-cache"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response
