"""The gateway's request parsing, error envelope and status table, without a server."""

from __future__ import annotations

import json

import pytest
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from common.errors import PortalError
from gateway import errors, schemas
from gateway.http import MAX_BODY_BYTES, read_json


def request_with(body: bytes) -> Request:
    return Request(EnvironBuilder(method="POST", data=body).get_environ())


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("invalid_credentials", 401),
        ("too_many_attempts", 429),
        ("validation_error", 422),
        ("service_unavailable", 503),
        ("license_not_found", 404),
        ("something_new", 400),
    ],
)
def test_status_for_codes(code, status):
    assert errors.status_for(code) == status


def test_error_envelope_and_retry_after():
    response = errors.error_response("too_many_attempts", "Slow down.", {"retry_after": 42})
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "42"
    assert json.loads(response.get_data()) == {
        "error": {
            "code": "too_many_attempts",
            "message": "Slow down.",
            "details": {"retry_after": 42},
        }
    }
    assert errors.error_response("service_unavailable", "down").headers["Retry-After"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_read_json_validates_with_the_schema():
    body = read_json(request_with(b'{"login": "C1", "password": "pw"}'), schemas.LoginBody())
    assert body == {"login": "C1", "password": "pw"}


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"{", "invalid_json"),
        (b"\xff", "invalid_json"),
        (b"[" * 3000 + b"]" * 3000, "invalid_json"),
        (b"[]", "validation_error"),
        (b"{}", "validation_error"),
        (b'{"login": "a\\u0000", "password": "x"}', "validation_error"),
        (b'{"login": "a", "password": "x", "extra": 1}', "validation_error"),
    ],
)
def test_read_json_refuses_bad_bodies_with_a_code(raw, code):
    with pytest.raises(PortalError) as caught:
        read_json(request_with(raw), schemas.LoginBody())
    assert caught.value.code == code


def test_read_json_refuses_oversized_bodies():
    from werkzeug.exceptions import RequestEntityTooLarge

    with pytest.raises(RequestEntityTooLarge):
        read_json(request_with(b" " * (MAX_BODY_BYTES + 1)), schemas.LoginBody())


def test_openapi_document_covers_every_route():
    import gateway.service
    from gateway import openapi
    from gateway.http import ROUTES

    document = openapi.build()
    for route in ROUTES:
        path = route.path.replace("<", "{").replace(">", "}")
        path = path.replace("{path:", "{")
        assert route.method.lower() in document["paths"][path], path
    login = document["paths"]["/api/v1/sessions"]["post"]
    assert login["requestBody"]["content"]["application/json"]["schema"]
    assert {"201", "401", "422", "429"} <= set(login["responses"])
