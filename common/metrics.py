"""Prometheus metrics of every process (DESIGN.md §14), and the worker's request ID.

`metrics = Metrics()` on a service (or the gateway) is the one place that instruments it:

- its `worker_setup` / `worker_result` hooks see every entrypoint, so RPC methods are counted
  and timed by method and outcome (`portal_rpc_requests_total`,
  `portal_rpc_request_duration_seconds`), event handlers counted by event and outcome
  (`portal_events_handled_total`), timers by outcome (`portal_timer_runs_total`, and
  `portal_timer_last_success_timestamp_seconds`: "the renewal pass has not run for a day"),
  and busy workers tracked against `max_workers`;
- `worker_setup` records the request ID of the worker (context data `request_id`, else an
  event payload's) in `common.context`, so log lines and staged events carry it;
- every RPC request and event handled is one INFO line of the `portal.workers` logger
  (`licensing.activate refused in 0.012s`), so a request ID finds it;
- business counters come from what an entrypoint answered: `Metrics(business={"activate":
  ACTIVATION_RESULT})` counts `portal_activations_total{result}` after every `activate`;
- gauges read at scrape time: `portal_outbox_unpublished{service}` (with `outbox=True`) and
  any of `SCRAPED` (`gauges={NOTIFY_EMAILS_PENDING: count}`), from the service's database;
- with `METRICS_ADDRESS` (`host:port`) set, the process serves `GET /metrics` there (one
  server per process, however many containers it runs; port 0 takes a free one and logs it).
  The gateway's own port never serves it;
- with `OTEL_EXPORTER_OTLP_ENDPOINT` set, its hooks also trace every RPC and event handled,
  and the SQL they run (`common.tracing`).

Outcomes: `ok`, `refused` (an expected `PortalError`: bad input, a declined card) or `error`
(anything else). The gateway's HTTP metrics are recorded by `gateway.http`.
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import eventlet
from eventlet import wsgi
from nameko import config as nameko_config
from nameko.constants import WEB_SERVER_CONFIG_KEY
from nameko.events import EventHandler
from nameko.extensions import DependencyProvider
from nameko.rpc import Rpc
from nameko.timer import Timer
from nameko.web.handlers import HttpRequestHandler
from prometheus_client import (
    REGISTRY,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    make_wsgi_app,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine, event, text

from common import logs, settings, tracing
from common.context import REQUEST_ID, set_request_id
from common.db import Database, Db
from common.errors import PortalError

log = logging.getLogger(__name__)
# where the metrics are served is announced whatever LOG_LEVEL says (a port 0 is found so)
announce = logging.getLogger("portal.metrics")
announce.setLevel(logging.INFO)
# no `*_created` series beside each counter: they double a scrape and no alert reads them
disable_created_metrics()
# one line per RPC request and event handled, with the request ID: what `grep <request id>`
# finds in a service's log (readiness pings only at DEBUG, or probes would fill it)
access = logging.getLogger("portal.workers")
QUIET_METHODS = frozenset({"ping"})

PATH = "/metrics"
PATH_INFO = "PATH_INFO"  # of a WSGI environ

# seconds: from a 2 ms validation to an RPC timeout
LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

HTTP_REQUESTS = Counter(
    "portal_http_requests", "HTTP requests answered by the gateway", ["route", "method", "status"]
)
HTTP_DURATION = Histogram(
    "portal_http_request_duration_seconds",
    "Time the gateway took to answer, by route",
    ["route", "method"],
    buckets=LATENCY_BUCKETS,
)
RPC_REQUESTS = Counter(
    "portal_rpc_requests", "RPC requests handled", ["service", "method", "outcome"]
)
RPC_DURATION = Histogram(
    "portal_rpc_request_duration_seconds",
    "Time an RPC method ran in its worker",
    ["service", "method"],
    buckets=LATENCY_BUCKETS,
)
EVENTS_HANDLED = Counter("portal_events_handled", "Events handled", ["service", "event", "outcome"])
TIMER_RUNS = Counter(
    "portal_timer_runs",
    "Timer entrypoints run (renewal pass, outbox relay, ...)",
    ["service", "timer", "outcome"],
)
TIMER_LAST_SUCCESS = Gauge(
    "portal_timer_last_success_timestamp_seconds",
    "When a timer entrypoint last ran without an error (Unix time)",
    ["service", "timer"],
)
WORKERS_BUSY = Gauge("portal_workers_busy", "Workers running now", ["service"])
WORKERS_MAX = Gauge("portal_workers_max", "Workers a process runs at most", ["service"])
ACTIVATIONS = Counter(
    "portal_activations",
    "Activations asked for, by result (created, existing or error code)",
    ["result"],
)
VALIDATIONS = Counter("portal_validations", "Certificate validations, by answer code", ["code"])
# the gateway's validation read model (gateway/read_model.py): answered from its cache (hit),
# after fetching the facts (miss), or by licensing's `validate` RPC (bypass)
VALIDATION_CACHE = Counter(
    "portal_validation_cache", "Validations by how the gateway answered them", ["result"]
)
# where an RPC's time goes (`make bench` splits it): time in SQL, summed, and statements
DB_SECONDS = Counter("portal_db_seconds", "Seconds spent executing SQL statements", ["service"])
DB_QUERIES = Counter("portal_db_queries", "SQL statements executed", ["service"])
OUTBOX_PUBLISH_SECONDS = Counter(
    "portal_outbox_publish_seconds",
    "Seconds spent publishing committed events, inside the request that committed them",
    ["service"],
)
PAYMENTS = Counter(
    "portal_payments", "Card payments, by outcome (paid, or the refusal's code)", ["outcome"]
)

OUTBOX_UNPUBLISHED = "portal_outbox_unpublished"
NOTIFY_EMAILS_PENDING = "portal_notify_emails_pending"
# gauges read from a service's database when Prometheus scrapes, with their help text
SCRAPED = {
    OUTBOX_UNPUBLISHED: "Events staged in the outbox and not yet published",
    NOTIFY_EMAILS_PENDING: "Emails waiting to be sent (pending or being sent)",
}
_OUTBOX_SQL = text("SELECT count(*) FROM event_outbox WHERE published_at IS NULL")

# every metric name a scrape can show (what dashboards and alerts may use), without the
# `_total` / `_bucket` / `_sum` / `_count` suffixes Prometheus adds
NAMES = frozenset(
    {
        "portal_http_requests_total",
        "portal_http_request_duration_seconds",
        "portal_rpc_requests_total",
        "portal_rpc_request_duration_seconds",
        "portal_events_handled_total",
        "portal_workers_busy",
        "portal_workers_max",
        "portal_activations_total",
        "portal_validations_total",
        "portal_validation_cache_total",
        "portal_payments_total",
        "portal_db_seconds_total",
        "portal_timer_runs_total",
        "portal_timer_last_success_timestamp_seconds",
        "portal_db_queries_total",
        "portal_outbox_publish_seconds_total",
        *SCRAPED,
    }
)

Labeler = Callable[[Any, BaseException | None], Mapping[str, float]]


@dataclass(frozen=True)
class Business:
    """A business counter moved by what one entrypoint answered: `labels(result, error)`
    gives `{label value: increment}` (usually one value, 1)."""

    counter: Counter
    labels: Labeler

    def record(self, result: Any, error: BaseException | None) -> None:
        for value, amount in self.labels(result, error).items():
            if amount:
                self.counter.labels(value).inc(amount)


def _code(error: BaseException) -> str:
    return error.code if isinstance(error, PortalError) else "error"


def _activation(result: Any, error: BaseException | None) -> dict[str, float]:
    if error is not None:
        return {_code(error): 1}
    return {"created" if result.get("created") else "existing": 1}


def _validation(result: Any, error: BaseException | None) -> dict[str, float]:
    return {_code(error) if error is not None else str(result.get("code")): 1}


def _purchase(result: Any, error: BaseException | None) -> dict[str, float]:
    """A purchase's outcome: paid, an error code, or `requires_action` (3-D Secure pending:
    its payment is counted when `confirm_purchase` settles it)."""
    if error is not None:
        return {_code(error): 1}
    pending = isinstance(result, Mapping) and result.get("status") == "requires_action"
    return {"requires_action" if pending else "paid": 1}


RENEWAL_OUTCOMES = {"succeeded": "paid", "declined": "declined", "unknown": "unconfirmed"}


def _renewals(report: Any, error: BaseException | None) -> dict[str, float]:
    if error is not None or not isinstance(report, Mapping):
        return {}
    return {outcome: report.get(key, 0) for key, outcome in RENEWAL_OUTCOMES.items()}


ACTIVATION_RESULT = Business(ACTIVATIONS, _activation)
VALIDATION_CODE = Business(VALIDATIONS, _validation)
PURCHASE_OUTCOME = Business(PAYMENTS, _purchase)
RENEWAL_OUTCOMES_OF_PASS = Business(PAYMENTS, _renewals)


def outcome(error: BaseException | None, expected: Any = ()) -> str:
    """`ok`, `refused` (an expected error: a `PortalError`, or one the entrypoint declares)
    or `error`."""
    if error is None:
        return "ok"
    if isinstance(error, PortalError) or (expected and isinstance(error, expected)):
        return "refused"
    return "error"


# --- gauges read at scrape time -------------------------------------------------------------

Probe = Callable[[Db], float]


class _Scraped(Collector):
    """The `SCRAPED` gauges of every container of this process, each read when scraped; a
    probe that fails (database down) leaves its sample out rather than failing the scrape."""

    def __init__(self) -> None:
        self.probes: dict[tuple[str, str], tuple[Database, Probe]] = {}

    def collect(self) -> Iterator[GaugeMetricFamily]:
        families: dict[str, GaugeMetricFamily] = {}
        for (name, service), (database, probe) in list(self.probes.items()):
            if database.factory is None:
                continue
            try:
                value = float(probe(database.get_dependency(None)))  # type: ignore[arg-type]
            except Exception as exc:
                log.warning("metric %s of %s not read: %s", name, service, exc)
                continue
            if name not in families:
                labels = [] if name == NOTIFY_EMAILS_PENDING else ["service"]
                families[name] = GaugeMetricFamily(name, SCRAPED[name], labels=labels)
            families[name].add_metric([] if name == NOTIFY_EMAILS_PENDING else [service], value)
        yield from families.values()


SCRAPED_GAUGES = _Scraped()
REGISTRY.register(SCRAPED_GAUGES)


def unpublished_events(db: Db) -> float:
    """Rows of the service's `event_outbox` not yet published."""
    with db.transaction() as session:
        return float(session.execute(_OUTBOX_SQL).scalar_one())


