"""Shared parts of the benchmarks: a suite on PostgreSQL, a load driver, the figures.

The suite runs as real processes (as in production) on fresh PostgreSQL databases and a
fresh RabbitMQ vhost; load comes from `clients` threads on this machine over loopback, each
with a keep-alive HTTP connection, for a fixed number of requests.
"""

from __future__ import annotations

import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import psycopg2
import requests

from tests.support import infra
from tests.support.suite import Suite, provisioned_suite


@dataclass
class Figures:
    name: str
    requests: int
    seconds: float
    latencies_ms: list[float]
    errors: int

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        if not ordered:
            return float("nan")
        index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
        return ordered[index]

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies_ms) if self.latencies_ms else float("nan")

    @property
    def p99(self) -> float:
        return self.percentile(0.99)

    def line(self, baseline: Figures | None = None) -> str:
        ratio = f"  {self.throughput / baseline.throughput:5.2f}x baseline" if baseline else ""
        return (
            f"{self.name:<28} {self.throughput:8.1f} req/s   p50 {self.p50:6.1f} ms   "
            f"p99 {self.p99:6.1f} ms   errors {self.errors}{ratio}"
        )


def drive(
    name: str,
    call: Callable[[requests.Session, int], bool],
    total: int,
    clients: int = 16,
) -> Figures:
    """Run `total` calls of `call(session, i)` (True = success) from `clients` threads."""
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    counter = iter(range(total))

    def worker() -> None:
        nonlocal errors
        session = requests.Session()
        while True:
            with lock:
                index = next(counter, None)
            if index is None:
                return
            started = time.perf_counter()
            ok = call(session, index)
            elapsed = (time.perf_counter() - started) * 1000
            with lock:
                latencies.append(elapsed)
                if not ok:
                    errors += 1

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return Figures(name, total, time.perf_counter() - started, latencies, errors)


def preflight() -> None:
    """What the suite needs, checked before anything starts: PostgreSQL at
    `TEST_DATABASE_URL` and RabbitMQ's management API at `TEST_RABBIT_API_URI` (the suite
    makes a vhost and a bus user per process kind through it); SystemExit naming the fix."""
    problems = []
    try:
        psycopg2.connect(infra.PG_ADMIN_URL, connect_timeout=5).close()
    except psycopg2.Error as exc:
        problems.append(
            f"PostgreSQL at {infra.PG_ADMIN_URL} (TEST_DATABASE_URL) does not answer: "
            f"{str(exc).strip()}"
        )
    api = urlparse(infra.RABBIT_API)
    overview = f"{api.scheme}://{api.hostname}:{api.port}/api/overview"
    try:
        requests.get(
            overview, auth=(api.username or "guest", api.password or "guest"), timeout=5
        ).raise_for_status()
    except requests.RequestException as exc:
        problems.append(
            f"RabbitMQ's management API at {overview} (TEST_RABBIT_API_URI) does not answer "
            f"({exc.__class__.__name__}): enable it with "
            "`rabbitmq-plugins enable rabbitmq_management` (a broker on 5672 is needed too)"
        )
    if problems:
        raise SystemExit("make bench cannot start the suite:\n- " + "\n- ".join(problems))


@contextmanager
def running_suite(extra_env: dict[str, str] | None = None) -> Iterator[Suite]:
    """The whole suite on fresh PostgreSQL databases and a fresh vhost, torn down after."""
    preflight()
    env = {"LOG_LEVEL": "WARNING", **(extra_env or {})}
    with tempfile.TemporaryDirectory() as scratch:
        env.setdefault("VAR_DIR", str(Path(scratch) / "var"))
        with provisioned_suite("bench", env, Path(scratch) / "logs") as suite:
            yield suite


def bench_customer(suite: Suite, company_name: str, product_name: str) -> tuple[dict, str]:
    """A fresh company and product for one benchmark: `(company, product code)`, so runs
    never share licenses or throttling counters."""
    company = suite.portalctl(
        "company",
        "create",
        "--name",
        company_name,
        "--contact-name",
        "Bea",
        "--email",
        f"bench.{uuid.uuid4().hex[:10]}@example.test",
        "--password",
        "Bench-Marks-2026!",
    )
    code = f"bench-{uuid.uuid4().hex[:6]}"
    suite.portalctl("product", "create", "--code", code, "--name", product_name)
    return company, code


def issue_license(suite: Suite, customer_id: str, product: str, seats: int, *terms: str) -> dict:
    """`portalctl license issue` of `seats` seats for a benchmark's company; `terms` are
    further options (`"--model", "floating"`, …)."""
    return suite.portalctl(
        "license", "issue", "--customer", customer_id, "--product", product,
        "--seats", str(seats), *terms,
    )  # fmt: skip
