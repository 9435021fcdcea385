"""How answers leave the gateway: JSON or HTML, with the security headers defined once here.

Every answer carries `security_headers()`; an HTML page adds its Content-Security-Policy:
`PORTAL_CSP` for the portal's pages (their own scripts and styles, nothing inline) or
`RECEIPT_CSP` for the printable receipt (no script at all, inline styles only).
"""

from __future__ import annotations

import json
from typing import Any

from werkzeug.wrappers import Response

PORTAL_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "object-src 'none'"
)
RECEIPT_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'none'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)


def security_headers(csp: str | None = None) -> dict[str, str]:
    """The headers of every answer; with `csp`, also that Content-Security-Policy."""
    headers = {
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
    }
    if csp is not None:
        headers["Content-Security-Policy"] = csp
    return headers


def json_response(
    payload: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """`payload` as JSON (`None`: an empty body), with the security headers and `headers`."""
    body = "" if payload is None else json.dumps(payload, ensure_ascii=False)
    response = Response(
        body, status=status, mimetype="application/json" if payload is not None else None
    )
    response.headers.update(security_headers())
    if headers:
        response.headers.update(headers)
    return response


def html_response(html: str, status: int = 200, csp: str = PORTAL_CSP) -> Response:
    """An HTML page with the security headers and the Content-Security-Policy `csp`."""
    response = Response(html, status=status, mimetype="text/html")
    response.headers.update(security_headers(csp))
    return response
