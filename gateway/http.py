"""The gateway's HTTP entrypoint: JSON in, JSON out, one error envelope, a route registry.

`@route("POST", "/api/v1/purchases", body=PurchaseBody, response=PurchaseOut, status=201,
auth="session", summary=...)` is nameko's `@http` plus:
- the request body (of every route) is read into memory before anything looks at it, at
  most MAX_BODY_BYTES (a route may declare another `max_body`; 413 before a byte is read
  when it says it is longer) within the server's body timeout (408); a JSON route then
  refuses another Content-Type (415 `unsupported_media_type`), parses it (400
  `invalid_json`; 422 for text no UTF-8 holds, such as lone surrogates) and validates it
  with the marshmallow schema (422 naming the fields) *before* a worker runs, and hands it
  to the method as `body`; a `raw_body` route (a signed webhook, whose signature covers
  the bytes exactly as sent) gets them as UTF-8 text instead, unparsed;
- `auth="session"` authenticates the caller before the method runs: the session token
  (bearer, or the portal's cookie with its CSRF header on a state change; 401/403 otherwise)
  and the company it belongs to with the session's user (`company["user"]`), asked of the
  service's `auth` client and handed to the method as `company`. The route's `roles`
  (required, `gateway.roles`) are checked then: another role is 403 `forbidden`. The user
  becomes the worker's actor (`actor` in the context data, common/audit.py), so every RPC
  the route makes knows who acts. A method that takes `token` instead gets the checked token
  and no company (for calls that give the token to auth, which checks it itself; only for
  routes every role may use);
- `auth="lease"` (a floating license's lease routes, design §13) hands the method
  `lease_token`: the `Authorization: Bearer` token a check-out answered. Only the header
  counts (never a cookie: no browser sends one on its own, so there is nothing to forge
  across sites); none, another scheme or one no lease token could be is 401
  `invalid_lease_token` before anyone is asked. Whether it is the lease's is licensing's
  to say (the same 401);
- a POST, PUT, PATCH or DELETE runs its worker with the request key in the context data
  (`request_key`: the `Idempotency-Key` header, else a new one; `gateway.request_keys`), so
  every RPC the route makes carries it and a redelivered one changes nothing twice;
- path parameters that name an identifier arrive in its canonical form
  (`/licenses/l-edpq-yvv2` hands the method `L-EDPQ-YVV2`; `common/identifiers.py`);
- a JSON result is dumped through the `response` schema (the one the OpenAPI document
  shows), so a client gets exactly its fields; a `Reply` with another status declared in
  `responses` (`{202: schemas.PurchaseActionOut}`) through that status's schema;
- results become JSON (`dict`, or a `Reply` for another status, headers or cookies), 204
  (`None`), or pass through (`Response`);
- every exception becomes `{"error": {...}}` with the status from `gateway.errors`; a
  refusal (a `PortalError`, a 404) is logged as one INFO line, never a traceback;
- every request has an ID (`X-Request-ID`, `gateway.request_ids`): in the response header,
  the error envelope, the worker's context data and the log lines of this process;
- every answer is counted and timed by route, method and status
  (`portal_http_requests_total`, `portal_http_request_duration_seconds`), and with tracing on
  (`common.tracing`) is a server span named by its route, whose trace context the worker's
  context data carries on to every RPC the route makes;
- every answer, redirects and static files included, carries the security headers
  (`gateway.responses`);
- a URL no route takes is a JSON 404, but a browser's GET of a path outside the API gets
  the portal's HTML "Page not found" (`pages.wants_page`);
- the route is recorded for the OpenAPI document.
"""

from __future__ import annotations

import functools
import inspect
import io
import json
import logging
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

import eventlet
from eventlet.wsgi import ChunkReadError
from marshmallow import Schema
from nameko.containers import WorkerContext
from nameko.extensions import DependencyProvider
from nameko.web.handlers import HttpRequestHandler
from nameko.web.server import WsgiApp
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound, RequestEntityTooLarge
from werkzeug.routing import RequestRedirect
from werkzeug.utils import redirect
from werkzeug.wrappers import Request, Response
from werkzeug.wsgi import get_content_length

