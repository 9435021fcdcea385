"""Traces with an in-memory exporter: the spans of HTTP requests, RPCs sent and handled,
events handled and SQL, their parents carried in context data; nothing at all when off."""

from __future__ import annotations

import os
import subprocess
import sys
from types import SimpleNamespace

import pytest
from nameko.events import EventHandler
from nameko.messaging import decode_from_headers
from nameko.rpc import Rpc
from nameko.timer import Timer
from nameko.web.handlers import HttpRequestHandler
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError
from werkzeug.routing import Map, Rule
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Response

from common import metrics, tracing
from common.errors import PortalError, ServiceUnavailable
from common.rpc import ServiceClient
from gateway.http import JsonWebServer, JsonWsgiApp

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__))))


@pytest.fixture
def spans():
    exporter = InMemorySpanExporter()
    tracing.install(exporter)
    try:
        yield exporter
    finally:
        tracing.uninstall()


class Container:
    def __init__(self, name: str) -> None:
        self.service_name = name
        self.max_workers = 3
        self.entrypoints: list = []
        self.dependencies: list = []


_CONTAINERS: list[Container] = []  # an extension holds its container weakly


def bound(name: str) -> metrics.Metrics:
    _CONTAINERS.append(Container(name))
    provider = metrics.Metrics().bind(_CONTAINERS[-1], "metrics")
    provider.setup()
    return provider


def rpc_entrypoint(method: str) -> Rpc:
    entrypoint = Rpc(expected_exceptions=PortalError)
    entrypoint.method_name = method
    return entrypoint


def event_entrypoint(source: str, event_type: str) -> EventHandler:
    entrypoint = EventHandler(source, event_type)
    entrypoint.method_name = "on_it"
    return entrypoint


def worker(entrypoint, data=None) -> SimpleNamespace:
    return SimpleNamespace(entrypoint=entrypoint, data=dict(data or {}), args=(), kwargs={})


class Replies:
    """A reply listener answering every call at once with `result`."""

    def __init__(self, response: dict) -> None:
        self.response = response
        self.pending: dict = {}

    def register_for_reply(self, correlation_id: str):
        return lambda timeout: self.response


def client(sent: list, context: dict, response: dict | None = None) -> ServiceClient:
    def publish(body, **options) -> None:
        sent.append(decode_from_headers(options["extra_headers"]))

    replies = Replies(response or {"result": "done", "error": None})
    return ServiceClient(publish, replies, lambda: context, "callee", 5)


def by_name(exporter: InMemorySpanExporter) -> dict:
    return {span.name: span for span in exporter.get_finished_spans()}


def test_an_rpc_its_sql_and_its_event_are_one_trace(spans) -> None:
    caller, callee, handler = bound("unit_caller"), bound("unit_callee"), bound("unit_handler")
    engine = create_engine("sqlite://")
    tracing.trace_sql(engine, "unit_callee")
    tracing.trace_sql(engine, "unit_callee")  # twice is once
    sent: list[dict] = []

    outer = worker(rpc_entrypoint("relay"), {"request_id": "r-1"})
    caller.worker_setup(outer)
    assert client(sent, outer.data).call("work") == "done"
    caller.worker_result(outer, "done")
    caller.worker_teardown(outer)

    # the callee's worker gets what the call's headers carried
    inner = worker(rpc_entrypoint("work"), sent[0])
    callee.worker_setup(inner)
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))
    dispatched = dict(inner.data)  # what an event it dispatches carries
    callee.worker_result(inner, "done")
    callee.worker_teardown(inner)

    handled = worker(event_entrypoint("unit_callee", "worked"), dispatched)
    handler.worker_setup(handled)
    handler.worker_result(handled)
    handler.worker_teardown(handled)

    found = by_name(spans)
    assert set(found) == {
        "unit_caller.relay",
        "callee.work",
        "unit_callee.work",
        "SELECT",
        "unit_callee.worked process",
    }
    server, call = found["unit_caller.relay"], found["callee.work"]
    handled_rpc, sql = found["unit_callee.work"], found["SELECT"]
    event = found["unit_callee.worked process"]
    assert len({span.context.trace_id for span in found.values()}) == 1
    assert server.parent is None
    assert call.parent.span_id == server.context.span_id
    assert handled_rpc.parent.span_id == call.context.span_id
    assert sql.parent.span_id == handled_rpc.context.span_id
    assert event.parent.span_id == handled_rpc.context.span_id
    assert [s.kind for s in (server, call, handled_rpc, sql, event)] == [
        SpanKind.SERVER,
        SpanKind.CLIENT,
        SpanKind.SERVER,
        SpanKind.CLIENT,
        SpanKind.CONSUMER,
    ]
    assert server.resource.attributes["service.name"] == "unit_caller"
    assert call.resource.attributes["service.name"] == "unit_caller"
    assert handled_rpc.resource.attributes["service.name"] == "unit_callee"
    assert event.resource.attributes["service.name"] == "unit_handler"
    assert handled_rpc.attributes["rpc.method"] == "work"
    assert sql.attributes["db.system.name"] == "sqlite"
    assert sql.attributes["db.query.text"] == "SELECT 1"
    assert event.attributes["portal.event"] == "worked"
    # the request ID rides along untouched, beside the trace context
    assert sent[0]["request_id"] == "r-1"
    assert sent[0]["traceparent"].split("-")[2] == format(call.context.span_id, "016x")


