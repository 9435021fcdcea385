"""Activations and validations through the gateway, beside the bare gateway→RPC round trip.

16 clients, a fixed number of requests each run. The baseline is `GET /api/v1/_ping/licensing`
(one licensing `ping` over RPC, which answers after a `SELECT 1`): the ceiling this transport
allows on this machine. Activations are new installations spread over 16 licenses (a 201
each: lock, count, insert, history, event, signature; the event also makes notify send an
email, on the same cores); re-activations repeat them (a 200: no seat, no event);
validations check certificates (signature, one query). Aim: validation >= 0.6x and
activation >= 0.4x of the baseline's throughput, p99 < 100 ms.

Run alone: `python -m bench bench.licensing`.
"""

from __future__ import annotations

from collections.abc import Callable

import requests

from bench import stages
from bench.harness import Figures, bench_customer, drive
from tests.support.suite import Suite

CLIENTS = 16
REQUESTS = 1600
WARMUP = 100
LICENSES = 16


def _setup(suite: Suite) -> tuple[list[dict], str]:
    company, code = bench_customer(suite, "Bench GmbH", "Bench Product")
    seats = str((REQUESTS + WARMUP) // LICENSES + 10)
    licenses = [
        suite.portalctl(
            "license",
            "issue",
            "--customer",
            company["customer_id"],
            "--product",
            code,
            "--seats",
            seats,
        )
        for _ in range(LICENSES)
    ]
    return licenses, company["customer_id"]


def run(suite: Suite) -> list[str]:
    licenses, _ = _setup(suite)
    url = suite.url
    certificates: list[str] = []

    def ping(session: requests.Session, index: int) -> bool:
        return session.get(f"{url}/api/v1/_ping/licensing", timeout=10).status_code == 200

    def activate(prefix: str) -> Callable[[requests.Session, int], bool]:
        def call(session: requests.Session, index: int) -> bool:
            license = licenses[index % LICENSES]
            answer = session.post(
                f"{url}/api/v1/activations",
                json={
                    "license_id": license["license_id"],
                    "password": license["activation_password"],
                    "installation_id": f"{prefix}-{index}",
                    "machine_name": f"Bench machine {index}",
                },
                timeout=10,
            )
            if answer.status_code == 201:
                certificates.append(answer.json()["certificate"])
                return True
            return False

        return call

    def reactivate(session: requests.Session, index: int) -> bool:
        license = licenses[index % LICENSES]
        answer = session.post(
            f"{url}/api/v1/activations",
            json={
                "license_id": license["license_id"],
                "password": license["activation_password"],
                "installation_id": f"bench-{index}",
                "machine_name": f"Bench machine {index}",
            },
            timeout=10,
        )
        return answer.status_code == 200

    def validate(session: requests.Session, index: int) -> bool:
        answer = session.post(
            f"{url}/api/v1/validations",
            json={"certificate": certificates[index % len(certificates)]},
            timeout=10,
        )
        return answer.status_code == 200 and answer.json()["code"] == "VALID"

    drive("warm-up", ping, WARMUP, CLIENTS)
    drive("warm-up", activate("warm"), WARMUP, CLIENTS)
    # the baseline runs before and after, and counts as one: the machine is shared
    before = drive("ping", ping, REQUESTS, CLIENTS)
    scraper = stages.Stages(suite)
    scrapes = [scraper.scrape()]
    activations = drive("activation (201, new seat)", activate("bench"), REQUESTS, CLIENTS)
    scrapes.append(scraper.scrape())
    reactivations = drive("re-activation (200)", reactivate, REQUESTS, CLIENTS)
    scrapes.append(scraper.scrape())
    validations = drive("validation (VALID)", validate, REQUESTS, CLIENTS)
    scrapes.append(scraper.scrape())
    after = drive("ping", ping, REQUESTS, CLIENTS)
    baseline = Figures(
        "ping (gateway→RPC baseline)",
        before.requests + after.requests,
        before.seconds + after.seconds,
        before.latencies_ms + after.latencies_ms,
        before.errors + after.errors,
    )
    lines = [
        f"licensing: {REQUESTS} requests per figure, {CLIENTS} concurrent clients, "
        f"one gateway and one licensing process",
        before.line(),
        after.line(),
        baseline.line(),
        activations.line(baseline),
        reactivations.line(baseline),
        validations.line(baseline),
    ]
    lines.append(_verdict(baseline, activations, validations))
    lines.append("where the time goes (means per request, from the suite's metrics):")
    for label, (first, last) in (
        ("  activation", (0, 1)),
        ("  re-activation", (1, 2)),
        ("  validation", (2, 3)),
    ):
        method = "validate" if "validation" in label else "activate"
        route = f"/api/v1/{'validations' if method == 'validate' else 'activations'}"
        lines.append(
            stages.split(
                label, scrapes[first], scrapes[last], route, "POST", [("licensing", method)]
            )
        )
    return lines


def _verdict(baseline: Figures, activations: Figures, validations: Figures) -> str:
    checks = [
        ("validation >= 0.6x", validations.throughput >= 0.6 * baseline.throughput),
        ("activation >= 0.4x", activations.throughput >= 0.4 * baseline.throughput),
        ("p99 < 100 ms", max(activations.p99, validations.p99) < 100),
    ]
    return "aims: " + ", ".join(f"{name} {'met' if ok else 'MISSED'}" for name, ok in checks)