from common import identifiers, tracing
from common.audit import user_actor
from common.context import ACTOR, set_request_id
from common.errors import PortalError, validation_error
from common.metrics import HTTP_DURATION, HTTP_REQUESTS
from common.schemas import load
from gateway import clients, pages, payments, request_ids, request_keys, roles, sessions
from gateway.errors import error_response
from gateway.responses import DEFAULT_CSP, json_response, local_path, security_headers
from gateway.server import CLOSE_CONNECTION, GuardedWebServer

log = logging.getLogger(__name__)
# one line per answer (by route, never the path: a path or query may hold a token)
access = logging.getLogger("gateway.access")
QUIET_ROUTES = frozenset({"/healthz", "/readyz"})

MAX_BODY_BYTES = 64 * 1024
TRANSFER_ENCODING = "HTTP_TRANSFER_ENCODING"  # in a WSGI environ
# the WSGI environ key of the matched route's rule (`/api/v1/licenses/<license_id>`): the
# `route` label of the HTTP metrics, a bounded set whatever paths clients send
ROUTE_RULE = "gateway.route"
UNMATCHED = "unmatched"
REQUEST_METHOD = "REQUEST_METHOD"  # of a WSGI environ
PATH_INFO = "PATH_INFO"  # of a WSGI environ
# half of a UTF-16 surrogate pair alone: JSON can spell it ("\ud800"), UTF-8 cannot hold it
LONE_SURROGATE = re.compile("[\ud800-\udfff]")

Handler = Callable[..., Any]

# path parameters holding an identifier, and its canonical form (an installation ID is any
# Unicode and stays exactly as the product sent it; a recurring payment ID is opaque)
CANONICAL_PARAMETERS: dict[str, Callable[[str], str]] = {
    "license_id": identifiers.license_id,
    "receipt_number": identifiers.receipt_number,
    "user_id": identifiers.user_id,
    # `ls-7kqx-m2pd` is `LS-7KQX-M2PD`: the upper case of license IDs
    "lease_id": identifiers.license_id,
}


@dataclass
class RouteSpec:
    method: str
    path: str
    summary: str
    body: type[Schema] | None = None
    response: type[Schema] | None = None
    status: int = 200
    auth: str | None = None  # None | "session" | "credential" | "lease"
    roles: tuple[str, ...] = ()  # of a session route: who may use it (gateway.roles)
    tags: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    content_type: str = "application/json"
    max_body: int = MAX_BODY_BYTES  # bytes of request body the route takes
    raw_body: bool = False  # the body as text, unparsed (a signed webhook)
    responses: dict[int, type[Schema]] = field(default_factory=dict)  # other successes


ROUTES: list[RouteSpec] = []


@dataclass(frozen=True)
class Reply:
    """A JSON result with what its declaration cannot say: another `status` (201 or 200),
    extra `headers`, or a `finish` touch on the response (e.g. setting cookies)."""

    body: Any
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    finish: Callable[[Response], None] | None = None


class BodyTimeout(TimeoutError):
    """The request body did not arrive within the server's body timeout."""


class BodyTooLarge(RequestEntityTooLarge):
    """A request body over the route's `limit` of bytes."""

    def __init__(self, limit: int = MAX_BODY_BYTES) -> None:
        super().__init__()
        self.limit = limit


def _http_error(exc: HTTPException) -> Response:
    if isinstance(exc, RequestRedirect):
        # werkzeug's own (a doubled slash in a path): to the same site only, whatever the
        # Host header said
        parts = urlsplit(exc.new_url)
        target = local_path(parts.path + (f"?{parts.query}" if parts.query else ""))
        if target is not None:
            return redirect(target, code=exc.code)
        return error_response("not_found", "No such resource.", status=404)
    if isinstance(exc, NotFound):
        return error_response("not_found", "No such resource.", status=404)
    if isinstance(exc, MethodNotAllowed):
        response = error_response(
            "method_not_allowed", "This method is not allowed here.", status=405
        )
        response.headers["Allow"] = ", ".join(exc.valid_methods or [])
        return response
    if isinstance(exc, RequestEntityTooLarge):
        limit = getattr(exc, "limit", MAX_BODY_BYTES)
        return error_response(
            "payload_too_large",
            f"The request body is larger than {limit} bytes.",
            {"limit": limit},
            status=413,
        )
    return error_response("bad_request", exc.description or "Bad request.", status=exc.code or 400)


