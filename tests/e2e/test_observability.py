"""What an ops engineer reads off a running suite (DESIGN.md §14): metrics and correlated logs.

The whole suite runs as processes with `METRICS_ADDRESS=127.0.0.1:0` (each process takes a
free port and logs it) and `LOG_FORMAT=json`. After real journeys over HTTP, each process's
`/metrics` is scraped and parsed with prometheus-client's own parser; one activation's request
ID is then found in the JSON log lines of the gateway, licensing and notify (which sent the
email).
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.support.suite import Suite, provisioned_suite

pytestmark = pytest.mark.e2e

PASSWORD = "Quarry-Lighthouse-31"
METRICS_LINE = re.compile(r"metrics on (http://[\d.]+:\d+/metrics)")


@pytest.fixture(scope="module")
def observed(smtp_sink, tmp_path_factory) -> Iterator[Suite]:
    env = {
        "VAR_DIR": str(tmp_path_factory.mktemp("obs-var")),
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp_sink.port),
        "MAIL_FROM": "portal@license-portal.test",
        "RPC_TIMEOUT": "3",
        "NOTIFY_POLL_SECONDS": "0.3",
        "NOTIFY_RETRY_BASE_SECONDS": "0.5",
        "LOG_LEVEL": "INFO",
        "LOG_FORMAT": "json",
        "METRICS_ADDRESS": "127.0.0.1:0",
    }
    with provisioned_suite("obs", env, tmp_path_factory.mktemp("obs-logs")) as suite:
        yield suite


def log_lines(suite: Suite, name: str) -> list[dict[str, Any]]:
    """Every line of the process's log, each parsed as JSON (a line that is not fails)."""
    lines = []
    for raw in suite.log(name).splitlines():
        if not raw.strip():
            continue
        try:
            lines.append(json.loads(raw))
        except ValueError:
            pytest.fail(f"{name} wrote a line that is not JSON: {raw!r}")
    return lines


def metrics_url(suite: Suite, name: str) -> str:
    for line in log_lines(suite, name):
        found = METRICS_LINE.search(line["message"])
        if found:
            return found.group(1)
    raise AssertionError(f"{name} logged no metrics address:\n{suite.log(name)[-2000:]}")


