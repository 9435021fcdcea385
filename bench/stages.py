"""Where the time of a request goes, read off the suite's own metrics (DESIGN.md §14).

The suite runs with `METRICS_ADDRESS=127.0.0.1:0`: each process serves `/metrics` on a free
port and announces it in its log. `Stages` scrapes the gateway and the services before and
after a benchmark figure and splits the mean time of one request of a route into:

- gateway: what the client waited for, as the gateway measured it (`portal_http_request_*`);
- service work: the RPC methods' own time in their workers (`portal_rpc_request_*`), the
  services they called in turn included;
- bus and gateway code: the difference (routing, the session check, serialization, the trip
  over RabbitMQ and back, waiting for a free worker);
- database: seconds in SQL (`portal_db_seconds_total`) of the service, per request (during a
  figure only that route runs, so the service's SQL time is that route's, notify aside);
- outbox publish: seconds the service spent publishing its committed events before it
  answered (`portal_outbox_publish_seconds_total`), per request, within service work.

`stages.split(before, after, route, methods)` →
`"activation: gateway 9.1 ms = service work 6.0 ms (database 2.2 ms, outbox publish 0.8 ms)
+ bus and gateway 3.1 ms"`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.support.suite import Suite

ENV = {"METRICS_ADDRESS": "127.0.0.1:0"}
ANNOUNCED = re.compile(r"metrics on (http://[\w.:\[\]-]+/metrics)")
Samples = dict[tuple[str, frozenset], float]


def metrics_url(suite: Suite, name: str) -> str:
    """The `/metrics` URL the process `name` announced in its log."""
    found = ANNOUNCED.search(suite.log(name))
    if found is None:
        raise RuntimeError(f"{name} announced no metrics address (METRICS_ADDRESS unset?)")
    return found.group(1)


@dataclass
class Stages:
    """Scrapes of the suite's processes, taken around a figure."""

    suite: Suite
    processes: tuple[str, ...] = ("gateway", "auth", "licensing")

    def scrape(self) -> Samples:
        samples: Samples = {}
        for name in self.processes:
            text = requests.get(metrics_url(self.suite, name), timeout=10).text
            for family in text_string_to_metric_families(text):
                for sample in family.samples:
                    key = (sample.name, frozenset(sample.labels.items()))
                    samples[key] = samples.get(key, 0.0) + sample.value
        return samples


def _methods(before: Samples, after: Samples, service: str, name: str) -> list[str]:
    """`[name]`, or for `"*"` every RPC method of `service` that ran between the scrapes."""
    if name != "*":
        return [name]
    labels = (
        dict(key[1])
        for key in after
        if key[0] == "portal_rpc_request_duration_seconds_count"
        and dict(key[1]).get("service") == service
    )
    return sorted(
        {
            found["method"]
            for found in labels
            if _grown(before, after, "portal_rpc_request_duration_seconds_count", **found)
        }
    )


def _grown(before: Samples, after: Samples, name: str, **labels: str) -> float:
    key = (name, frozenset(labels.items()))
    return after.get(key, 0.0) - before.get(key, 0.0)


def _mean_ms(before: Samples, after: Samples, name: str, **labels: str) -> tuple[float, float]:
    """(mean milliseconds, count) of a histogram between two scrapes."""
    count = _grown(before, after, f"{name}_count", **labels)
    total = _grown(before, after, f"{name}_sum", **labels)
    return (1000 * total / count if count else 0.0), count


def split(
    label: str,
    before: Samples,
    after: Samples,
    route: str,
    method: str,
    rpc: list[tuple[str, str]],
) -> str:
    """One line: the mean time of `method route` split into the stages of the module
    docstring; `rpc` the `(service, method)` pairs one request runs (each counted per
    HTTP request, however many of them there were); method `"*"`: every method of that
    service that ran between the scrapes."""
    gateway, requests_seen = _mean_ms(
        before, after, "portal_http_request_duration_seconds", route=route, method=method
    )
    if not requests_seen:
        return f"{label}: no requests seen by the gateway's metrics"
    work = sum(
        _grown(
            before, after, "portal_rpc_request_duration_seconds_sum", service=service, method=name
        )
        for service, pattern in rpc
        for name in _methods(before, after, service, pattern)
    )
    services = {service for service, _ in rpc}
    database = sum(_grown(before, after, "portal_db_seconds_total", service=s) for s in services)
    outbox = sum(
        _grown(before, after, "portal_outbox_publish_seconds_total", service=s) for s in services
    )
    work, database, outbox = (1000 * value / requests_seen for value in (work, database, outbox))
    return (
        f"{label}: gateway {gateway:5.1f} ms = service work {work:5.1f} ms "
        f"(database {database:5.1f} ms, outbox publish {outbox:5.1f} ms) "
        f"+ bus and gateway {gateway - work:5.1f} ms"
    )
