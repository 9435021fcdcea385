"""Where the portal sends a browser (`next` stays on the site), the headers of redirects and
static files, HTTPS-only protections (HSTS, `__Host-` cookies) and the logout body."""

from __future__ import annotations

import io

import pytest
from nameko import config as nameko_config
from nameko.testing.services import worker_factory
from werkzeug.wrappers import Response

from gateway import pages, sessions
from gateway.responses import HSTS, json_response, local_path
from gateway.service import GatewayService
from tests.unit.gateway.support import TOKEN, FakeAuth, make_request

EVIL_NEXT = [
    "//evil.example/x",
    "/\t/evil.example/x",
    "/\r/evil.example/x",
    "/\n/evil.example/x",
    "/\\evil.example/x",
    "/\t\\evil.example",
    "\\\\evil.example",
    "/ /evil.example",
    "https://evil.example/",
    "javascript:alert(1)",
    "evil.example",
    "/licenses\x00",
    "/licenses/\u2028",
    "",
]


@pytest.mark.parametrize("value", EVIL_NEXT)
def test_local_path_refuses_anything_a_browser_could_take_off_site(value):
    assert local_path(value) is None


@pytest.mark.parametrize(
    "value", ["/", "/licenses", "/licenses/L-1?tab=history#x", "/payments?a=%2F%2Fx", "/%09/x"]
)
def test_local_path_keeps_paths_of_the_site(value):
    assert local_path(value) == value


def gateway(auth: FakeAuth | None = None) -> GatewayService:
    return worker_factory(GatewayService, auth=auth or FakeAuth())


def logged_in(path: str, **kwargs):
    return make_request("GET", path, token=None, cookies={sessions.SESSION_COOKIE: TOKEN}, **kwargs)


@pytest.mark.parametrize("value", EVIL_NEXT)
def test_a_logged_in_visit_to_the_login_page_never_leaves_the_site(value):
    response = gateway().login_page(logged_in("/login", query_string={"next": value}))
    assert (response.status_code, response.headers["Location"]) == (303, "/licenses")


def test_a_logged_in_visit_to_the_login_page_goes_on_to_next():
    response = gateway().login_page(logged_in("/login", query_string={"next": "/payments?x=1"}))
    assert response.headers["Location"] == "/payments?x=1"


@pytest.mark.parametrize(
    ("path", "location"),
    [
        ("/licenses", "/login?next=/licenses"),
        ("//licenses", "/login?next=/licenses"),  # werkzeug merges the slashes to route it
        ("/licenses/L\\x", "/login?next=/licenses/L%255Cx"),
        ("/licenses/L\tx", "/login?next=/licenses/L%2509x"),
        ("/licenses/Ä", "/login?next=/licenses/%25C3%2584"),
    ],
)
def test_the_way_to_the_login_page_comes_back_only_to_a_path_of_the_site(path, location):
    wsgi_path = path.encode().decode("latin-1")  # as a WSGI server hands it over
    request = make_request("GET", token=None, environ_overrides={"PATH_INFO": wsgi_path})
    response = pages.to_login(request)
    assert response.headers["Location"] == location
    assert response.headers["X-Frame-Options"] == "DENY"


def test_static_files_and_redirects_carry_the_security_headers():
    for response in (
        pages.static_file("portal.js"),
        gateway().index(make_request("GET", "/", token=None)),
        pages.signed_out(),
    ):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert pages.static_file("portal.js").headers["Cache-Control"] == "no-cache"


# --- HTTPS only: HSTS and the __Host- cookie prefix ----------------------------------------


def cookies_of(reply_finish) -> list[str]:
    response = Response()
    reply_finish(response)
    return response.headers.getlist("Set-Cookie")


def web_login():
    request = make_request(
        "POST", token=None, headers={"Sec-Fetch-Site": "same-origin"}, json={"login": "C1"}
    )
    return gateway().create_web_session(request, body={"login": "C1", "password": "pw"})


def test_over_https_cookies_are_host_prefixed_and_hsts_is_sent():
    with nameko_config.patch({"PORTAL_URL": "https://portal.example"}):
        cookies = cookies_of(web_login().finish)
        session = next(c for c in cookies if c.startswith(f"__Host-portal_session={TOKEN};"))
        csrf = next(c for c in cookies if c.startswith("__Host-portal_csrf="))
        for cookie in (session, csrf):
            assert "Secure" in cookie and "Path=/" in cookie and "Domain" not in cookie
        assert json_response({}).headers["Strict-Transport-Security"] == HSTS
        # only the prefixed cookie is the session: a plain one may come from a sibling host
        prefixed = make_request("GET", token=None, cookies={"__Host-portal_session": TOKEN})
        plain = make_request("GET", token=None, cookies={"portal_session": TOKEN})
        assert sessions.cookie_token(prefixed) == TOKEN
        assert sessions.cookie_token(plain) is None


def test_over_http_cookies_keep_plain_names_and_no_hsts():
    with nameko_config.patch({"PORTAL_URL": "http://localhost:8000"}):
        cookies = cookies_of(web_login().finish)
        assert any(c.startswith(f"portal_session={TOKEN};") for c in cookies)
        assert not any(c.startswith("__Host-") for c in cookies)
        assert "Strict-Transport-Security" not in json_response({}).headers


# --- logging out reads no body but the page's own small form ---------------------------------


def test_logging_out_never_parses_a_multipart_body():
    csrf = sessions.csrf_token_for(TOKEN)
    auth = FakeAuth()
    multipart = make_request(
        "POST",
        "/web/logout",
        token=None,
        cookies={sessions.SESSION_COOKIE: TOKEN},
        data={"csrf": csrf, "file": (io.BytesIO(b"x" * 1000), "f.bin")},
    )
    assert multipart.mimetype == "multipart/form-data"
    assert gateway(auth).web_logout(multipart).status_code == 403
    assert "form" not in multipart.__dict__  # werkzeug caches a parsed form there
    assert auth.calls == []