def test_refusals_are_answers_and_errors_are_errors(spans) -> None:
    provider = bound("unit_outcomes")
    for method, error in (
        ("fine", None),
        ("refuse", PortalError("No.", code="license_not_found")),
        ("fail", KeyError("x")),
    ):
        ctx = worker(rpc_entrypoint(method))
        provider.worker_setup(ctx)
        provider.worker_result(ctx, None, (type(error), error, None) if error else None)
        provider.worker_teardown(ctx)
    found = by_name(spans)
    fine, refused, failed = (found[f"unit_outcomes.{m}"] for m in ("fine", "refuse", "fail"))
    assert fine.attributes["portal.outcome"] == "ok"
    assert fine.status.status_code is StatusCode.UNSET
    assert refused.attributes["portal.outcome"] == "refused"
    assert refused.attributes["portal.error_code"] == "license_not_found"
    assert refused.status.status_code is StatusCode.UNSET
    assert failed.attributes["portal.outcome"] == "error"
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.events[0].name == "exception"


def test_a_failed_call_and_a_failed_statement_are_errors(spans) -> None:
    with pytest.raises(ServiceUnavailable):
        ServiceClient(
            lambda *a, **k: (_ for _ in ()).throw(OSError("broker away")),
            Replies({}),
            dict,
            "callee",
            5,
        ).call("work")
    engine = create_engine("sqlite://")
    tracing.trace_sql(engine, "unit_sql_errors")
    provider = bound("unit_sql_errors")
    ctx = worker(rpc_entrypoint("query"))
    provider.worker_setup(ctx)
    with engine.connect() as connection, pytest.raises(OperationalError):
        connection.execute(text("SELECT * FROM no_such_table"))
    provider.worker_result(ctx)
    provider.worker_teardown(ctx)
    found = by_name(spans)
    # the broker away is the ServiceUnavailable the caller sees: a fault, not a refusal
    assert found["callee.work"].status.status_code is StatusCode.ERROR
    assert found["callee.work"].attributes["portal.outcome"] == "error"
    assert found["SELECT"].status.status_code is StatusCode.ERROR
    assert found["SELECT"].parent.span_id == found["unit_sql_errors.query"].context.span_id


def test_timers_and_sql_outside_a_trace_make_no_spans(spans) -> None:
    provider = bound("unit_timer")
    engine = create_engine("sqlite://")
    tracing.trace_sql(engine, "unit_timer")
    timer = Timer(interval=5)
    timer.method_name = "relay_outbox"
    ctx = worker(timer)
    provider.worker_setup(ctx)
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))
    provider.worker_result(ctx)
    provider.worker_teardown(ctx)
    assert spans.get_finished_spans() == ()
    assert tracing.context_data() == {}  # nothing current once a worker is done


class Handler:
    """A route's provider: answers with the context data its worker would get."""

    def __init__(self, seen: list) -> None:
        self.seen = seen

    def handle_request(self, request) -> Response:
        self.seen.append(JsonWebServer.context_data_from_headers(None, request))  # type: ignore[arg-type]
        return Response("{}", status=201, content_type="application/json")


