"""Who is calling: the session token, the portal's cookies and their CSRF check.

API clients send `Authorization: Bearer <token>`. The portal's browser never sees the token:
it is in an HttpOnly, SameSite cookie, plus a readable CSRF cookie that the page's script
copies into `X-CSRF-Token` on every state change (double submit). The CSRF token is an HMAC
of the session token, so nothing is stored and a cookie planted by someone else is worthless
without SECRET_KEY.

Over HTTPS (PORTAL_URL `https://…`) both cookies are `Secure` and named with the `__Host-`
prefix (`__Host-portal_session`), which browsers accept only from this very host over
HTTPS, for the whole site: no sibling subdomain can plant or shadow them. Over plain HTTP
(`make run`) they keep their plain names, which a browser would refuse with the prefix.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from werkzeug.wrappers import Request, Response

from common import secrets
from common.errors import PortalError
from common.schemas import TOKEN_MAX
from gateway.responses import https

SESSION_COOKIE = "portal_session"
CSRF_COOKIE = "portal_csrf"
HOST_PREFIX = "__Host-"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def fits(token: str | None) -> bool:
    """Whether `token` could be a session at all (present, at most TOKEN_MAX long): a token
    that cannot is refused without asking auth."""
    return bool(token) and len(token) <= TOKEN_MAX


def bearer_token(request: Request) -> str | None:
    """The token of an `Authorization: Bearer` header (API clients), if any."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def session_cookie() -> str:
    """The name of the session cookie: `__Host-portal_session` over HTTPS."""
    return HOST_PREFIX + SESSION_COOKIE if secure_cookies() else SESSION_COOKIE


def csrf_cookie() -> str:
    """The name of the CSRF cookie: `__Host-portal_csrf` over HTTPS."""
    return HOST_PREFIX + CSRF_COOKIE if secure_cookies() else CSRF_COOKIE


def cookie_token(request: Request) -> str | None:
    """The portal's session cookie, when it could be a session."""
    token = request.cookies.get(session_cookie())
    return token if fits(token) else None


def require_token(request: Request) -> str:
    """The request's session token (bearer, else cookie), CSRF-checked for a cookie session;
    401 `unauthenticated` without asking anyone when there is none."""
    bearer = bearer_token(request)
    token = bearer or request.cookies.get(session_cookie())
    if not fits(token):
        raise PortalError(
            "Please log in: the session is missing, expired or revoked.",
            code="unauthenticated",
        )
    # another site's page can make the browser send the cookie, never a bearer header
    exempt = bearer is not None or request.method in SAFE_METHODS
    if not exempt and not csrf_matches(token, request.headers.get(CSRF_HEADER, "")):
        raise PortalError(
            "The security check of this request failed. Reload the page and try again.",
            code="csrf_failed",
        )
    return token


@lru_cache(maxsize=1)
def _csrf_key() -> bytes:
    return hmac.new(secrets.secret_key(), b"portal csrf v1", hashlib.sha256).digest()


def csrf_token_for(token: str) -> str:
    """The CSRF token that belongs to the cookie session `token`."""
    raw = token.encode("utf-8", "surrogatepass")
    return hmac.new(_csrf_key(), raw, hashlib.sha256).hexdigest()


def csrf_matches(token: str, sent: str) -> bool:
    """Whether `sent` is the CSRF token of the cookie session `token` (constant time)."""
    given = sent.encode("utf-8", "surrogatepass")
    return bool(given) and hmac.compare_digest(given, csrf_token_for(token).encode())


def check_login_origin(request: Request) -> None:
    """403 `csrf_failed` for a portal login that is not the portal's own fetch.

    There is no session yet to bind a CSRF token to; but a cross-site form cannot send JSON,
    and browsers say where a fetch comes from.
    """
    is_json = request.mimetype == "application/json"
    if not is_json or request.headers.get("Sec-Fetch-Site") == "cross-site":
        raise PortalError("Log in from the portal's own page.", code="csrf_failed")


def logged_in(auth: Any, request: Request) -> bool:
    """Whether the portal cookie is a live session (expired, revoked or auth down: no)."""
    token = cookie_token(request)
    if token is None:
        return False
    try:
        auth.authenticate(token)
    except PortalError:
        return False
    return True


def end_cookie_session(auth: Any, request: Request) -> bool:
    """Revoke the portal cookie's session, if any; False when the CSRF token (form field
    `csrf` of the page's urlencoded form, or `X-CSRF-Token`) does not match it, and nothing
    is revoked. No other kind of body (multipart, ...) is ever parsed."""
    token = cookie_token(request)
    if token is None:
        return True
    sent = request.headers.get(CSRF_HEADER)
    if not sent and request.mimetype == "application/x-www-form-urlencoded":
        sent = request.form.get("csrf", "")
    if not csrf_matches(token, sent or ""):
        return False
    try:
        auth.logout(token)
    except PortalError as exc:
        if exc.code != "unauthenticated":
            raise
    return True


def secure_cookies() -> bool:
    """Cookies are `Secure` (and `__Host-`) when the portal is served over HTTPS."""
    return https()


def set_cookies(response: Response, token: str, expires_at: str | None) -> None:
    """The session cookie (HttpOnly, Lax) and its CSRF cookie (readable, Strict), both
    expiring with the session."""
    max_age = None
    if expires_at:
        expires = datetime.fromisoformat(expires_at)
        if expires.tzinfo is None:
            expires = expires.replace(tzinfo=UTC)
        max_age = max(0, int((expires - datetime.now(UTC)).total_seconds()))
    secure = secure_cookies()
    response.set_cookie(
        session_cookie(),
        token,
        max_age=max_age,
        path="/",
        secure=secure,
        httponly=True,
        samesite="Lax",
    )
    response.set_cookie(
        csrf_cookie(),
        csrf_token_for(token),
        max_age=max_age,
        path="/",
        secure=secure,
        httponly=False,
        samesite="Strict",
    )


def refresh_csrf_cookie(request: Request, response: Response, token: str) -> None:
    """Set the CSRF cookie of `token` again when the browser lost or changed it."""
    csrf = csrf_token_for(token)
    if request.cookies.get(csrf_cookie()) != csrf:
        response.set_cookie(
            csrf_cookie(), csrf, path="/", secure=secure_cookies(), samesite="Strict"
        )


def clear_cookies(response: Response) -> None:
    secure = secure_cookies()
    response.delete_cookie(session_cookie(), path="/", secure=secure, httponly=True, samesite="Lax")
    response.delete_cookie(csrf_cookie(), path="/", secure=secure, samesite="Strict")
