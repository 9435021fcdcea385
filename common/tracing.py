"""OpenTelemetry traces of every process (issue 12), off unless `OTEL_EXPORTER_OTLP_ENDPOINT`
is set (or a test installs an exporter with `install`).

With it set, each process exports spans over OTLP/HTTP, one `TracerProvider` per nameko
service (`service.name` is the service's name), and traces:

- every HTTP request of the gateway: a server span named `GET /api/v1/licenses/<license_id>`
  (the route pattern, never the raw path), with method, route and status (`gateway.http`);
- every RPC a `ServiceClient` sends: a client span, whose W3C `traceparent` rides the
  call's context data (nameko turns it into headers, and back into the callee's context data);
- every RPC handled: a server span, the child of the caller's client span;
- every event handled: a consumer span, the child of the span that dispatched it (a worker's
  context data holds its own span's `traceparent`, so the events and RPCs it sends carry it);
- every SQL statement a traced worker runs: a client span (engines hooked like `time_sql`).

`common.metrics.Metrics` calls into this module from its worker hooks, so every service and
the gateway are traced without touching them. Unset, every hook returns at once and the OTLP
exporter is never imported.
"""

from __future__ import annotations

import logging
import os
import weakref
from collections.abc import Iterator, MutableMapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

from nameko.events import EventHandler
from nameko.rpc import Rpc
from nameko.web.handlers import HttpRequestHandler
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from sqlalchemy import Engine, event

from common import logs, settings
from common.errors import PortalError, ServiceUnavailable

log = logging.getLogger(__name__)

ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT"
TRACES_PATH = "/v1/traces"  # what OTLP/HTTP appends to the generic endpoint
TRACEPARENT = "traceparent"  # context-data keys (W3C trace context)
TRACESTATE = "tracestate"
INSTRUMENTATION = "license_portal"
SQL_TEXT_MAX = 2000
UNKNOWN_SERVICE = "unknown"

_propagator = TraceContextTextMapPropagator()


class _State:
    """Where spans go (None: tracing is off) and the provider of each service."""

    processor: SpanProcessor | None = None
    providers: dict[str, TracerProvider] = {}  # one per service, process-wide


def enabled() -> bool:
    return _State.processor is not None


def configure() -> bool:
    """Turn tracing on if `OTEL_EXPORTER_OTLP_ENDPOINT` is set (environment or config);
    whether it is on. Called when a container sets up; the first call that finds it builds
    the exporter, later ones change nothing."""
    if _State.processor is not None:
        return True
    endpoint = settings.get(ENDPOINT)
    if not endpoint:
        return False
    # imported only here: a process without the setting never loads the exporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
        OTLPSpanExporter,
    )

    if os.environ.get(ENDPOINT):
        exporter = OTLPSpanExporter()  # it reads every OTEL_EXPORTER_OTLP_* variable itself
    else:  # from the config file: the exporter cannot see it
        exporter = OTLPSpanExporter(endpoint=endpoint.rstrip("/") + TRACES_PATH)
    _State.processor = BatchSpanProcessor(exporter)
    log.info("traces exported to %s", endpoint)
    return True


def install(exporter: SpanExporter) -> None:
    """Send every span to `exporter` as soon as it ends (tests: an in-memory exporter)."""
    uninstall()
    _State.processor = SimpleSpanProcessor(exporter)


def uninstall() -> None:
    """Tracing off again (spans still buffered are exported first)."""
    for provider in _State.providers.values():
        provider.force_flush()
    _State.providers = {}
    if _State.processor is not None:
        _State.processor.shutdown()
    _State.processor = None


def flush() -> None:
    """Export what is buffered now (a container stopping)."""
    for provider in list(_State.providers.values()):
        provider.force_flush()


def tracer(service: str | None) -> trace.Tracer:
    """The tracer of `service` (its own `service.name`); tracing must be on."""
    assert _State.processor is not None
    name = service or UNKNOWN_SERVICE
    provider = _State.providers.get(name)
    if provider is None:
        provider = TracerProvider(resource=Resource.create({SERVICE_NAME: name}))
        provider.add_span_processor(_State.processor)
        _State.providers[name] = provider
    return provider.get_tracer(INSTRUMENTATION)


