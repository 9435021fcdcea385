"""Sessions, the account, the portal's pages and cookies, and readiness, with the services
faked."""

from __future__ import annotations

import pytest
from nameko.testing.services import worker_factory
from werkzeug.exceptions import NotFound
from werkzeug.wrappers import Response

from common.errors import PortalError, ServiceUnavailable
from gateway import sessions
from gateway.responses import PORTAL_CSP
from gateway.service import GatewayService
from tests.unit.gateway.support import (
    EXPIRES_AT,
    PUBLIC_COMPANY,
    TOKEN,
    USER,
    FakeAuth,
    make_request,
)


def gateway(auth: FakeAuth | None = None) -> GatewayService:
    return worker_factory(GatewayService, auth=auth or FakeAuth())


def test_a_session_answers_the_public_company() -> None:
    login = {"login": "C1000001", "password": "pw"}
    session = gateway().create_session(make_request("POST", token=None), body=login)
    assert session == {
        "token": TOKEN,
        "expires_at": EXPIRES_AT,
        "company": PUBLIC_COMPANY,
        "user": USER,
    }


def test_the_account_is_the_public_company_and_the_session_user() -> None:
    assert gateway().get_account(make_request()) == {**PUBLIC_COMPANY, "user": USER}
    viewer = gateway(FakeAuth(role="viewer")).get_account(make_request())
    assert viewer["user"] == {**USER, "role": "viewer"}


def test_a_password_change_hands_auth_the_token() -> None:
    auth = FakeAuth()
    body = {"current_password": "a", "new_password": "b"}
    assert gateway(auth).change_password(make_request("PUT"), body=body) is None
    assert auth.calls == [("change_password", TOKEN)]


# --- the portal's browser session ---------------------------------------------------------


def web_login(**headers: str):
    request = make_request(
        "POST", token=None, headers=headers, json={"login": "C1000001", "password": "pw"}
    )
    return gateway().create_web_session(request, body={"login": "C1000001", "password": "pw"})


def test_the_portal_login_puts_the_session_in_cookies_not_in_the_body() -> None:
    reply = web_login(**{"Sec-Fetch-Site": "same-origin"})
    assert reply.body == {"expires_at": EXPIRES_AT, "company": PUBLIC_COMPANY, "user": USER}
    response = Response()
    reply.finish(response)
    cookies = response.headers.getlist("Set-Cookie")
    session = next(c for c in cookies if c.startswith(f"{sessions.SESSION_COOKIE}={TOKEN}"))
    assert "HttpOnly" in session and "SameSite=Lax" in session
    csrf = next(c for c in cookies if c.startswith(sessions.CSRF_COOKIE))
    assert sessions.csrf_token_for(TOKEN) in csrf
    assert "HttpOnly" not in csrf and "SameSite=Strict" in csrf


def test_a_cross_site_portal_login_is_refused() -> None:
    with pytest.raises(PortalError) as caught:
        web_login(**{"Sec-Fetch-Site": "cross-site"})
    assert caught.value.code == "csrf_failed"
    form = make_request("POST", token=None, data={"login": "C1000001", "password": "pw"})
    with pytest.raises(PortalError) as caught:
        gateway().create_web_session(form, body={"login": "C1000001", "password": "pw"})
    assert caught.value.code == "csrf_failed"


def page_request(path: str = "/licenses", token: str | None = TOKEN, **kwargs: object):
    cookies = {} if token is None else {sessions.SESSION_COOKIE: token}
    return make_request("GET", path, token=None, cookies=cookies, **kwargs)


def test_a_portal_page_without_a_session_redirects_to_the_login_page() -> None:
    response = gateway().licenses_page(page_request(token=None, query_string="a=1"))
    assert response.status_code == 303
    assert response.headers["Location"] == "/login?next=/licenses%3Fa%3D1"
    assert response.headers["Content-Security-Policy"] == PORTAL_CSP
    too_long = "x" * 201
    assert gateway().licenses_page(page_request(token=too_long)).status_code == 303


def test_a_dead_session_cookie_is_cleared_on_the_way_to_the_login_page() -> None:
    response = gateway().buy_page(page_request("/buy", token="revoked"))
    assert response.status_code == 303
    assert any(
        c.startswith(f"{sessions.SESSION_COOKIE}=;") for c in response.headers.getlist("Set-Cookie")
    )


