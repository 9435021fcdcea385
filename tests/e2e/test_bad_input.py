"""Every POST/PUT endpoint of the OpenAPI document against a matrix of bad bodies.

The endpoints come from the served spec, so a route added later is covered too. The answer
must always be a 4xx with the JSON error envelope: never a 500, never a hang.
"""

from __future__ import annotations

import json
import re

import pytest

pytestmark = pytest.mark.e2e

BIG = "x" * 100_000

BODIES = {
    "empty": b"",
    "whitespace": b"   ",
    "broken json": b'{"login": ',
    "not utf-8": b'{"login": "\xff\xfe"}',
    "json array": b"[]",
    "json string": b'"hello"',
    "json number": b"42",
    "json null": b"null",
    "empty object": b"{}",
    "nulls": json.dumps({"login": None, "password": None, "token": None}).encode(),
    "wrong types": json.dumps({"login": 1, "password": [], "token": {}, "seats": "x"}).encode(),
    "100 kB strings": json.dumps({"login": BIG, "password": BIG, "token": BIG}).encode(),
    "NUL": json.dumps({"login": "a\u0000b", "password": "p\u0000", "token": "\u0000"}).encode(),
    "emoji": json.dumps({"login": "🦄🔥", "password": "🙂" * 5, "token": "🎟️"}).encode(),
    "deep nesting": b"[" * 5000 + b"]" * 5000,
    "unknown fields": json.dumps({"surprise": True}).encode(),
}


def endpoints(api) -> list[tuple[str, str]]:
    spec = api.get("/api/v1/openapi.json").json()
    found = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if method in ("post", "put") and "requestBody" in operation:
                found.append((method.upper(), re.sub(r"\{[^}]+\}", "L-NOPE-NOPE", path)))
    assert ("POST", "/api/v1/sessions") in found
    return found


@pytest.fixture(scope="module")
def targets(api):
    return endpoints(api)


@pytest.mark.parametrize("kind", list(BODIES))
def test_bad_bodies_get_a_4xx_json_error(api, targets, kind):
    for method, path in targets:
        response = api.request(
            method, path, data=BODIES[kind], headers={"Content-Type": "application/json"}
        )
        assert 400 <= response.status_code < 500, (method, path, kind, response.text[:300])
        error = response.json()["error"]
        assert error["code"] and error["message"], (method, path, kind)


def test_oversized_body_is_413(api):
    response = api.post(
        "/api/v1/sessions",
        data=b'{"login": "' + b"a" * 200_000 + b'"}',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def test_validation_names_the_fields(api):
    response = api.post("/api/v1/sessions", json={"login": "", "password": 5})
    assert response.status_code == 422
    fields = response.json()["error"]["details"]["fields"]
    assert set(fields) == {"login", "password"}


def test_unknown_paths_and_methods_are_json(api):
    missing = api.get("/api/v1/no-such-thing")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    wrong = api.request("PATCH", "/api/v1/sessions")
    assert wrong.status_code == 405 and wrong.json()["error"]["code"] == "method_not_allowed"
