"""Metrics and request IDs in real containers on the real broker (and the gateway's real
web server): scraped from `/metrics` over HTTP, the request ID carried over RPC and events.
"""

from __future__ import annotations

import logging
import uuid

import pytest
import requests
from nameko import config as nameko_config
from nameko.events import EventDispatcher, event_handler
from prometheus_client.parser import text_string_to_metric_families

from common import logs, metrics
from common.context import current_request_id
from common.errors import PortalError
from common.rpc import RpcClient, rpc, standalone_client
from gateway.service import GatewayService
from tests.support.suite import free_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

SEEN: dict[str, list] = {"callee": [], "handler": []}


class Callee:
    name = "obs_callee"

    metrics = metrics.Metrics()
    dispatch = EventDispatcher()

    @rpc(expected_exceptions=PortalError)
    def work(self, refuse: bool = False) -> str:
        SEEN["callee"].append(current_request_id())
        if refuse:
            raise PortalError("No.", code="license_not_found")
        self.dispatch("worked", {"by": "callee"})
        return "done"


class Caller:
    name = "obs_caller"

    metrics = metrics.Metrics()
    callee = RpcClient("obs_callee")

    @rpc(expected_exceptions=PortalError)
    def relay(self, refuse: bool = False) -> list:
        return [current_request_id(), self.callee.work(refuse)]

    @event_handler("obs_callee", "worked")
    def on_worked(self, payload: dict) -> None:
        SEEN["handler"].append(current_request_id())


def scrape() -> dict[tuple[str, frozenset], float]:
    assert metrics.SERVER.address is not None, "no metrics server"
    host, port = metrics.SERVER.address
    response = requests.get(f"http://{host}:{port}/metrics", timeout=5)
    assert response.status_code == 200
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def wait_until(predicate, timeout: float = 10.0) -> None:
    import eventlet  # noqa: PLC0415 - tests only

    with eventlet.Timeout(timeout):
        while not predicate():
            eventlet.sleep(0.05)


def test_rpc_and_events_carry_the_request_id_and_are_counted(config, container_factory) -> None:
    nameko_config["METRICS_ADDRESS"] = "127.0.0.1:0"
    SEEN["callee"].clear()
    SEEN["handler"].clear()
    for service in (Callee, Caller):
        container_factory(service).start()
    before = scrape()
    request_id = f"int-{uuid.uuid4().hex}"
    with standalone_client(context_data={"request_id": request_id}) as staff:
        assert staff.call("obs_caller", "relay") == [request_id, "done"]
        with pytest.raises(PortalError):
            staff.call("obs_caller", "relay", True)
    wait_until(lambda: len(SEEN["handler"]) == 1)
    assert SEEN["callee"] == [request_id, request_id]
    assert SEEN["handler"] == [request_id]

    after = scrape()

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    rpc_total = "portal_rpc_requests_total"
    assert grew(rpc_total, service="obs_caller", method="relay", outcome="ok") == 1
    assert grew(rpc_total, service="obs_caller", method="relay", outcome="refused") == 1
    assert grew(rpc_total, service="obs_callee", method="work", outcome="ok") == 1
    assert grew(rpc_total, service="obs_callee", method="work", outcome="refused") == 1
    assert (
        grew("portal_events_handled_total", service="obs_caller", event="worked", outcome="ok") == 1
    )
    assert value(after, "portal_workers_max", service="obs_callee") == 10
    assert value(after, "portal_workers_busy", service="obs_callee") == 0


def test_the_gateway_answers_with_its_request_id_and_counts_routes(
    config, container_factory, caplog
) -> None:
    port = free_port()
    nameko_config["WEB_SERVER_ADDRESS"] = f"127.0.0.1:{port}"
    nameko_config["METRICS_ADDRESS"] = "127.0.0.1:0"
    container_factory(GatewayService).start()
    base = f"http://127.0.0.1:{port}"
    before = scrape()

    given = requests.get(f"{base}/api/v1/account", headers={"X-Request-ID": "gw-1"}, timeout=5)
    assert given.status_code == 401
    assert given.headers["X-Request-ID"] == "gw-1"
    assert given.json()["error"]["request_id"] == "gw-1"

    made = requests.get(f"{base}/api/v1/no/such/path", timeout=5)
    assert made.status_code == 404
    assert made.json()["error"]["request_id"] == made.headers["X-Request-ID"]
    assert len(made.headers["X-Request-ID"]) == 32
    # an unknown page is the portal's HTML 404, with its request ID all the same
    page = requests.get(f"{base}/no/such/path", timeout=5)
    assert page.status_code == 404 and page.headers["Content-Type"].startswith("text/html")
    assert len(page.headers["X-Request-ID"]) == 32

    healthy = requests.get(f"{base}/healthz", timeout=5)
    assert healthy.status_code == 200 and healthy.headers["X-Request-ID"]

    with caplog.at_level(logging.INFO):
        missing = requests.get(f"{base}/static/missing.css", timeout=5)
    assert missing.status_code == 404
    # nameko's "(expected)" record, which the console's filter makes one INFO line
    worker_lines = [r for r in caplog.records if "gateway.static" in r.getMessage()]
    assert worker_lines and all(r.levelno < logging.ERROR for r in worker_lines), caplog.text
    for record in worker_lines:
        assert logs.ExpectedErrors().filter(record)
        assert (record.levelno, record.exc_info) == (logging.INFO, None)
        assert record.getMessage().startswith("gateway.static answered NotFound")

    after = scrape()

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    requests_total = "portal_http_requests_total"
    assert grew(requests_total, route="/api/v1/account", method="GET", status="401") == 1
    # the unknown API path and the unknown page: neither names a route (labels stay bounded)
    assert grew(requests_total, route="unmatched", method="GET", status="404") == 2
    assert grew(requests_total, route="/healthz", method="GET", status="200") == 1
    assert grew(requests_total, route="/static/<path:name>", method="GET", status="404") == 1
    assert grew("portal_http_request_duration_seconds_count", route="/healthz", method="GET") == 1

    # the public port serves the API, never the metrics
    assert requests.get(f"{base}/metrics", timeout=5).status_code == 404


def test_metrics_never_share_the_gateway_s_public_port(config, container_factory) -> None:
    port = free_port()
    nameko_config["WEB_SERVER_ADDRESS"] = f"127.0.0.1:{port}"
    nameko_config["METRICS_ADDRESS"] = f"127.0.0.1:{port}"
    container = container_factory(GatewayService)
    with pytest.raises(ValueError, match="public port"):
        container.start()


def test_no_metrics_address_no_server(config, container_factory) -> None:
    nameko_config.pop("METRICS_ADDRESS", None)
    container_factory(Callee).start()
    assert metrics.SERVER.address is None