def test_a_portal_page_while_auth_is_down_is_a_503_page() -> None:
    response = gateway(FakeAuth(ServiceUnavailable())).account_page(page_request("/account"))
    assert response.status_code == 503
    assert response.mimetype == "text/html"


def test_a_portal_page_names_the_company_escaped_and_sets_the_csrf_cookie() -> None:
    response = gateway().licenses_page(page_request())
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert response.headers["Content-Security-Policy"] == PORTAL_CSP
    assert "Acme &lt;b&gt;Evil&lt;/b&gt;" in html and "<b>Evil</b>" not in html
    csrf = sessions.csrf_token_for(TOKEN)
    assert csrf in html
    assert any(
        c.startswith(f"{sessions.CSRF_COOKIE}={csrf}")
        for c in response.headers.getlist("Set-Cookie")
    )
    cookies = {sessions.SESSION_COOKIE: TOKEN, sessions.CSRF_COOKIE: csrf}
    again = gateway().licenses_page(make_request("GET", "/licenses", token=None, cookies=cookies))
    assert not again.headers.getlist("Set-Cookie")


def test_the_license_page_cuts_a_long_id() -> None:
    response = gateway().license_page(page_request("/licenses/x"), "L" * 100)
    assert "L" * 64 in response.get_data(as_text=True)
    assert "L" * 65 not in response.get_data(as_text=True)


def test_the_login_page_sends_a_live_session_on_to_the_licenses() -> None:
    live = gateway().login_page(page_request("/login"))
    assert (live.status_code, live.headers["Location"]) == (303, "/licenses")
    auth = FakeAuth()
    signed_out = gateway(auth).login_page(page_request("/login", query_string="signed_out=1"))
    assert signed_out.status_code == 200 and auth.calls == []
    assert gateway().login_page(page_request("/login", token="revoked")).status_code == 200


def test_the_index_sends_the_browser_on() -> None:
    assert gateway().index(page_request("/")).headers["Location"] == "/licenses"
    assert gateway().index(page_request("/", token=None)).headers["Location"] == "/login"


def logout_request(csrf: str) -> object:
    cookies = {sessions.SESSION_COOKIE: TOKEN}
    return make_request("POST", "/web/logout", token=None, cookies=cookies, data={"csrf": csrf})


def test_logging_out_of_the_portal_needs_the_csrf_token() -> None:
    auth = FakeAuth()
    refused = gateway(auth).web_logout(logout_request("x" * 64))
    assert refused.status_code == 403 and auth.calls == []
    done = gateway(auth).web_logout(logout_request(sessions.csrf_token_for(TOKEN)))
    assert (done.status_code, done.headers["Location"]) == (303, "/login?signed_out=1")
    assert auth.calls == [("logout", TOKEN)]
    assert done.headers["X-Frame-Options"] == "DENY"
    assert any(
        c.startswith(f"{sessions.SESSION_COOKIE}=;") for c in done.headers.getlist("Set-Cookie")
    )


def test_static_files_are_served_and_nothing_else() -> None:
    script = gateway().static(make_request(token=None), "portal.js")
    assert script.mimetype == "text/javascript"
    assert script.headers["Cache-Control"] == "no-cache"
    for name in ("../service.py", "nope.js"):
        with pytest.raises(NotFound):
            gateway().static(make_request(token=None), name)


# --- ops ------------------------------------------------------------------------------------


class Pingable:
    def __init__(self, up: bool) -> None:
        self.up = up

    def ping(self) -> dict:
        if not self.up:
            raise ServiceUnavailable()
        return {"status": "ok"}


def test_readiness_names_the_services_that_do_not_answer() -> None:
    up = {name: Pingable(True) for name in ("auth", "licensing", "billing", "notify")}
    ready = worker_factory(GatewayService, **up).readyz(make_request(token=None))
    assert ready.status == 200
    assert ready.body == {"status": "ready", "services": dict.fromkeys(up, "ok")}
    down = worker_factory(GatewayService, **{**up, "billing": Pingable(False)})
    answer = down.readyz(make_request(token=None))
    assert answer.status == 503
    assert answer.body["status"] == "unavailable"
    assert answer.body["services"]["billing"] == "unavailable"
