"""Traces in real containers on the real broker and database: an HTTP request to a
gateway-like service, its RPC to a service that runs SQL and dispatches an event, and the
handler of that event are one trace, each span the child of the one that caused it."""

from __future__ import annotations

import eventlet
import pytest
import requests
from nameko import config as nameko_config
from nameko.events import EventDispatcher, event_handler
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from common import tracing
from common.db import Database
from common.metrics import Metrics
from common.rpc import RpcClient, rpc
from gateway.http import JsonRoute, RouteSpec
from services.auth.service import MIGRATIONS as AUTH_MIGRATIONS
from tests.support.suite import free_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

HANDLED: list[dict] = []


class TraceCallee:
    name = "trace_callee"

    metrics = Metrics()
    db = Database("auth", AUTH_MIGRATIONS)  # any real database will do
    dispatch = EventDispatcher()

    @rpc
    def work(self) -> str:
        self.db.ping()  # SELECT 1
        self.dispatch("worked", {"by": "callee"})
        return "done"


class TraceHandler:
    name = "trace_handler"

    metrics = Metrics()

    @event_handler("trace_callee", "worked")
    def on_worked(self, payload: dict) -> None:
        HANDLED.append(payload)


class TraceGateway:
    """The gateway's HTTP machinery (`JsonRoute`) with one route, not in the OpenAPI list."""

    name = "trace_gateway"

    metrics = Metrics()
    callee = RpcClient("trace_callee")

    @JsonRoute.decorator("GET", "/trace", spec=RouteSpec("GET", "/trace", "traced"))
    def trace(self, request) -> dict:
        return {"answer": self.callee.work()}


@pytest.fixture
def spans():
    exporter = InMemorySpanExporter()
    tracing.install(exporter)
    try:
        yield exporter
    finally:
        tracing.uninstall()


def test_an_http_request_its_rpc_sql_and_event_are_one_trace(
    config, container_factory, spans
) -> None:
    HANDLED.clear()
    port = free_port()
    nameko_config["WEB_SERVER_ADDRESS"] = f"127.0.0.1:{port}"
    for service in (TraceCallee, TraceHandler, TraceGateway):
        container_factory(service).start()

    answer = requests.get(f"http://127.0.0.1:{port}/trace", timeout=10)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"answer": "done"}

    def processed() -> list:
        return [s for s in spans.get_finished_spans() if s.kind is SpanKind.CONSUMER]

    with eventlet.Timeout(15):
        while not (HANDLED and processed()):
            eventlet.sleep(0.05)

    finished = spans.get_finished_spans()

    def one(name: str, kind: SpanKind, service: str):
        found = [
            s
            for s in finished
            if s.name == name
            and s.kind is kind
            and s.resource.attributes["service.name"] == service
        ]
        assert len(found) == 1, [(s.name, s.kind, s.resource.attributes) for s in finished]
        return found[0]

    http = one("GET /trace", SpanKind.SERVER, "trace_gateway")
    call = one("trace_callee.work", SpanKind.CLIENT, "trace_gateway")
    handled = one("trace_callee.work", SpanKind.SERVER, "trace_callee")
    sql = one("SELECT", SpanKind.CLIENT, "trace_callee")
    event = one("trace_callee.worked process", SpanKind.CONSUMER, "trace_handler")

    chain = (http, call, handled, sql, event)
    assert len({s.context.trace_id for s in chain}) == 1
    assert http.parent is None
    assert call.parent.span_id == http.context.span_id
    assert handled.parent.span_id == call.context.span_id
    assert sql.parent.span_id == handled.context.span_id
    assert event.parent.span_id == handled.context.span_id

    assert http.attributes["http.route"] == "/trace"
    assert http.attributes["http.response.status_code"] == 200
    assert sql.attributes["db.system.name"] == "postgresql"
    assert sql.attributes["db.query.text"] == "SELECT 1"
    assert handled.attributes["portal.outcome"] == "ok"
    assert event.attributes["portal.outcome"] == "ok"
