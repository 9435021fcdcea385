"""The Metrics dependency measured from the outside of workers: RPC and event counts by
outcome, busy workers, business counters from answers, the request ID of each worker."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from nameko.events import EventHandler
from nameko.rpc import Rpc
from nameko.timer import Timer
from prometheus_client import REGISTRY

from common import logs, metrics
from common.context import current_request_id
from common.errors import PortalError


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


class Container:
    def __init__(self, name: str) -> None:
        self.service_name = name
        self.max_workers = 7
        self.entrypoints: list = []
        self.dependencies: list = []


_CONTAINERS: list[Container] = []  # an extension holds its container weakly


def bound(name: str, **options) -> metrics.Metrics:
    _CONTAINERS.append(Container(name))
    return metrics.Metrics(**options).bind(_CONTAINERS[-1], "metrics")


def rpc_entrypoint(method: str, expected=PortalError) -> Rpc:
    entrypoint = Rpc(expected_exceptions=expected)
    entrypoint.method_name = method
    return entrypoint


def event_entrypoint(source: str, event_type: str, method: str = "on_it") -> EventHandler:
    entrypoint = EventHandler(source, event_type)
    entrypoint.method_name = method
    return entrypoint


def worker(entrypoint, data=None, args=()) -> SimpleNamespace:
    return SimpleNamespace(entrypoint=entrypoint, data=data or {}, args=args, kwargs={})


def run(provider: metrics.Metrics, ctx, result=None, error: BaseException | None = None):
    provider.worker_setup(ctx)
    seen = current_request_id(), logs.current_service()
    busy = sample("portal_workers_busy", service=provider.container.service_name)
    exc_info = (type(error), error, None) if error is not None else None
    provider.worker_result(ctx, result, exc_info)
    provider.worker_teardown(ctx)
    return seen, busy


def test_rpc_requests_are_counted_and_timed_by_method_and_outcome() -> None:
    provider = bound("unit_rpc")
    provider.setup()
    assert sample("portal_workers_max", service="unit_rpc") == 7
    for error in (None, None, PortalError("no", code="license_not_found"), KeyError("x")):
        run(provider, worker(rpc_entrypoint("get_license")), {"ok": 1}, error)

    def count(outcome: str) -> float:
        return sample(
            "portal_rpc_requests_total", service="unit_rpc", method="get_license", outcome=outcome
        )

    assert (count("ok"), count("refused"), count("error")) == (2, 1, 1)
    assert (
        sample(
            "portal_rpc_request_duration_seconds_count", service="unit_rpc", method="get_license"
        )
        == 4
    )
    assert sample("portal_workers_busy", service="unit_rpc") == 0


def test_a_busy_worker_is_counted_while_it_runs() -> None:
    provider = bound("unit_busy")
    provider.setup()
    _, busy = run(provider, worker(rpc_entrypoint("slow")))
    assert busy == 1
    assert sample("portal_workers_busy", service="unit_busy") == 0


def test_events_are_counted_by_event_and_outcome_and_timers_as_timers() -> None:
    provider = bound("unit_events")
    provider.setup()
    handler = event_entrypoint("billing", "payment_succeeded")
    run(provider, worker(handler, args=({"event_id": "e1"},)))
    run(provider, worker(handler, args=({"event_id": "e2"},)), error=RuntimeError("db down"))
    timer = Timer(interval=5)
    timer.method_name = "relay_outbox"
    run(provider, worker(timer))

    def count(outcome: str) -> float:
        return sample(
            "portal_events_handled_total",
            service="unit_events",
            event="payment_succeeded",
            outcome=outcome,
        )

    assert (count("ok"), count("error")) == (1, 1)
    assert (
        sample(
            "portal_rpc_requests_total", service="unit_events", method="relay_outbox", outcome="ok"
        )
        == 0
    )
    assert (
        sample("portal_timer_runs_total", service="unit_events", timer="relay_outbox", outcome="ok")
        == 1
    )
    last = sample(
        "portal_timer_last_success_timestamp_seconds", service="unit_events", timer="relay_outbox"
    )
    assert last > 1.7e9


def test_each_worker_acts_for_the_request_id_of_its_context_or_its_event() -> None:
    provider = bound("unit_ids")
    provider.setup()
    (request_id, service), _ = run(
        provider, worker(rpc_entrypoint("activate"), data={"request_id": "req-1"})
    )
    assert (request_id, service) == ("req-1", "unit_ids")
    assert current_request_id() is None  # forgotten when the worker ends

    relayed = worker(event_entrypoint("licensing", "license_issued"), args=({"request_id": "r-2"},))
    assert run(provider, relayed)[0][0] == "r-2"
    # the context wins over the payload; an unsafe ID is no ID
    both = worker(
        event_entrypoint("licensing", "license_issued"),
        data={"request_id": "ctx"},
        args=({"request_id": "payload"},),
    )
    assert run(provider, both)[0][0] == "ctx"
    unsafe = worker(rpc_entrypoint("activate"), data={"request_id": "a b\nc"})
    assert run(provider, unsafe)[0][0] is None
    # an RPC argument is never taken for a request ID
    rpc_args = worker(rpc_entrypoint("activate"), args=({"request_id": "arg"},))
    assert run(provider, rpc_args)[0][0] is None


def test_business_counters_follow_what_the_entrypoint_answered() -> None:
    provider = bound(
        "unit_business",
        business={
            "activate": metrics.ACTIVATION_RESULT,
            "validate": metrics.VALIDATION_CODE,
            "purchase": metrics.PURCHASE_OUTCOME,
            "run_renewals": metrics.RENEWAL_OUTCOMES_OF_PASS,
        },
    )
    provider.setup()
    before = {
        "created": sample("portal_activations_total", result="created"),
        "existing": sample("portal_activations_total", result="existing"),
        "no_seats": sample("portal_activations_total", result="no_seats_available"),
        "expired": sample("portal_validations_total", code="EXPIRED"),
        "paid": sample("portal_payments_total", outcome="paid"),
        "declined": sample("portal_payments_total", outcome="declined"),
        "card_declined": sample("portal_payments_total", outcome="card_declined"),
    }
    run(provider, worker(rpc_entrypoint("activate")), {"created": True})
    run(provider, worker(rpc_entrypoint("activate")), {"created": False})
    run(
        provider,
        worker(rpc_entrypoint("activate")),
        error=PortalError("x", code="no_seats_available"),
    )
    run(provider, worker(rpc_entrypoint("validate")), {"code": "EXPIRED", "valid": False})
    run(provider, worker(rpc_entrypoint("purchase")), {"payment": {}})
    run(provider, worker(rpc_entrypoint("purchase")), error=PortalError("x", code="card_declined"))
    run(provider, worker(rpc_entrypoint("run_renewals")), {"succeeded": 2, "declined": 1})
    run(provider, worker(rpc_entrypoint("list_products")), [])

    def grew(key: str, name: str, **labels: str) -> float:
        return sample(name, **labels) - before[key]

    assert grew("created", "portal_activations_total", result="created") == 1
    assert grew("existing", "portal_activations_total", result="existing") == 1
    assert grew("no_seats", "portal_activations_total", result="no_seats_available") == 1
    assert grew("expired", "portal_validations_total", code="EXPIRED") == 1
    assert grew("paid", "portal_payments_total", outcome="paid") == 3
    assert grew("card_declined", "portal_payments_total", outcome="card_declined") == 1
    assert grew("declined", "portal_payments_total", outcome="declined") == 1


def test_a_broken_business_labeler_costs_a_warning_not_the_worker(caplog) -> None:
    broken = metrics.Business(metrics.ACTIVATIONS, lambda result, error: 1 / 0)
    provider = bound("unit_broken", business={"activate": broken})
    provider.setup()
    run(provider, worker(rpc_entrypoint("activate")), {"created": True})
    assert "business counter of unit_broken.activate" in caplog.text


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("127.0.0.1:9100", ("127.0.0.1", 9100)),
        (":9100", ("0.0.0.0", 9100)),  # noqa: S104
        ("[::1]:0", ("::1", 0)),
    ],
)
def test_metrics_address(value, parsed) -> None:
    assert metrics.parse_address(value) == parsed


@pytest.mark.parametrize("value", ["9100", "host:", "host:http", "host:70000"])
def test_a_wrong_metrics_address_is_refused(value) -> None:
    with pytest.raises(ValueError, match="METRICS_ADDRESS"):
        metrics.parse_address(value)


def test_only_known_scraped_gauges() -> None:
    with pytest.raises(ValueError, match="unknown scraped gauges"):
        metrics.Metrics(gauges={"portal_made_up": lambda db: 1.0})


def test_every_metric_of_the_design_is_exported() -> None:
    design = {
        "portal_http_requests_total",
        "portal_http_request_duration_seconds",
        "portal_rpc_requests_total",
        "portal_rpc_request_duration_seconds",
        "portal_events_handled_total",
        "portal_outbox_unpublished",
        "portal_workers_busy",
        "portal_workers_max",
        "portal_notify_emails_pending",
        "portal_activations_total",
        "portal_validations_total",
        "portal_payments_total",
    }
    assert design <= metrics.NAMES
    registered = {
        sample.name
        for family in REGISTRY.collect()
        for sample in family.samples
        if sample.name.startswith("portal_")
    }
    # every name a scrape shows is declared (suffixes of histograms aside)
    for name in registered:
        base = name.removesuffix("_bucket").removesuffix("_sum").removesuffix("_count")
        assert name in metrics.NAMES or base in metrics.NAMES, name