# --- the /metrics server, one per process ---------------------------------------------------


def parse_address(value: str) -> tuple[str, int]:
    """`"0.0.0.0:9100"` → `("0.0.0.0", 9100)`; `"[::]:9100"` → `("::", 9100)`; ValueError
    for anything else."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"METRICS_ADDRESS must be host:port, not {value!r}")
    return host.strip("[]") or "0.0.0.0", int(port)  # noqa: S104 - the operator chose it


class _Server:
    """`GET /metrics` on an eventlet WSGI server, shared by the containers of a process."""

    def __init__(self) -> None:
        self.users = 0
        self.address: tuple[str, int] | None = None
        self._socket: Any = None
        self._thread: Any = None

    def acquire(self, address: str) -> None:
        self.users += 1
        if self._thread is not None:
            return
        host, port = parse_address(address)
        self._socket = eventlet.listen((host, port))
        self.address = self._socket.getsockname()[:2]
        app = make_wsgi_app(REGISTRY)

        def metrics_only(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
            if environ[PATH_INFO] != PATH:
                start_response("404 Not Found", [("Content-Type", "text/plain")])
                return [b"not found: try /metrics\n"]
            return app(environ, start_response)

        self._thread = eventlet.spawn(
            wsgi.server,
            self._socket,
            metrics_only,
            log=logging.getLogger("nameko.web.server"),  # quiet, like the gateway's access log
            log_output=False,
        )
        announce.info("metrics on http://%s:%d%s", self.address[0], self.address[1], PATH)

    def release(self) -> None:
        self.users = max(0, self.users - 1)
        if self.users or self._thread is None:
            return
        self._thread.kill()
        self._socket.close()
        self._thread = self._socket = self.address = None


SERVER = _Server()


# --- the dependency -------------------------------------------------------------------------


class Metrics(DependencyProvider):
    """Dependency: `metrics = Metrics(outbox=True, business={"activate": ACTIVATION_RESULT})`.

    Workers get nothing from it (`None`): it measures them from the outside.
    """

    def __init__(
        self,
        *,
        outbox: bool = False,
        gauges: Mapping[str, Probe] | None = None,
        business: Mapping[str, Business] | None = None,
    ) -> None:
        self.outbox = outbox
        self.gauges = dict(gauges or {})
        self.business = dict(business or {})
        unknown = set(self.gauges) - set(SCRAPED)
        if unknown:
            raise ValueError(f"unknown scraped gauges: {sorted(unknown)}")
        self._started: dict[int, float] = {}
        self._serving = False

    def bind(self, container: Any, attr_name: str) -> Metrics:
        # the process's log lines name its service from the start (migrations included)
        logs.set_process_service(container.service_name)
        return super().bind(container, attr_name)

    def setup(self) -> None:
        tracing.configure()
        service = self.container.service_name
        WORKERS_MAX.labels(service).set(int(getattr(self.container, "max_workers", 10) or 10))
        WORKERS_BUSY.labels(service)  # present (0) before the first worker
        probes = {
            **self.gauges,
            **({OUTBOX_UNPUBLISHED: unpublished_events} if self.outbox else {}),
        }
        if probes:
            database = self._database()
            assert database is not None
            for name, probe in probes.items():
                SCRAPED_GAUGES.probes[(name, service)] = (database, probe)

    def start(self) -> None:
        database = self._database(required=False)
        if database is not None and database.engine is not None:
            time_sql(database.engine, self.container.service_name)
            tracing.trace_sql(database.engine, self.container.service_name)
        address = settings.get("METRICS_ADDRESS")
        if not address:
            return
        self._refuse_public_port(address)
        SERVER.acquire(address)
        self._serving = True

    def stop(self) -> None:
        for key, (database, _) in list(SCRAPED_GAUGES.probes.items()):
            if database.container is self.container:
                SCRAPED_GAUGES.probes.pop(key, None)
        tracing.flush()
        if self._serving:
            self._serving = False
            SERVER.release()

    def kill(self) -> None:
        self.stop()

    def _database(self, required: bool = True) -> Database | None:
        for dependency in self.container.dependencies:
            if isinstance(dependency, Database):
                return dependency
        if required:
            raise ValueError(f"{self.container.service_name}: scraped gauges need a Database")
        return None

    def _refuse_public_port(self, address: str) -> None:
        """The gateway's public port never serves metrics."""
        serves_http = any(isinstance(e, HttpRequestHandler) for e in self.container.entrypoints)
        public = str(nameko_config.get(WEB_SERVER_CONFIG_KEY) or "")
        if serves_http and public and parse_address(public)[1] == parse_address(address)[1]:
            raise ValueError(
                f"METRICS_ADDRESS ({address}) must not be the gateway's public port ({public})"
            )

    def get_dependency(self, worker_ctx: Any) -> None:
        return None

    def worker_setup(self, worker_ctx: Any) -> None:
        set_request_id(request_id_of(worker_ctx))
        logs.set_worker_service(self.container.service_name)
        WORKERS_BUSY.labels(self.container.service_name).inc()
        self._started[id(worker_ctx)] = time.perf_counter()
        tracing.start_worker(worker_ctx, self.container.service_name)

    def worker_result(self, worker_ctx: Any, result: Any = None, exc_info: Any = None) -> None:
        started = self._started.pop(id(worker_ctx), None)
        elapsed = time.perf_counter() - started if started is not None else 0.0
        error = exc_info[1] if exc_info else None
        tracing.finish_worker(worker_ctx, error)
        entrypoint = worker_ctx.entrypoint
        service = self.container.service_name
        method = entrypoint.method_name
        if isinstance(entrypoint, Rpc):
            result_of = outcome(error, getattr(entrypoint, "expected_exceptions", ()))
            RPC_REQUESTS.labels(service, method, result_of).inc()
            RPC_DURATION.labels(service, method).observe(elapsed)
            level = logging.DEBUG if method in QUIET_METHODS else logging.INFO
            access.log(level, "%s.%s %s in %.3fs", service, method, result_of, elapsed)
        elif isinstance(entrypoint, EventHandler):
            result_of = outcome(error)
            EVENTS_HANDLED.labels(service, entrypoint.event_type, result_of).inc()
            access.info(
                "%s handled %s.%s %s in %.3fs",
                service,
                entrypoint.source_service,
                entrypoint.event_type,
                result_of,
                elapsed,
            )
        elif isinstance(entrypoint, Timer):
            TIMER_RUNS.labels(service, method, outcome(error)).inc()
            if error is None:
                TIMER_LAST_SUCCESS.labels(service, method).set_to_current_time()
        business = self.business.get(method)
        if business is not None:
            try:
                business.record(result, error)
            except Exception:
                log.warning("business counter of %s.%s not recorded", service, method)

    def worker_teardown(self, worker_ctx: Any) -> None:
        tracing.end_worker(worker_ctx)
        self._started.pop(id(worker_ctx), None)
        WORKERS_BUSY.labels(self.container.service_name).dec()
        set_request_id(None)
        logs.set_worker_service(None)


