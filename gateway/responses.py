"""How answers leave the gateway: JSON or HTML, with the security headers defined once here.

Every answer carries `security_headers()` (`gateway.http` adds any that an answer lacks, so
redirects and static files have them too), with HSTS when the portal is served over HTTPS.
An HTML page has its own Content-Security-Policy: `PORTAL_CSP` for the portal's pages (their
own scripts and styles, nothing inline) or `RECEIPT_CSP` for the printable receipt (no
script at all, inline styles only); anything else gets `DEFAULT_CSP`, which allows nothing.

`local_path` is the one rule for where a redirect may send the browser: a path of this site.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from werkzeug.wrappers import Response

from common import settings

PORTAL_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "object-src 'none'"
)
RECEIPT_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'none'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
DEFAULT_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
HSTS = "max-age=31536000; includeSubDomains"

# a path of this site: "/" then visible ASCII, never "//" or "/\" (another host to a
# browser), no backslash, control character or space anywhere (browsers drop tabs and line
# breaks from a URL, and read a backslash as a slash, so "/\t/evil.example" is "//evil.example")
_LOCAL_PATH = re.compile(r"/(?![/\\])[!-\[\]-~]*")


def local_path(value: object) -> str | None:
    """`value` if it is a path on this site that is safe to redirect to, else None.

    >>> local_path("/licenses/L-1?x=1"), local_path("//evil.example"), local_path("https://x")
    ('/licenses/L-1?x=1', None, None)
    """
    if isinstance(value, str) and _LOCAL_PATH.fullmatch(value):
        return value
    return None


def extend_csp(csp: str, sources: Mapping[str, Sequence[str]]) -> str:
    """`csp` with `sources` added to its directives (a directive it lacks is appended).

    >>> extend_csp("default-src 'self'; script-src 'self'", {"script-src": ["https://a.test"],
    ...     "frame-src": ["https://a.test"]})
    "default-src 'self'; script-src 'self' https://a.test; frame-src https://a.test"
    """
    directives = [part.strip().split() for part in csp.split(";") if part.strip()]
    for name, extra in sources.items():
        found = next((tokens for tokens in directives if tokens[0] == name), None)
        if found is None:
            found = [name]
            directives.append(found)
        found.extend(source for source in extra if source not in found)
    return "; ".join(" ".join(tokens) for tokens in directives)


def https() -> bool:
    """Whether the portal is served over HTTPS (its PORTAL_URL says so)."""
    return settings.portal_url().lower().startswith("https://")


def security_headers(csp: str | None = None) -> dict[str, str]:
    """The headers of every answer; with `csp`, also that Content-Security-Policy."""
    headers = {
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
    }
    if https():
        headers["Strict-Transport-Security"] = HSTS
    if csp is not None:
        headers["Content-Security-Policy"] = csp
    return headers


def json_response(
    payload: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """`payload` as JSON (`None`: an empty body), with the security headers and `headers`."""
    body = "" if payload is None else json.dumps(payload, ensure_ascii=False)
    if not body.isascii():
        try:
            body.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate (echoed input): JSON can escape it
            body = json.dumps(payload)
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
