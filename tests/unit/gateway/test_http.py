"""The route machinery without a server: body parsing, the error envelope, session
authentication as the declaration names it, and the OpenAPI document."""

from __future__ import annotations

import json

import pytest
from nameko.testing.services import worker_factory
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request, Response

from common.errors import PortalError
from common.schemas import TOKEN_MAX, load
from gateway import errors, openapi, schemas, sessions
from gateway.http import MAX_BODY_BYTES, ROUTES, JsonRoute, Reply, RouteSpec, read_json
from gateway.service import GatewayService
from tests.unit.gateway.support import TOKEN, FakeAuth, make_request


def request_with(body: bytes, content_type: str | None = "application/json") -> Request:
    return Request(
        EnvironBuilder(method="POST", data=body, content_type=content_type).get_environ()
    )


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("invalid_credentials", 401),
        ("too_many_attempts", 429),
        ("validation_error", 422),
        ("service_unavailable", 503),
        ("license_not_found", 404),
        ("product_exists", 409),
        ("a_newer_thing_not_found", 404),
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
    assert response.headers["Cache-Control"] == "no-store"


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
    with pytest.raises(RequestEntityTooLarge):
        read_json(request_with(b" " * (MAX_BODY_BYTES + 1)), schemas.LoginBody())


def test_every_route_is_an_entrypoint_of_the_one_service_and_in_openapi():
    declared = {
        (entrypoint.spec.method, entrypoint.spec.path)
        for method in vars(GatewayService).values()
        for entrypoint in getattr(method, "nameko_entrypoints", ())
        if isinstance(entrypoint, JsonRoute)
    }
    assert declared == {(route.method, route.path) for route in ROUTES}
    document = openapi.build()
    for route in ROUTES:
        path = route.path.replace("<", "{").replace(">", "}")
        path = path.replace("{path:", "{")
        assert route.method.lower() in document["paths"][path], path
    login = document["paths"]["/api/v1/sessions"]["post"]
    assert login["requestBody"]["content"]["application/json"]["schema"]
    assert {"201", "401", "422", "429"} <= set(login["responses"])
    licenses = document["paths"]["/api/v1/licenses"]["get"]
    assert licenses["security"] == [{"session": []}, {"portal_cookie": []}]


# --- auth="session" ------------------------------------------------------------------------


def account(auth: FakeAuth, request: Request) -> dict:
    return worker_factory(GatewayService, auth=auth).get_account(request)


@pytest.mark.parametrize("token", [None, "", "x" * (TOKEN_MAX + 1)])
def test_no_usable_token_is_401_without_asking_auth(token):
    auth = FakeAuth()
    with pytest.raises(PortalError) as caught:
        account(auth, make_request(token=token))
    assert caught.value.code == "unauthenticated"
    assert auth.calls == []


def test_a_session_route_hands_the_handler_the_authenticated_company():
    auth = FakeAuth()
    assert account(auth, make_request())["customer_id"] == "C1000001"
    assert auth.calls == [("authenticate", TOKEN)]
    with pytest.raises(PortalError) as caught:
        account(FakeAuth(), make_request(token="revoked"))
    assert caught.value.code == "unauthenticated"


def test_a_handler_that_takes_the_token_gets_it_unauthenticated():
    # logout revokes whatever session the token names: a gone session is still a 204
    auth = FakeAuth()
    assert worker_factory(GatewayService, auth=auth).delete_session(make_request("DELETE")) is None
    assert auth.calls == [("logout", TOKEN)]


def test_a_handler_that_names_neither_is_still_authenticated():
    auth = FakeAuth()
    service = worker_factory(GatewayService, auth=auth)
    with pytest.raises(PortalError) as caught:
        service.catalog(make_request(token="revoked"))
    assert caught.value.code == "unauthenticated"
    service.billing.list_plans.assert_not_called()


def cookie_request(method: str, csrf: str | None) -> Request:
    headers = {} if csrf is None else {sessions.CSRF_HEADER: csrf}
    return make_request(
        method, token=None, cookies={sessions.SESSION_COOKIE: TOKEN}, headers=headers
    )


