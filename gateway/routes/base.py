"""What every route group shares: the RPC clients and who is calling."""

from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Request

from common.errors import PortalError
from common.rpc import RpcClient

SESSION_COOKIE = "portal_session"


def session_token(request: Request) -> str | None:
    """The bearer token of the request (API clients), else the session cookie (the portal)."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.cookies.get(SESSION_COOKIE) or None


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
        return token

    def current_company(self, request: Request) -> dict[str, Any]:
        """The company of the request's session; 401 `unauthenticated` without a live one."""
        return self.auth.authenticate(self.require_token(request))