def _parent(data: Any) -> otel_context.Context:
    """The trace context a worker's context data carries (an empty one if none)."""
    if not isinstance(data, dict):
        return otel_context.Context()
    carrier = {
        key: data[key] for key in (TRACEPARENT, TRACESTATE) if isinstance(data.get(key), str)
    }
    return _propagator.extract(carrier, context=otel_context.Context())


def inject(carrier: MutableMapping[str, Any], ctx: otel_context.Context | None = None) -> None:
    """Write the trace context (`ctx`, else the current one) into `carrier` (context data),
    replacing any it held."""
    carrier.pop(TRACEPARENT, None)
    carrier.pop(TRACESTATE, None)
    _propagator.inject(carrier, context=ctx)


def context_data() -> dict[str, str]:
    """The current span's trace context as context data (`{}` when tracing is off)."""
    if _State.processor is None:
        return {}
    carrier: dict[str, str] = {}
    inject(carrier)
    return carrier


def _fail(span: Span, error: BaseException | None, expected: Any = ()) -> None:
    """Mark `span` with the outcome of its work: `error` is an error unless expected (a
    `PortalError`: bad input, a declined card, is an answer; a service or database that is
    unavailable is a fault all the same)."""
    if error is None:
        span.set_attribute("portal.outcome", "ok")
    elif not isinstance(error, ServiceUnavailable) and (
        isinstance(error, PortalError) or (expected and isinstance(error, expected))
    ):
        span.set_attribute("portal.outcome", "refused")
        code = getattr(error, "code", None)
        if isinstance(code, str):
            span.set_attribute("portal.error_code", code)
    else:
        span.set_attribute("portal.outcome", "error")
        span.record_exception(error)
        span.set_status(Status(StatusCode.ERROR, type(error).__name__))


# --- workers (called by common.metrics.Metrics) --------------------------------------------

# id(worker_ctx) → (its span or None, the token of the context it attached)
_workers: dict[int, tuple[Span | None, object]] = {}


def start_worker(worker_ctx: Any, service: str) -> None:
    """In the worker's greenthread, before it runs: its span (an RPC handled, an event
    handled) made current, the child of the context its context data carries, whose
    `traceparent` then names it. An HTTP worker of the gateway takes the request's span."""
    if _State.processor is None:
        return
    entrypoint = worker_ctx.entrypoint
    parent = _parent(worker_ctx.data)
    if isinstance(entrypoint, HttpRequestHandler):
        _workers[id(worker_ctx)] = (None, otel_context.attach(parent))
        return
    if isinstance(entrypoint, Rpc):
        name = f"{service}.{entrypoint.method_name}"
        kind = SpanKind.SERVER
        attributes = {
            "rpc.system": "nameko",
            "rpc.service": service,
            "rpc.method": entrypoint.method_name,
        }
    elif isinstance(entrypoint, EventHandler):
        name = f"{entrypoint.source_service}.{entrypoint.event_type} process"
        kind = SpanKind.CONSUMER
        attributes = {
            "messaging.system": "rabbitmq",
            "messaging.operation.type": "process",
            "messaging.destination.name": f"{entrypoint.source_service}.events",
            "portal.event": entrypoint.event_type,
            "portal.handler": f"{service}.{entrypoint.method_name}",
        }
    else:  # timers: a poll every second would be a trace every second
        return
    span = tracer(service).start_span(name, context=parent, kind=kind, attributes=attributes)
    current = trace.set_span_in_context(span, parent)
    if isinstance(worker_ctx.data, dict):
        inject(worker_ctx.data, current)  # what this worker's RPCs and events carry
    _workers[id(worker_ctx)] = (span, otel_context.attach(current))


def finish_worker(worker_ctx: Any, error: BaseException | None) -> None:
    """The worker answered (or failed): its span records the outcome and ends."""
    if _State.processor is None:
        return
    span, _ = _workers.get(id(worker_ctx), (None, None))
    if span is None or not span.is_recording():
        return
    _fail(span, error, getattr(worker_ctx.entrypoint, "expected_exceptions", ()))
    span.end()


def end_worker(worker_ctx: Any) -> None:
    """The worker is done: its context detached (its span ended if it was not yet)."""
    if _State.processor is None:
        return
    span, token = _workers.pop(id(worker_ctx), (None, None))
    if span is not None and span.is_recording():
        span.end()
    if token is not None:
        otel_context.detach(token)  # type: ignore[arg-type]


