"""The gateway's HTTP entrypoint: JSON in, JSON out, one error envelope, a route registry.

`@route("POST", "/api/v1/sessions", body=LoginBody, status=201, summary=...)` is nameko's
`@http` plus:
- the request body is size-limited (413), parsed as JSON (400 `invalid_json`) and validated
  by the marshmallow schema (422 naming the fields) *before* a worker runs, and handed to
  the method as `body`;
- results become JSON (`dict`/`list`), 204 (`None`), or pass through (`Response`);
- every exception becomes `{"error": {...}}` with the status from `gateway.errors`;
- the route is recorded for the OpenAPI document.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from marshmallow import Schema
from nameko.web.handlers import HttpRequestHandler
from nameko.web.server import WebServer, WsgiApp
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound, RequestEntityTooLarge
from werkzeug.wrappers import Request, Response

from common.errors import PortalError
from common.schemas import load
from gateway.errors import error_response, json_response

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024


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

    def __call__(self, environ, start_response):
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
    def get_wsgi_app(self):
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

    def __init__(self, method: str, url: str, spec: RouteSpec | None = None, **kwargs: Any):
        self.spec = spec
        super().__init__(method, url, **kwargs)

    def get_entrypoint_parameters(self, request: Request):
        args, kwargs = super().get_entrypoint_parameters(request)
        if self.spec is not None and self.spec.body is not None:
            kwargs = {**kwargs, "body": read_json(request, self.spec.body())}
        return args, kwargs

    def response_from_result(self, result: Any) -> Response:
        if isinstance(result, Response):
            return result
        if result is None:
            return json_response(None, 204)
        status = self.spec.status if self.spec else 200
        if isinstance(result, tuple):
            status, result = result
        return json_response(result, status)

    def response_from_exception(self, exc: BaseException) -> Response:
        if isinstance(exc, PortalError):
            return error_response(exc.code, exc.message, exc.details)
        if isinstance(exc, HTTPException):
            return _http_error(exc)
        log.error("unhandled error in %s %s", self.method, self.url, exc_info=exc)
        return error_response("internal_error", "An internal error occurred.", status=500)


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
):
    """Declare a JSON route (see the module docstring); also records it for OpenAPI."""
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
    return JsonRoute.decorator(method, path, spec=spec, expected_exceptions=PortalError)