_TIMED = "portal.metrics.started"  # the connection's statements started, newest last
_TIMED_ENGINES: weakref.WeakSet[Engine] = weakref.WeakSet()


def time_sql(engine: Engine, service: str) -> None:
    """Count the statements `engine` runs and the seconds they take, for `service`."""
    if engine in _TIMED_ENGINES:
        return
    _TIMED_ENGINES.add(engine)
    seconds, queries = DB_SECONDS.labels(service), DB_QUERIES.labels(service)

    def before(conn: Any, *args: Any) -> None:
        conn.info.setdefault(_TIMED, []).append(time.perf_counter())

    def after(conn: Any, *args: Any) -> None:
        started = conn.info.get(_TIMED)
        if started:
            seconds.inc(time.perf_counter() - started.pop())
            queries.inc()

    def failed(context: Any) -> None:
        started = context.connection.info.get(_TIMED) if context.connection else None
        if started:
            started.pop()

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    event.listen(engine, "handle_error", failed)


def request_id_of(worker_ctx: Any) -> str | None:
    """The request ID a worker acts for: its context data's, else (an event relayed from an
    outbox carries no context) its event payload's."""
    value = (worker_ctx.data or {}).get(REQUEST_ID)
    if value is None and isinstance(worker_ctx.entrypoint, EventHandler) and worker_ctx.args:
        payload = worker_ctx.args[0]
        value = payload.get(REQUEST_ID) if isinstance(payload, dict) else None
    return value if isinstance(value, str) else None


def observe_outbox_publish(seconds: float) -> None:
    """Count time a worker spent publishing its committed events (common/outbox.flush)."""
    service = logs.current_service()
    if service:
        OUTBOX_PUBLISH_SECONDS.labels(service).inc(seconds)