def test_a_cookie_session_needs_its_csrf_token_to_change_anything():
    service = worker_factory(GatewayService, auth=FakeAuth())
    for csrf in (None, "", "x" * 64, sessions.csrf_token_for("another session")):
        with pytest.raises(PortalError) as caught:
            service.delete_session(cookie_request("DELETE", csrf))
        assert caught.value.code == "csrf_failed"
    service.delete_session(cookie_request("DELETE", sessions.csrf_token_for(TOKEN)))
    assert service.get_account(cookie_request("GET", None))["customer_id"] == "C1000001"
    # a bearer token cannot be sent by another site: no CSRF token needed
    service.delete_session(make_request("DELETE"))


def test_results_become_responses():
    entrypoint = JsonRoute("POST", "/x", spec=RouteSpec("POST", "/x", "x", status=201))
    plain = entrypoint.response_from_result({"a": 1})
    assert (plain.status_code, json.loads(plain.get_data())) == (201, {"a": 1})
    assert plain.headers["X-Frame-Options"] == "DENY"
    assert entrypoint.response_from_result(None).status_code == 204

    def finish(response: Response) -> None:
        response.set_cookie("c", "v")

    reply = Reply({"a": 1}, status=200, headers={"Cache-Control": "public"}, finish=finish)
    answered = entrypoint.response_from_result(reply)
    assert answered.status_code == 200
    assert answered.headers["Cache-Control"] == "public"
    assert answered.headers["Set-Cookie"].startswith("c=v")
    refused = entrypoint.response_from_exception(PortalError(code="product_exists"))
    assert refused.status_code == 409
    assert json.loads(refused.get_data())["error"]["code"] == "product_exists"
    assert entrypoint.response_from_exception(KeyError("secret")).status_code == 500


# --- what a JSON route takes --------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"],
)
def test_a_json_body_of_another_content_type_is_415(content_type):
    raw = b'{"login": "C1", "password": "pw"}'
    with pytest.raises(PortalError) as caught:
        read_json(request_with(raw, content_type), schemas.LoginBody())
    assert caught.value.code == "unsupported_media_type"
    assert errors.status_for("unsupported_media_type") == 415


@pytest.mark.parametrize(
    "content_type", ["application/json; charset=utf-8", "application/merge-patch+json"]
)
def test_json_content_types_are_taken(content_type):
    raw = b'{"login": "C1", "password": "pw"}'
    assert read_json(request_with(raw, content_type), schemas.LoginBody())["login"] == "C1"


def test_an_empty_body_needs_no_content_type():
    assert read_json(request_with(b"", None)) == {}
    assert read_json(request_with(b"  ", "text/plain")) == {}


LONE = "Must be valid Unicode text (no lone surrogates)."


@pytest.mark.parametrize(
    ("raw", "fields"),
    [
        (b'{"login": "\\ud800", "password": "x"}', {"login": [LONE]}),
        (b'{"login": "a", "password": "x\\udfff"}', {"password": [LONE]}),
        (b'{"card": {"number": "4242\\udc00"}}', {"card": {"number": [LONE]}}),
        (b'{"a": ["ok", "\\ud83d"]}', {"a": {"1": [LONE]}}),
        (b'{"\\ud800": 1}', {"\\ud800": [LONE]}),
        (b'"\\ud800"', {"_schema": [LONE]}),
    ],
)
def test_lone_surrogates_are_a_422_naming_the_field(raw, fields):
    with pytest.raises(PortalError) as caught:
        read_json(request_with(raw), schemas.LoginBody())
    assert caught.value.code == "validation_error"
    response = errors.error_response(caught.value.code, caught.value.message, caught.value.details)
    assert response.status_code == 422
    assert json.loads(response.get_data())["error"]["details"]["fields"] == fields


def test_a_surrogate_pair_is_just_text():
    raw = b'{"login": "\\ud83d\\ude00", "password": "x"}'
    assert read_json(request_with(raw), schemas.LoginBody())["login"] == "\U0001f600"


def test_text_the_schema_reads_refuses_lone_surrogates_itself():
    with pytest.raises(PortalError) as caught:
        load(schemas.LoginBody(), {"login": "\ud800", "password": "x"})
    assert caught.value.details == {"fields": {"login": [LONE]}}


def test_an_answer_echoing_a_lone_surrogate_is_still_json():
    response = errors.error_response("validation_error", "bad", {"fields": {"\ud800": ["x"]}})
    assert json.loads(response.get_data())["error"]["details"]["fields"] == {"\ud800": ["x"]}
