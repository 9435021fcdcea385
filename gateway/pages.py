"""The portal's HTML: pages rendered from `gateway/web/pages/`, and its static files.

Pages are Jinja templates (autoescaped), rendered with the company of the session for the
header; each page's script (`gateway/web/static/*.js`, ES modules) then fills it from the
JSON API. No CDN, no build step.

A portal page knows the role of the session's user (`role`, also `data-role` on `<body>` for
the scripts) and what that role may do (`can`): the templates leave out the links and
buttons the role cannot use, so nothing fails on click; the API still checks every call. A
page the role may not use at all answers 403 with a page that says so.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, select_autoescape
from werkzeug.exceptions import NotFound
from werkzeug.security import safe_join
from werkzeug.utils import redirect
from werkzeug.wrappers import Request, Response

from common.errors import PortalError
from common.timeutil import human_date
from gateway import roles as access
from gateway import sessions
from gateway.responses import (
    DEFAULT_CSP,
    PORTAL_CSP,
    RECEIPT_CSP,
    html_response,
    local_path,
    security_headers,
)

WEB = Path(__file__).resolve().parent / "web"

_templates = Environment(
    loader=FileSystemLoader(str(WEB / "pages")),
    autoescape=select_autoescape(default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


# days as the receipts and emails write them (`"Dec 7, 2026"`, UTC)
_templates.filters["day"] = human_date


def render(name: str, status: int = 200, csp: str = PORTAL_CSP, **context: Any) -> Response:
    """The page `name` of `gateway/web/pages/`, with the security headers and `csp`."""
    return html_response(_templates.get_template(name).render(**context), status, csp)


def public_page(template: str, **context: Any) -> Response:
    """A page anyone may see (no company in the header)."""
    return render(template, company=None, **context)


# how the pages name the roles
ROLE_LABELS = {
    access.OWNER: "Owner",
    access.LICENSE_ADMIN: "License admin",
    access.BILLING: "Billing",
    access.VIEWER: "Viewer",
}

# what each page element needs: `can.<name>` in the templates
CAPABILITIES = {
    "billing": access.BILLING_USERS,  # payments, recurring payments, buy, billing details
    "licenses_admin": access.LICENSE_ADMINS,  # activation password, deactivate, offline files
    "users": access.OWNERS,
    "activity": access.OWNERS,
}


def role_context(company: dict[str, Any]) -> dict[str, Any]:
    """`role`, `role_label`, `user`, `is_contact` and `can` of the session's user, for the
    templates."""
    role = access.role_of(company)
    user = company.get("user") or {}
    email = str(user.get("email") or "").lower()
    return {
        "role": role,
        "role_label": ROLE_LABELS[role],
        "user": user,
        # the contact's password is the company-wide one (it also activates licenses); a
        # session of an older auth, without a user, is the contact's too
        "is_contact": not email or email == str(company.get("contact_email") or "").lower(),
        "can": {name: role in allowed for name, allowed in CAPABILITIES.items()},
    }


def portal_page(
    auth: Any,
    request: Request,
    template: str,
    *,
    roles: tuple[str, ...] = access.EVERYONE,
    fill: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    **context: Any,
) -> Response:
    """A page for the company of the portal cookie, or the way to the login page.

    No live session: a redirect to the login page (which comes back here), clearing a dead
    cookie. Auth unavailable: a 503 page. A role not in `roles`: a 403 page in the portal's
    layout that names the role (`portal_page(auth, request, "users.html", title="Users",
    nav="users", roles=roles.OWNERS)`). A page rendered on the server (`fill`: the company
    → more template values) is the 404 page when `fill` finds nothing, a 503 page when a
    service cannot answer.
    """
    token = sessions.cookie_token(request)
    if token is None:
        return to_login(request)
    try:
        company = auth.authenticate(token)
    except PortalError as exc:
        if exc.code == "unauthenticated":
            response = to_login(request)
            sessions.clear_cookies(response)
            return response
        return render("unavailable.html", status=503, title="Temporarily unavailable", company=None)
    csrf = sessions.csrf_token_for(token)
    who = role_context(company)
    if who["role"] not in tuple(roles):
        response = render(
            "forbidden.html",
            status=403,
            company=company,
            csrf=csrf,
            **who,
            title="Not available for your role",
            nav=context.get("nav"),
        )
    else:
        response = _filled(template, fill, company=company, csrf=csrf, **who, **context)
    sessions.refresh_csrf_cookie(request, response, token)
    return response


def _filled(
    template: str, fill: Callable[[dict[str, Any]], dict[str, Any]] | None, **context: Any
) -> Response:
    """`template` with what `fill` adds for the company; its refusal as a page: an outage
    (a service down or not answering in time, `service_unavailable`) is the 503 page, which
    offers Retry; any other refusal of what the URL names (`*_not_found`, a
    `validation_error` for a receipt number that cannot be one) is the 404 page, since
    retrying cannot help."""
    if fill is None:
        return render(template, **context)
    try:
        extra = fill(context["company"])
    except (PortalError, NotFound) as exc:
        if isinstance(exc, PortalError) and exc.code == "service_unavailable":
            title = "Temporarily unavailable"
            return render("unavailable.html", status=503, **{**context, "title": title})
        return render("not-found.html", status=404, **{**context, "title": "Page not found"})
    return render(template, **{**context, **extra})


# the paths of the JSON API and of machines (the webhook, the probes): their 404 is JSON
API_PREFIXES = ("/api/", "/webhooks/", "/web/", "/static/", "/healthz", "/readyz", "/metrics")


def wants_page(method: str, path: str) -> bool:
    """Whether an unknown URL is answered with the HTML 404 page: a browser's GET of a
    path outside the API.

    >>> wants_page("GET", "/no-such-page"), wants_page("GET", "/api/v1/no-such")
    (True, False)
    """
    if method not in ("GET", "HEAD"):
        return False
    return not any(path == prefix.rstrip("/") or path.startswith(prefix) for prefix in API_PREFIXES)


def not_found() -> Response:
    """The HTML 404 page: the portal's layout, a way back to the licenses."""
    return render("not-found.html", status=404, title="Page not found", company=None)