def wsgi_app(seen: list) -> JsonWsgiApp:
    server = SimpleNamespace(
        container=SimpleNamespace(service_name="unit_gateway"),
        limits=SimpleNamespace(body_timeout=5),
        make_url_map=lambda: Map(
            [
                Rule("/things/<thing_id>", endpoint=Handler(seen)),
                Rule("/healthz", endpoint=Handler(seen)),
            ]
        ),
    )
    return JsonWsgiApp(server)


def call_app(app: JsonWsgiApp, path: str, headers: dict | None = None) -> str:
    environ = EnvironBuilder(path=path, method="GET", headers=headers or {}).get_environ()
    status: list[str] = []
    b"".join(app(environ, lambda s, h, *a: status.append(s)))
    return status[0]


def test_an_http_request_is_a_span_named_by_its_route_and_its_worker_its_child(spans) -> None:
    seen: list[dict] = []
    app = wsgi_app(seen)
    # a client's own traceparent is never taken: the gateway starts the trace
    foreign = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    assert call_app(app, "/things/t-1", {"traceparent": foreign}).startswith("201")
    assert call_app(app, "/nowhere").startswith("404")
    found = by_name(spans)
    answered, missing = found["GET /things/<thing_id>"], found["GET unmatched"]
    assert answered.kind is SpanKind.SERVER and answered.parent is None
    assert format(answered.context.trace_id, "032x") != foreign.split("-")[1]
    assert answered.resource.attributes["service.name"] == "unit_gateway"
    assert answered.attributes["http.route"] == "/things/<thing_id>"
    assert answered.attributes["http.request.method"] == "GET"
    assert answered.attributes["http.response.status_code"] == 201
    assert missing.attributes["http.response.status_code"] == 404

    # the worker of the route takes the request's span, and its RPCs are its children
    (data,) = seen
    assert data["traceparent"].split("-")[2] == format(answered.context.span_id, "016x")
    gateway = bound("unit_gateway_worker")
    http_worker = worker(HttpRequestHandler("GET", "/things/<thing_id>"), data)
    gateway.worker_setup(http_worker)
    client([], http_worker.data).call("work")
    gateway.worker_result(http_worker)
    gateway.worker_teardown(http_worker)
    call = by_name(spans)["callee.work"]
    assert call.parent.span_id == answered.context.span_id
    assert call.context.trace_id == answered.context.trace_id


def test_a_probe_makes_no_trace_nor_do_the_rpcs_it_causes(spans) -> None:
    seen: list[dict] = []
    assert call_app(wsgi_app(seen), "/healthz").startswith("201")
    gateway = bound("unit_gateway_probe")
    http_worker = worker(HttpRequestHandler("GET", "/healthz"), seen[0])
    gateway.worker_setup(http_worker)
    sent: list[dict] = []
    client(sent, http_worker.data).call("ping")
    gateway.worker_result(http_worker)
    gateway.worker_teardown(http_worker)
    callee = bound("unit_probed")
    pinged = worker(rpc_entrypoint("ping"), sent[0])
    callee.worker_setup(pinged)
    callee.worker_result(pinged)
    callee.worker_teardown(pinged)
    assert spans.get_finished_spans() == ()
    assert sent[0]["traceparent"].endswith("-00")  # "not sampled", passed on


def test_off_nothing_is_traced_and_context_data_is_untouched() -> None:
    assert not tracing.enabled()
    provider = bound("unit_off")
    ctx = worker(rpc_entrypoint("work"), {"request_id": "r-2"})
    provider.worker_setup(ctx)
    sent: list[dict] = []
    client(sent, ctx.data).call("work")
    provider.worker_result(ctx)
    provider.worker_teardown(ctx)
    assert ctx.data == {"request_id": "r-2"}
    assert "traceparent" not in sent[0]
    assert tracing.context_data() == {}
    seen: list[dict] = []
    assert call_app(wsgi_app(seen), "/things/t-1").startswith("201")
    assert "traceparent" not in seen[0]


def _python(code: str, **env: str) -> str:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    environment.update(env)
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.strip()


CHECK = (
    "import sys, gateway.service, services.licensing.service\n"
    "from common import tracing\n"
    "print(tracing.configure(), any(m.startswith('opentelemetry.exporter') for m in sys.modules))"
)


def test_unset_the_exporter_is_never_imported() -> None:
    assert _python(CHECK) == "False False"


def test_set_the_process_exports_over_otlp() -> None:
    assert _python(CHECK, OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9") == "True True"
