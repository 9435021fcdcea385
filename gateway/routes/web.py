"""The portal's pages and static files, served from `gateway/web/` (no CDN, no build step)."""

from __future__ import annotations

import mimetypes
from pathlib import Path

from werkzeug.exceptions import NotFound
from werkzeug.security import safe_join
from werkzeug.wrappers import Request, Response

from gateway.http import route
from gateway.routes.base import RouteGroup

WEB = Path(__file__).resolve().parent.parent / "web"

PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}


def page(name: str) -> Response:
    response = Response((WEB / "pages" / name).read_bytes(), mimetype="text/html")
    response.headers.update(PAGE_HEADERS)
    response.headers["Cache-Control"] = "no-store"
    return response


class WebRoutes(RouteGroup):
    @route("GET", "/", summary="The portal's start page", tags=["web"], content_type="text/html")
    def index(self, request: Request) -> Response:
        return page("index.html")

    @route(
        "GET",
        "/reset-password",
        summary="The page a reset email links to (the token travels in the URL fragment)",
        tags=["web"],
        content_type="text/html",
    )
    def reset_password_page(self, request: Request) -> Response:
        return page("reset-password.html")

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
        response = Response(Path(path).read_bytes(), mimetype=mimetype)
        response.headers["Cache-Control"] = "public, max-age=300"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response