def see_other(location: str) -> Response:
    """A 303 to `location` (a path of this site), with the security headers."""
    response = redirect(location, code=303)
    response.headers.update(security_headers(PORTAL_CSP))
    return response


def to_login(request: Request) -> Response:
    """Redirect to the login page, coming back here afterwards (`next`, when here is a path
    that `local_path` allows)."""
    target = quote("/" + request.path.lstrip("/"), safe="/:@!$&'()*+,;=-._~")
    if request.query_string:
        target += "?" + quote(request.query_string, safe="&=+%/:@!$'()*,;-._~")
    if local_path(target) is None:
        return see_other("/login")
    return see_other("/login?next=" + quote(target, safe="/"))


def after_login(request: Request) -> Response:
    """Where a visitor who is already logged in goes from the login page: its `next` when
    that is a path of this site, else the licenses."""
    return see_other(local_path(request.args.get("next")) or "/licenses")


def signed_out() -> Response:
    """After logging out: to the login page, without the session cookies."""
    response = see_other("/login?signed_out=1")
    sessions.clear_cookies(response)
    return response


def out_of_date() -> Response:
    """A log out whose CSRF token does not match: the page was older than the session."""
    return render(
        "unavailable.html",
        status=403,
        title="Please reload",
        company=None,
        message="This page was out of date. Reload it, then log out again.",
    )


# why billing refunded a payment (licensing's error code), in a customer's words
REFUND_REASONS = {
    "product_archived": "the product is no longer sold",
    "product_not_found": "the product could not be delivered",
    "license_not_found": "the license to renew was not found",
    "license_suspended": "the license to renew is suspended",
    "company_not_found": "the account could not be found",
    "refunded_by_provider": "refunded by the vendor",
}


def refund_reason(code: str | None) -> str | None:
    """`"product_archived"` → `"the product is no longer sold"`; text that is not a known
    code is shown as it is."""
    if not code:
        return None
    return REFUND_REASONS.get(code, code.replace("_", " ") if code.islower() else code)


def receipt(receipt: dict[str, Any], company: dict[str, Any]) -> Response:
    """The printable receipt: no script and nothing loaded, inline styles only. The buyer is
    billing's snapshot at payment time (`buyer`), else the company of the session."""
    return render(
        "receipt.html",
        csp=RECEIPT_CSP,
        r=receipt,
        company=company,
        refund_reason=refund_reason(receipt.get("refund_reason")),
    )


def receipt_page(billing: Any, receipt_number: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """What the portal's receipt page shows of the company's receipt (`portal_page`'s
    `fill`): billing's receipt and why it was refunded."""

    def fill(company: dict[str, Any]) -> dict[str, Any]:
        found = billing.get_receipt(receipt_number, company["customer_id"])
        return {"r": found, "refund_reason": refund_reason(found.get("refund_reason"))}

    return fill


def static_file(name: str) -> Response:
    """A file of `gateway/web/static/`; 404 for anything else."""
    path = safe_join(str(WEB / "static"), name)
    if path is None or not Path(path).is_file():
        raise NotFound()
    mimetype = mimetypes.guess_type(path)[0] or "application/octet-stream"
    if path.endswith(".js"):
        mimetype = "text/javascript"  # ES modules need a JavaScript type
    response = Response(Path(path).read_bytes(), mimetype=mimetype)
    response.headers.update(security_headers(DEFAULT_CSP))
    response.headers["Cache-Control"] = "no-cache"
    return response