class GatewayRequest(Request):
    """A request whose body (already in memory, see `take_body`) werkzeug also bounds."""

    max_content_length = MAX_BODY_BYTES
    max_form_memory_size = MAX_BODY_BYTES
    max_form_parts = 50


def take_body(environ: dict[str, Any], timeout: float, limit: int = MAX_BODY_BYTES) -> None:
    """Read the request body into memory before anyone parses it: at most `limit` bytes,
    within `timeout` seconds. BodyTooLarge (before reading a byte when the Content-Length
    says so), BodyTimeout, or ChunkReadError for broken chunked encoding.

    Afterwards `wsgi.input` is the body in memory, with its true Content-Length.
    """
    stream = environ["wsgi.input"]
    declared = get_content_length(environ) or 0
    chunked = environ.pop(TRANSFER_ENCODING, "").lower() == "chunked"
    if declared > limit:
        raise BodyTooLarge(limit)
    body = b""
    if declared or chunked:
        with eventlet.Timeout(timeout, BodyTimeout()):
            while len(body) <= limit:
                part = stream.read(limit + 1 - len(body))
                if not part:
                    break
                body += part
        if len(body) > limit:
            raise BodyTooLarge(limit)
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))


class JsonWsgiApp(WsgiApp):
    """nameko's WSGI app: the body bounded and read first, unmatched paths and methods
    answered with the JSON envelope, the security headers on every answer."""

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        started = time.perf_counter()
        request_id = request_ids.take(environ)
        set_request_id(request_id)  # this greenthread's log lines and error envelopes
        method = environ[REQUEST_METHOD]
        try:
            quiet = environ.get(PATH_INFO) in QUIET_ROUTES  # probes make no traces
            service = getattr(getattr(self.server, "container", None), "service_name", "gateway")
            with tracing.http_span(service, method, quiet) as span:
                response = self._unreadable_body(environ) or self._dispatch(environ)
                for name, value in security_headers(DEFAULT_CSP).items():
                    response.headers.setdefault(name, value)
                response.headers[request_ids.HEADER] = request_id
                route = environ.get(ROUTE_RULE, UNMATCHED)
                tracing.http_answered(span, route, method, response.status_code)
            HTTP_REQUESTS.labels(route, method, str(response.status_code)).inc()
            elapsed = time.perf_counter() - started
            HTTP_DURATION.labels(route, method).observe(elapsed)
            level = logging.DEBUG if route in QUIET_ROUTES else logging.INFO
            access.log(level, "%s %s %d in %.3fs", method, route, response.status_code, elapsed)
            return response(environ, start_response)
        finally:
            set_request_id(None)

    def _unreadable_body(self, environ: dict[str, Any]) -> Response | None:
        """The answer to a body that cannot be taken, or None once it is in memory. What
        is left of a refused body is not read: the connection closes after the answer."""
        try:
            take_body(environ, self.server.limits.body_timeout, self._body_limit(environ))
        except RequestEntityTooLarge as exc:
            response = _http_error(exc)
        except (BodyTimeout, TimeoutError):
            response = error_response(
                "request_timeout", "The request body did not arrive in time.", status=408
            )
        except (ChunkReadError, ValueError):
            response = error_response("bad_request", "The request body is malformed.")
        else:
            return None
        environ.get(CLOSE_CONNECTION, lambda: None)()
        return response

    def _body_limit(self, environ: dict[str, Any]) -> int:
        """The `max_body` of the route the request is for (MAX_BODY_BYTES for a path or
        method no route takes: its answer reads no body)."""
        try:
            rule, _ = self.url_map.bind_to_environ(environ).match(return_rule=True)
        except HTTPException:
            return MAX_BODY_BYTES
        spec = getattr(rule.endpoint, "spec", None)
        return spec.max_body if spec is not None else MAX_BODY_BYTES

    def _dispatch(self, environ: dict[str, Any]) -> Response:
        request = GatewayRequest(environ)
        adapter = self.url_map.bind_to_environ(environ)
        try:
            rule, values = adapter.match(return_rule=True)
            environ[ROUTE_RULE] = rule.rule
            provider = rule.endpoint
            request.path_values = values
            return provider.handle_request(request)
        except NotFound:
            # a browser's unknown page is a page; the API's unknown URL stays JSON
            if pages.wants_page(request.method, request.path):
                return pages.not_found()
            return error_response("not_found", "No such resource.", status=404)
        except HTTPException as exc:
            return _http_error(exc)