# --- RPC calls (common.rpc.ServiceClient.call) ----------------------------------------------


def client_span(service: str, method: str, data: dict[str, Any]) -> AbstractContextManager[Any]:
    """Around one RPC sent: a client span whose `traceparent` goes into `data` (the call's
    context data). Nothing when tracing is off."""
    if _State.processor is None:
        return nullcontext()
    return _client_span(service, method, data)


@contextmanager
def _client_span(service: str, method: str, data: dict[str, Any]) -> Iterator[Span]:
    span = tracer(logs.current_service()).start_span(
        f"{service}.{method}",
        kind=SpanKind.CLIENT,
        attributes={"rpc.system": "nameko", "rpc.service": service, "rpc.method": method},
    )
    inject(data, trace.set_span_in_context(span))
    try:
        with trace.use_span(span, end_on_exit=False, record_exception=False):
            yield span
    except BaseException as exc:
        _fail(span, exc)
        raise
    else:
        _fail(span, None)
    finally:
        span.end()


# --- HTTP requests (gateway.http) -----------------------------------------------------------


def http_span(service: str, method: str, quiet: bool = False) -> AbstractContextManager[Any]:
    """Around one HTTP request the gateway answers: a server span, current while it runs
    (`http_answered` names it once the route is known). Nothing when tracing is off. A
    `quiet` request (a probe's `/healthz`) is not sampled, nor is anything it causes."""
    if _State.processor is None:
        return nullcontext()
    return _http_span(service, method, quiet)


# the parent of a quiet request: not sampled, so neither is anything below it
_UNSAMPLED = trace.set_span_in_context(
    trace.NonRecordingSpan(
        trace.SpanContext(trace_id=1, span_id=1, is_remote=True, trace_flags=trace.TraceFlags(0))
    ),
    otel_context.Context(),
)


@contextmanager
def _http_span(service: str, method: str, quiet: bool) -> Iterator[Span]:
    span = tracer(service).start_span(
        method,
        context=_UNSAMPLED if quiet else otel_context.Context(),
        kind=SpanKind.SERVER,
        attributes={"http.request.method": method},
    )
    try:
        with trace.use_span(span, end_on_exit=False, record_exception=False):
            yield span
    except BaseException as exc:
        _fail(span, exc)
        raise
    finally:
        span.end()


def http_answered(span: Span | None, route: str, method: str, status: int) -> None:
    """The request's span: named by its route pattern, with the status answered."""
    if span is None:
        return
    span.update_name(f"{method} {route}")
    span.set_attribute("http.route", route)
    span.set_attribute("http.response.status_code", status)
    if status >= 500:
        span.set_status(Status(StatusCode.ERROR))


# --- SQL ------------------------------------------------------------------------------------

_SPANS = "portal.tracing.spans"  # the connection's statement spans, newest last
_TRACED_ENGINES: weakref.WeakSet[Engine] = weakref.WeakSet()


def trace_sql(engine: Engine, service: str) -> None:
    """A span per statement `engine` runs inside a traced worker (of `service`). Nothing
    when tracing is off; statements outside a trace (migrations, scrapes) make none."""
    if _State.processor is None or engine in _TRACED_ENGINES:
        return
    _TRACED_ENGINES.add(engine)
    system = engine.dialect.name

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        span = None
        if _State.processor is not None and trace.get_current_span().is_recording():
            verb = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else "SQL"
            span = tracer(service).start_span(
                verb,
                kind=SpanKind.CLIENT,
                attributes={
                    "db.system.name": system,
                    "db.operation.name": verb,
                    "db.query.text": statement[:SQL_TEXT_MAX],
                },
            )
        conn.info.setdefault(_SPANS, []).append(span)

    def after(conn: Any, *args: Any) -> None:
        spans = conn.info.get(_SPANS)
        span = spans.pop() if spans else None
        if span is not None:
            span.end()

    def failed(context: Any) -> None:
        spans = context.connection.info.get(_SPANS) if context.connection else None
        span = spans.pop() if spans else None
        if span is not None:
            _fail(span, context.original_exception)
            span.end()

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    event.listen(engine, "handle_error", failed)
