"""What every route group shares: the RPC clients and who is calling."""

from __future__ import annotations

import hashlib
import hmac
from functools import lru_cache
from typing import Any

from werkzeug.wrappers import Request

from common import secrets
from common.errors import PortalError
from common.rpc import RpcClient

SESSION_COOKIE = "portal_session"
# Double-submit CSRF token for cookie sessions: the portal's script copies the (readable)
# cookie into the header. It is an HMAC of the session token, so nothing is stored and a
# cookie planted by someone else is worthless without SECRET_KEY.
CSRF_COOKIE = "portal_csrf"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def bearer_token(request: Request) -> str | None:
    """The token of an `Authorization: Bearer` header (API clients), if any."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def session_token(request: Request) -> str | None:
    """The bearer token of the request (API clients), else the session cookie (the portal)."""
    return bearer_token(request) or request.cookies.get(SESSION_COOKIE) or None


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


def check_csrf(request: Request, token: str) -> None:
    """403 `csrf_failed` for a state change whose header does not carry the session's token."""
    if request.method in SAFE_METHODS:
        return
    if not csrf_matches(token, request.headers.get(CSRF_HEADER, "")):
        raise PortalError(
            "The security check of this request failed. Reload the page and try again.",
            code="csrf_failed",
        )


class RouteGroup:
    """Mixin base: the gateway's one RPC client per service, shared by all route groups."""

    auth = RpcClient("auth")
    licensing = RpcClient("licensing")
    billing = RpcClient("billing")
    notify = RpcClient("notify")

    def require_token(self, request: Request) -> str:
        """The request's session token, or 401 `unauthenticated` without asking anyone."""
        token = session_token(request)
        if not token or len(token) > 200:
            raise PortalError(
                "Please log in: the session is missing, expired or revoked.",
                code="unauthenticated",
            )
        if bearer_token(request) is None:
            check_csrf(request, token)
        return token

    def current_company(self, request: Request) -> dict[str, Any]:
        """The company of the request's session; 401 `unauthenticated` without a live one."""
        return self.auth.authenticate(self.require_token(request))