class JsonWebServer(GuardedWebServer):
    def start(self) -> None:
        clients.trusted_proxies()  # a wrong TRUSTED_PROXIES stops the start, not a login
        payments.check()  # so does a payment provider the buy page could not use
        super().start()

    def context_data_from_headers(self, request: Request) -> dict[str, Any]:
        """The worker's context data: the request ID, the request key of a state change
        (a malformed `Idempotency-Key` is a 422 before the worker runs) and, with tracing
        on, the trace context of the request's span (never a client's `traceparent`).
        Nothing else from the request becomes context data: nameko's own headers are never
        read from HTTP."""
        return {
            **request_ids.context_data(request.environ),
            **request_keys.context_data(request),
            **tracing.context_data(),  # the request's span (nothing when tracing is off)
        }

    def get_wsgi_app(self) -> JsonWsgiApp:
        return JsonWsgiApp(self)


def read_json(request: Request, schema: Schema | None = None) -> dict[str, Any]:
    """The request's JSON object, validated by `schema`: 413, 415, 400 or 422 otherwise.

    An empty body is `{}` whatever its Content-Type; any other body must say it is JSON
    (`application/json`, or `application/<something>+json`).
    """
    request.max_content_length = MAX_BODY_BYTES
    raw = request.get_data(cache=True)
    if not raw.strip():
        data: Any = {}
    else:
        if not request.is_json:
            raise PortalError(
                "Send the request body as JSON, with Content-Type: application/json.",
                code="unsupported_media_type",
                details={"content_type": request.mimetype or None},
            )
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise PortalError("The request body is not valid JSON.", code="invalid_json") from exc
        problem = _lone_surrogate(data)
        if problem is not None:
            raise validation_error(problem)
    if schema is None:
        return data
    return load(schema, data)


def read_text(request: Request, limit: int) -> str:
    """The request body as sent, as text: at most `limit` bytes (413 otherwise), UTF-8 (400
    `bad_request` otherwise), never parsed (a signature covers these exact bytes)."""
    request.max_content_length = limit
    try:
        return request.get_data(cache=True).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PortalError("The request body is not UTF-8 text.", code="bad_request") from exc


def _lone_surrogate(data: Any) -> dict[str, Any] | None:
    """Where in parsed JSON a string (a value or a key) holds a lone surrogate, named as
    marshmallow names fields (`{"card": {"number": [message]}}`); None if nowhere."""
    stack: list[tuple[tuple[Any, ...], Any]] = [((), data)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str):
            if LONE_SURROGATE.search(value):
                return _field_message(path)
        elif isinstance(value, dict):
            for key, item in value.items():
                if LONE_SURROGATE.search(key):
                    # a name no UTF-8 can hold is shown by its escapes
                    return _field_message((*path, key.encode("utf-8", "backslashreplace").decode()))
                stack.append(((*path, key), item))
        elif isinstance(value, list):
            stack.extend(((*path, index), item) for index, item in enumerate(value))
    return None


def _field_message(path: tuple[Any, ...]) -> dict[str, Any]:
    messages: Any = ["Must be valid Unicode text (no lone surrogates)."]
    for name in reversed(path or ("_schema",)):
        messages = {name: messages}
    return messages


class JsonRoute(HttpRequestHandler):
    server = JsonWebServer()

    def __init__(self, method: str, url: str, spec: RouteSpec, **kwargs: Any) -> None:
        self.spec = spec
        super().__init__(method, url, **kwargs)

    def get_entrypoint_parameters(self, request: Request) -> tuple[tuple, dict[str, Any]]:
        args, kwargs = super().get_entrypoint_parameters(request)
        kwargs = canonical_parameters(kwargs)
        if self.spec.raw_body:
            kwargs = {**kwargs, "body": read_text(request, self.spec.max_body)}
        elif self.spec.body is not None:
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


