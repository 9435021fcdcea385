"""The gateway's HTTP entrypoint: JSON in, JSON out, one error envelope, a route registry.

`@route("POST", "/api/v1/purchases", body=PurchaseBody, response=PurchaseOut, status=201,
auth="session", summary=...)` is nameko's `@http` plus:
- the request body is size-limited (413), parsed as JSON (400 `invalid_json`) and validated
  by the marshmallow schema (422 naming the fields) *before* a worker runs, and handed to
  the method as `body`;
- `auth="session"` authenticates the caller before the method runs: the session token
  (bearer, or the portal's cookie with its CSRF header on a state change; 401/403 otherwise)
  and the company it belongs to, asked of the service's `auth` client and handed to the
  method as `company`. A method that takes `token` instead gets the checked token and no
  company (for calls that give the token to auth, which checks it itself);
- a JSON result is dumped through the `response` schema (the one the OpenAPI document
  shows), so a client gets exactly its fields;
- results become JSON (`dict`, or a `Reply` for another status, headers or cookies), 204
  (`None`), or pass through (`Response`);
- every exception becomes `{"error": {...}}` with the status from `gateway.errors`;
- the route is recorded for the OpenAPI document.
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from marshmallow import Schema
from nameko.web.handlers import HttpRequestHandler
from nameko.web.server import WebServer, WsgiApp
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound, RequestEntityTooLarge
from werkzeug.wrappers import Request, Response

from common.errors import PortalError
from common.schemas import load
from gateway import sessions
from gateway.errors import error_response
from gateway.responses import json_response

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024

Handler = Callable[..., Any]


@dataclass
class RouteSpec:
    method: str
    path: str
    summary: str
    body: type[Schema] | None = None
    response: type[Schema] | None = None
    status: int = 200
    auth: str | None = None  # None | "session" | "credential"
    tags: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    content_type: str = "application/json"


ROUTES: list[RouteSpec] = []


@dataclass(frozen=True)
class Reply:
    """A JSON result with what its declaration cannot say: another `status` (201 or 200),
    extra `headers`, or a `finish` touch on the response (e.g. setting cookies)."""

    body: Any
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    finish: Callable[[Response], None] | None = None


def _http_error(exc: HTTPException) -> Response:
    if isinstance(exc, NotFound):
        return error_response("not_found", "No such resource.", status=404)
    if isinstance(exc, MethodNotAllowed):
        response = error_response(
            "method_not_allowed", "This method is not allowed here.", status=405
        )
        response.headers["Allow"] = ", ".join(exc.valid_methods or [])
        return response
    if isinstance(exc, RequestEntityTooLarge):
        return error_response(
            "payload_too_large",
            f"The request body is larger than {MAX_BODY_BYTES} bytes.",
            {"limit": MAX_BODY_BYTES},
            status=413,
        )
    return error_response("bad_request", exc.description or "Bad request.", status=exc.code or 400)


class JsonWsgiApp(WsgiApp):
    """nameko's WSGI app, answering unmatched paths and methods with the JSON envelope."""

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        request = Request(environ, shallow=True)
        adapter = self.url_map.bind_to_environ(environ)
        try:
            provider, values = adapter.match()
            request.path_values = values
            response = provider.handle_request(request)
        except HTTPException as exc:
            response = _http_error(exc)
        return response(environ, start_response)


class JsonWebServer(WebServer):
    def get_wsgi_app(self) -> JsonWsgiApp:
        return JsonWsgiApp(self)


def read_json(request: Request, schema: Schema | None = None) -> dict[str, Any]:
    """The request's JSON object, validated by `schema`: 413, 400 or 422 otherwise."""
    request.max_content_length = MAX_BODY_BYTES
    raw = request.get_data(cache=True)
    if not raw.strip():
        data: Any = {}
    else:
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise PortalError("The request body is not valid JSON.", code="invalid_json") from exc
    if schema is None:
        return data
    return load(schema, data)


class JsonRoute(HttpRequestHandler):
    server = JsonWebServer()

    def __init__(self, method: str, url: str, spec: RouteSpec, **kwargs: Any) -> None:
        self.spec = spec
        super().__init__(method, url, **kwargs)

    def get_entrypoint_parameters(self, request: Request) -> tuple[tuple, dict[str, Any]]:
        args, kwargs = super().get_entrypoint_parameters(request)
        if self.spec.body is not None:
            kwargs = {**kwargs, "body": read_json(request, self.spec.body())}
        return args, kwargs

    def response_from_result(self, result: Any) -> Response:
        if isinstance(result, Response):
            return result
        if result is None:
            return json_response(None, 204)
        if not isinstance(result, Reply):
            result = Reply(result)
        response = json_response(result.body, result.status or self.spec.status, result.headers)
        if result.finish is not None:
            result.finish(response)
        return response

    def response_from_exception(self, exc: BaseException) -> Response:
        if isinstance(exc, PortalError):
            return error_response(exc.code, exc.message, exc.details)
        if isinstance(exc, HTTPException):
            return _http_error(exc)
        log.error("unhandled error in %s %s", self.method, self.url, exc_info=exc)
        return error_response("internal_error", "An internal error occurred.", status=500)


def _caller(service: Any, request: Request, wanted: set[str]) -> dict[str, Any]:
    """The `token` and/or `company` of a session route's caller, as the handler names them."""
    token = sessions.require_token(request)
    given: dict[str, Any] = {"token": token} if "token" in wanted else {}
    if "company" in wanted or "token" not in wanted:
        company = service.auth.authenticate(token)
        if "company" in wanted:
            given["company"] = company
    return given


def _dump(schema: Schema | None, result: Any) -> Any:
    if schema is None or result is None or isinstance(result, Response):
        return result
    if isinstance(result, Reply):
        return replace(result, body=schema.dump(result.body))
    return schema.dump(result)


def route(
    method: str,
    path: str,
    *,
    summary: str,
    body: type[Schema] | None = None,
    response: type[Schema] | None = None,
    status: int = 200,
    auth: str | None = None,
    tags: list[str] | None = None,
    errors: list[str] | None = None,
    content_type: str = "application/json",
) -> Callable[[Handler], Handler]:
    """Declare a route (see the module docstring); also records it for OpenAPI."""
    spec = RouteSpec(
        method=method,
        path=path,
        summary=summary,
        body=body,
        response=response,
        status=status,
        auth=auth,
        tags=tags or [],
        errors=errors or [],
        content_type=content_type,
    )
    ROUTES.append(spec)
    dumper = response() if response is not None else None

    def declare(handler: Handler) -> Handler:
        wanted = set(inspect.signature(handler).parameters) & {"token", "company"}

        @functools.wraps(handler)
        def entrypoint(service: Any, request: Request, *args: Any, **kwargs: Any) -> Any:
            if auth == "session":
                kwargs.update(_caller(service, request, wanted))
            return _dump(dumper, handler(service, request, *args, **kwargs))

        declared = JsonRoute.decorator(method, path, spec=spec, expected_exceptions=PortalError)
        return declared(entrypoint)

    return declare