def scrape(suite: Suite, name: str) -> dict[tuple[str, frozenset], float]:
    """`{(sample name, frozenset of label pairs): value}` of the process's `/metrics`."""
    response = requests.get(metrics_url(suite, name), timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def new_licensed_company(suite: Suite) -> tuple[dict, dict]:
    product = f"obs-{uuid.uuid4().hex[:8]}"
    suite.portalctl("product", "create", "--code", product, "--name", "Obs Pro")
    email = f"obs.{uuid.uuid4().hex[:10]}@example.test"
    company = suite.portalctl(
        "company", "create", "--name", "Acme", "--contact-name", "Ada",
        "--email", email, "--password", PASSWORD,
    )  # fmt: skip
    license = suite.portalctl(
        "license", "issue", "--customer", company["customer_id"], "--product", product,
        "--seats", "2", "--expires", "2099-12-31",
    )  # fmt: skip
    return {**company, "email": email}, license


def activation(license: dict, installation_id: str, password: str | None = None) -> dict:
    return {
        "license_id": license["license_id"],
        "password": password or license["activation_password"],
        "installation_id": installation_id,
        "machine_name": installation_id.upper(),
    }


def test_metrics_move_with_real_journeys_and_stay_off_the_public_port(observed, smtp_sink):
    api = observed.api
    before = {name: scrape(observed, name) for name in ("gateway", "licensing")}
    _, license = new_licensed_company(observed)

    created = api.post("/api/v1/activations", json=activation(license, "ws-1"))
    assert created.status_code == 201, created.text
    again = api.post("/api/v1/activations", json=activation(license, "ws-1"))
    assert again.status_code == 200, again.text
    wrong = api.post("/api/v1/activations", json=activation(license, "ws-2", "nope-nope"))
    assert wrong.status_code == 401, wrong.text
    valid = api.post("/api/v1/validations", json={"certificate": created.json()["certificate"]})
    assert valid.json()["code"] == "VALID"
    assert api.get("/api/v1/licenses/L-XXXX-XXXX").status_code == 401

    gateway = scrape(observed, "gateway")
    route = {"route": "/api/v1/activations", "method": "POST"}
    counted = "portal_http_requests_total"
    for status, times in (("201", 1), ("200", 1), ("401", 1)):
        grown = value(gateway, counted, **route, status=status) - value(
            before["gateway"], counted, **route, status=status
        )
        assert grown == times, (status, grown)
    # the rule, never the raw path, is the label: a bounded set whatever clients send
    assert value(
        gateway, counted, route="/api/v1/licenses/<license_id>", method="GET", status="401"
    )
    assert not any("L-XXXX" in dict(labels).get("route", "") for _, labels in gateway)
    assert value(gateway, "portal_http_request_duration_seconds_count", **route) >= 3
    assert value(gateway, "portal_workers_max", service="gateway") == 10

    licensing = scrape(observed, "licensing")
    old = before["licensing"]

    def grew(name: str, **labels: str) -> float:
        return value(licensing, name, **labels) - value(old, name, **labels)

    rpc = "portal_rpc_requests_total"
    assert grew(rpc, service="licensing", method="activate", outcome="ok") == 2
    assert grew(rpc, service="licensing", method="activate", outcome="refused") == 1
    # the gateway answered the validation from its read model: the facts fetched on a miss
    # (or, its event consumer not yet up, licensing's `validate`)
    asked = grew(rpc, service="licensing", method="validation_facts", outcome="ok")
    assert asked + grew(rpc, service="licensing", method="validate", outcome="ok") == 1
    assert (
        grew("portal_rpc_request_duration_seconds_count", service="licensing", method="activate")
        == 3
    )
    assert grew("portal_activations_total", result="created") == 1
    assert grew("portal_activations_total", result="existing") == 1
    assert grew("portal_activations_total", result="invalid_credentials") == 1
    # counted where it was answered: the gateway
    assert grew("portal_validations_total", code="VALID") == 0
    validations = value(gateway, "portal_validations_total", code="VALID")
    assert validations - value(before["gateway"], "portal_validations_total", code="VALID") == 1
    cache = "portal_validation_cache_total"
    assert (
        sum(
            value(gateway, cache, result=result) - value(before["gateway"], cache, result=result)
            for result in ("miss", "bypass")
        )
        == 1
    )
    assert value(licensing, "portal_workers_max", service="licensing") == 10
    assert ("portal_workers_busy", frozenset({("service", "licensing")})) in licensing
    assert ("portal_outbox_unpublished", frozenset({("service", "licensing")})) in licensing
    assert grew("portal_db_queries_total", service="licensing") >= 3
    assert grew("portal_db_seconds_total", service="licensing") > 0

    # notify handled the events of the issue and the activation and sent their emails
    deadline = time.monotonic() + 20
    while True:
        notify = scrape(observed, "notify")
        handled = value(
            notify,
            "portal_events_handled_total",
            service="notify",
            event="installation_activated",
            outcome="ok",
        )
        if handled >= 1 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert handled >= 1
    assert ("portal_notify_emails_pending", frozenset()) in notify
    auth = scrape(observed, "auth")
    assert value(auth, rpc, service="auth", method="verify_company_password", outcome="ok") >= 1
    assert ("portal_outbox_unpublished", frozenset({("service", "auth")})) in auth

    # the public port serves the API, never the metrics
    public = requests.get(f"{observed.url}/metrics", timeout=5)
    assert public.status_code == 404
    assert "portal_" not in public.text


def test_one_request_id_follows_an_activation_through_every_process(observed, smtp_sink):
    api = observed.api
    company, license = new_licensed_company(observed)
    request_id = f"obs-{uuid.uuid4().hex}"

    response = api.post(
        "/api/v1/activations",
        json=activation(license, "ws-trace"),
        headers={"X-Request-ID": request_id},
    )
    assert response.status_code == 201, response.text
    assert response.headers["X-Request-ID"] == request_id
    smtp_sink.wait_for(
        lambda m: "WS-TRACE" in (m["Subject"] or ""), to=company["email"], timeout=20
    )

    for name in ("gateway", "licensing", "notify"):
        deadline = time.monotonic() + 10
        while True:
            mine = [line for line in log_lines(observed, name) if line["request_id"] == request_id]
            if mine or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert mine, f"no line of {name} carries {request_id}:\n{observed.log(name)[-3000:]}"
        for line in mine:
            assert {"ts", "level", "service", "logger", "message", "request_id"} <= set(line)
            assert line["service"] == name
    notify_lines = [
        m["message"] for m in log_lines(observed, "notify") if m["request_id"] == request_id
    ]
    assert any("sent to" in message for message in notify_lines), notify_lines


def test_a_failed_request_is_found_by_the_id_in_its_error(observed):
    api = observed.api
    _, license = new_licensed_company(observed)

    wrong = api.post("/api/v1/activations", json=activation(license, "ws-x", "bad-bad-bad"))
    assert wrong.status_code == 401
    request_id = wrong.json()["error"]["request_id"]
    assert wrong.headers["X-Request-ID"] == request_id  # made by the gateway

    refused = [
        line
        for line in log_lines(observed, "licensing")
        if line["request_id"] == request_id and "invalid_credentials" in line["message"]
    ]
    assert refused and all(line["level"] == "INFO" and "exc" not in line for line in refused)

    # a client's unsafe ID is not passed on: the gateway makes its own
    odd = api.get("/api/v1/account", headers={"X-Request-ID": "x" * 200})
    assert odd.status_code == 401
    assert odd.headers["X-Request-ID"] != "x" * 200
    assert odd.json()["error"]["request_id"] == odd.headers["X-Request-ID"]