def canonical_parameters(values: dict[str, Any]) -> dict[str, Any]:
    """Path parameters with every identifier in its canonical form (the rest unchanged)."""
    return {
        name: CANONICAL_PARAMETERS[name](value)
        if name in CANONICAL_PARAMETERS and isinstance(value, str)
        else value
        for name, value in values.items()
    }


class WorkerData(DependencyProvider):
    """Dependency: the worker's context data itself, so a route can name who acts once the
    session is known (every RPC the worker makes after that carries it)."""

    def get_dependency(self, worker_ctx: WorkerContext) -> dict[str, Any]:
        return worker_ctx.data


def _caller(
    service: Any, request: Request, wanted: set[str], allowed: tuple[str, ...]
) -> dict[str, Any]:
    """The `token` and/or `company` of a session route's caller, as the handler names them,
    once the session's role is among `allowed` (403 `forbidden` otherwise)."""
    token = sessions.require_token(request)
    given: dict[str, Any] = {"token": token} if "token" in wanted else {}
    if "company" in wanted or "token" not in wanted or set(allowed) != set(roles.EVERYONE):
        company = service.auth.authenticate(token)
        roles.check(company, allowed)
        if company.get("user"):
            service.context_data[ACTOR] = user_actor(company["user"]).to_dict()
        if "company" in wanted:
            given["company"] = company
    return given


def _lease_token(request: Request) -> str:
    """The lease token of a lease route's `Authorization: Bearer` header; 401
    `invalid_lease_token` without asking anyone when there is none that could be one."""
    token = sessions.bearer_token(request)
    if not sessions.fits(token):
        raise PortalError(
            "Send the lease token of the check-out as `Authorization: Bearer <lease_token>`.",
            code="invalid_lease_token",
        )
    return token


def _dump(schema: Schema | None, result: Any, others: dict[int, Schema] | None = None) -> Any:
    """`result` through the route's `schema`, or a Reply of another status through the
    schema that status declares (`responses`)."""
    if isinstance(result, Reply) and result.status in (others or {}):
        return replace(result, body=others[result.status].dump(result.body))
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
    roles: tuple[str, ...] | None = None,
    tags: list[str] | None = None,
    errors: list[str] | None = None,
    content_type: str = "application/json",
    max_body: int = MAX_BODY_BYTES,
    raw_body: bool = False,
    responses: dict[int, type[Schema]] | None = None,
) -> Callable[[Handler], Handler]:
    """Declare a route (see the module docstring); also records it for OpenAPI."""
    if (auth == "session") != (roles is not None):
        raise TypeError(f"{method} {path}: a session route, and only one, declares its roles")
    if raw_body and body is not None:
        raise TypeError(f"{method} {path}: a raw body has no schema")
    spec = RouteSpec(
        method=method,
        path=path,
        summary=summary,
        body=body,
        response=response,
        status=status,
        auth=auth,
        roles=tuple(roles or ()),
        tags=tags or [],
        errors=errors or [],
        content_type=content_type,
        max_body=max_body,
        raw_body=raw_body,
        responses=dict(responses or {}),
    )
    ROUTES.append(spec)
    dumper = response() if response is not None else None
    others = {status: schema() for status, schema in spec.responses.items()}

    def declare(handler: Handler) -> Handler:
        parameters = set(inspect.signature(handler).parameters)
        wanted = parameters & {"token", "company"}
        if (auth == "lease") != ("lease_token" in parameters):
            raise TypeError(f"{method} {path}: a lease route, and only one, takes `lease_token`")

        @functools.wraps(handler)
        def entrypoint(service: Any, request: Request, *args: Any, **kwargs: Any) -> Any:
            if auth == "session":
                kwargs.update(_caller(service, request, wanted, spec.roles))
            elif auth == "lease":
                kwargs["lease_token"] = _lease_token(request)
            return _dump(dumper, handler(service, request, *args, **kwargs), others)

        # a refusal, a 404 of a static file included, is one INFO line (`common.logs`)
        declared = JsonRoute.decorator(
            method, path, spec=spec, expected_exceptions=(PortalError, HTTPException)
        )
        return declared(entrypoint)

    return declare
