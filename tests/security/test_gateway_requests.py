"""What the gateway takes and what it answers with (issue 11, finding 8, the gateway's part):

- a body is bounded before anything spools, parses or CSRF-checks it (`/web/logout` spooled
  a multipart body of any size);
- lone surrogates in any text field are a 422 naming the field (they were a 500 naming
  `UnicodeEncodeError`);
- JSON routes refuse a body of another Content-Type (415);
- static files and redirects carry the security headers;
- over HTTPS: HSTS and `__Host-` cookies (a gateway process of its own, PORTAL_URL https).
"""

from __future__ import annotations

import json
import re
import socket
import uuid

import pytest
import requests

from tests.security.gateway_process import gateway_process

pytestmark = pytest.mark.e2e

PASSWORD = "Winter-Orchard-42"
CLIENT_TIMEOUT = 30  # bounds a test that would otherwise hang; nothing is timed by it


def raw_exchange(port: int, request: bytes) -> tuple[str, bytes]:
    """Send `request` (headers and maybe the start of a body) and read the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=CLIENT_TIMEOUT) as sock:
        sock.sendall(request)
        received = b""
        while b"\r\n\r\n" not in received:
            part = sock.recv(4096)
            if not part:
                break
            received += part
    head, _, body = received.partition(b"\r\n\r\n")
    return head.decode("latin-1"), body


def test_a_huge_multipart_logout_is_refused_before_its_body_is_read(suite):
    # a session cookie (any value) made the gateway parse the form, reading it all first
    head, _ = raw_exchange(
        suite.port,
        b"POST /web/logout HTTP/1.1\r\nHost: portal\r\nCookie: portal_session=abc\r\n"
        b"Content-Type: multipart/form-data; boundary=xyz\r\n"
        b"Content-Length: 100000000\r\n\r\n--xyz\r\n",
    )
    assert head.startswith("HTTP/1.1 413"), head
    assert "Connection: close" in head


def test_every_route_refuses_an_oversized_body_before_reading_it(suite, api):
    spec = api.get("/api/v1/openapi.json").json()
    for path, operations in spec["paths"].items():
        for method in operations:
            target = re.sub(r"\{[^}]+\}", "X", path)
            head, _ = raw_exchange(
                suite.port,
                f"{method.upper()} {target} HTTP/1.1\r\nHost: portal\r\n"
                "Content-Type: application/json\r\nContent-Length: 10000000\r\n\r\n{".encode(),
            )
            assert head.startswith("HTTP/1.1 413"), (method, path, head)


def with_lone_surrogates(schema: dict, components: dict) -> dict:
    """A body for `schema` with a lone surrogate in every string field."""
    if "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[1]]
    body = {}
    for name, field in schema.get("properties", {}).items():
        if "$ref" in field or field.get("type") == "object":
            body[name] = with_lone_surrogates(field, components)
        elif field.get("type") == "integer":
            body[name] = 1
        else:
            body[name] = "ok\ud800"
    return body


def test_lone_surrogates_in_any_text_field_are_a_422_naming_it(api):
    spec = api.get("/api/v1/openapi.json").json()
    components = spec.get("components", {}).get("schemas", {})
    checked = 0
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if "requestBody" not in operation:
                continue
            schema = operation["requestBody"]["content"]["application/json"]["schema"]
            body = with_lone_surrogates(schema, components)
            response = api.request(
                method.upper(),
                re.sub(r"\{[^}]+\}", "L-NOPE-NOPE", path),
                data=json.dumps(body),  # "\ud800" travels as its JSON escape
                headers={"Content-Type": "application/json"},
            )
            assert response.status_code == 422, (method, path, response.text[:300])
            assert response.json()["error"]["details"]["fields"], (method, path)
            checked += 1
    assert checked >= 5
    # a service behind the gateway never sees one either: the login itself, field by field
    response = api.post(
        "/api/v1/sessions",
        data=b'{"login": "C1234567", "password": "\\udc80"}',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert set(response.json()["error"]["details"]["fields"]) == {"password"}
    unknown = api.post(
        "/api/v1/sessions", data=b'{"\\ud800": 1}', headers={"Content-Type": "application/json"}
    )
    assert unknown.status_code == 422


def test_a_json_route_refuses_a_body_of_another_content_type(api):
    body = json.dumps({"login": "C1234567", "password": "x"}).encode()
    for content_type in (
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/xml",
        None,
    ):
        headers = {} if content_type is None else {"Content-Type": content_type}
        for path in ("/api/v1/sessions", "/api/v1/password-resets", "/api/v1/activations"):
            response = api.post(path, data=body, headers=headers)
            assert response.status_code == 415, (path, content_type, response.text[:300])
            assert response.json()["error"]["code"] == "unsupported_media_type"
    # an empty body needs no type: it is missing its fields, nothing else
    assert api.post("/api/v1/sessions", data=b"").status_code == 422
    json_body = api.post(
        "/api/v1/sessions", data=body, headers={"Content-Type": "application/json"}
    )
    assert json_body.status_code in (401, 429)  # taken, and asked auth


def assert_security_headers(response: requests.Response) -> None:
    headers = response.headers
    assert headers.get("X-Content-Type-Options") == "nosniff", response.url
    assert headers.get("X-Frame-Options") == "DENY", response.url
    assert headers.get("Referrer-Policy") == "no-referrer", response.url
    assert "frame-ancestors 'none'" in headers.get("Content-Security-Policy", ""), response.url


def test_static_files_and_redirects_carry_the_security_headers(api):
    for path in ("/static/portal.js", "/static/portal.css", "/static/favicon.svg"):
        response = api.get(path)
        assert response.status_code == 200
        assert_security_headers(response)
    for path in ("/", "/licenses", "/payments?x=1", "/licenses//x"):
        response = api.get(path, allow_redirects=False)
        assert response.status_code in (303, 308), (path, response.status_code)
        assert response.headers["Location"].startswith("/"), response.headers["Location"]
        assert_security_headers(response)
    logout = api.post("/web/logout", allow_redirects=False)
    assert logout.status_code == 303
    assert_security_headers(logout)
    assert_security_headers(api.get("/api/v1/nowhere"))
    assert "Strict-Transport-Security" not in api.get("/healthz").headers  # plain HTTP here


def test_over_https_hsts_is_sent_and_cookies_are_host_prefixed(suite, tmp_path):
    company = suite.portalctl(
        "company", "create", "--name", "Https Ltd", "--contact-name", "Ada",
        "--email", f"https.{uuid.uuid4().hex[:10]}@example.test", "--password", PASSWORD,
    )  # fmt: skip
    with gateway_process(suite, tmp_path, PORTAL_URL="https://portal.example") as gateway:
        for path in ("/healthz", "/login", "/static/portal.js", "/"):
            response = requests.get(gateway.url + path, allow_redirects=False, timeout=10)
            hsts = response.headers.get("Strict-Transport-Security", "")
            assert hsts.startswith("max-age="), path
        login = requests.post(
            f"{gateway.url}/web/session",
            json={"login": company["customer_id"], "password": PASSWORD},
            timeout=CLIENT_TIMEOUT,
        )
        assert login.status_code == 201, login.text
        cookies = login.raw.headers.getlist("Set-Cookie")
        names = sorted(cookie.split("=", 1)[0] for cookie in cookies)
        assert names == ["__Host-portal_csrf", "__Host-portal_session"], cookies
        for cookie in cookies:
            assert "; Secure" in cookie and "; Path=/" in cookie and "Domain=" not in cookie
