"""Network blips on the real bus, staff commands in bulk, and what billing's books say.

- `ConnectionBlips(vhost)`: closes every connection of a vhost again and again in a
  background green thread (`rabbitmqctl close_all_connections -p <vhost> <reason>`, or the
  management API where rabbitmqctl is missing), as a network blip does; it counts what it
  closed, so a test can show that its blips really happened.
- `terminate_backends(database)` / `BackendTerminations(database)`: PostgreSQL's
  `pg_terminate_backend` on every connection to a database, once or again and again, as a
  database failover or an administrator does.
- `settle(suite)`: after the blips, until every service answers again and billing's RPC
  queue is empty (redelivered requests have been worked off).
- `portalctl_batch(suite, commands)`: many `portalctl` commands in one process (the real
  `portalctl.cli.main`, one request key per command), for tests that need forty companies
  without paying forty interpreter start-ups.
- `BillingBooks(database_url)`: per company, the payments billing recorded and the charges
  and refunds the sandbox provider made (its `sandbox_charges` ledger, tied to a company by
  billing's charge rows: a charge's provider idempotency key is its row's).
"""

from __future__ import annotations

import json
import random
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlparse

import eventlet
import psycopg2
import requests
from kombu import Connection

from tests.support import infra
from tests.support.bus import wait_for_queue_depth
from tests.support.suite import ROOT, Suite

_CLOSED = re.compile(r"Closed (\d+) connections?")


def vhost_of(amqp_uri: str) -> str:
    """The vhost an AMQP URI names: `amqp://u:p@h:5672/lp-e2e_x` → `lp-e2e_x`."""
    return unquote(urlparse(amqp_uri).path.lstrip("/")) or "/"


def close_all_connections(vhost: str, reason: str = "test blip") -> int:
    """Close every client connection of `vhost` now; how many were closed."""
    ctl = shutil.which("rabbitmqctl")
    if ctl is not None:
        result = subprocess.run(
            [ctl, "close_all_connections", "-p", vhost, reason],
            capture_output=True,
            text=True,
            timeout=30,
        )
        if result.returncode != 0:
            raise RuntimeError(f"rabbitmqctl close_all_connections failed: {result.stderr}")
        found = _CLOSED.search(result.stdout)
        return int(found.group(1)) if found else 0
    api = urlparse(infra.RABBIT_API)
    base = f"{api.scheme}://{api.hostname}:{api.port}/api"
    auth = (api.username or "guest", api.password or "guest")
    listed = requests.get(
        f"{base}/vhosts/{quote(vhost, safe='')}/connections", auth=auth, timeout=10
    )
    listed.raise_for_status()
    closed = 0
    for connection in listed.json():
        response = requests.delete(
            f"{base}/connections/{quote(connection['name'], safe='')}",
            auth=auth,
            headers={"X-Reason": reason},
            timeout=10,
        )
        closed += response.status_code in (200, 204)
    return closed


def redelivered(vhost: str, queue: str) -> int | None:
    """How many messages of `queue` the broker delivered again (the management API's
    sampled statistics, seconds late), or None where the API cannot say: for a test's
    report, never for its verdict."""
    api = urlparse(infra.RABBIT_API)
    base = f"{api.scheme}://{api.hostname}:{api.port}/api"
    try:
        response = requests.get(
            f"{base}/queues/{quote(vhost, safe='')}/{quote(queue, safe='')}",
            auth=(api.username or "guest", api.password or "guest"),
            timeout=5,
        )
        response.raise_for_status()
        return response.json().get("message_stats", {}).get("redeliver")
    except (requests.RequestException, ValueError):
        return None


class ConnectionBlips:
    """Close all connections of `vhost` every `every` seconds (a random pick in the range)
    until stopped: `with ConnectionBlips(vhost) as blips: ...`; then `blips.rounds` (closes
    run), `blips.hits` (those that found connections to close), `blips.closed` (connections).

    A close is started on time even while the previous one still runs (rabbitmqctl takes
    most of a second to start), at most two at once.
    """

    def __init__(
        self, vhost: str, every: tuple[float, float] = (0.5, 1.0), reason: str = "test blip"
    ) -> None:
        self.vhost = vhost
        self.every = every
        self.reason = reason
        self.rounds = 0
        self.hits = 0
        self.closed = 0
        self.errors: list[str] = []
        self._stopping = False
        self._pool = eventlet.GreenPool(2)
        self._thread: eventlet.greenthread.GreenThread | None = None

    def start(self) -> ConnectionBlips:
        self._thread = eventlet.spawn(self._run)
        return self

    def stop(self) -> None:
        self._stopping = True
        if self._thread is not None:
            self._thread.wait()
            self._thread = None
        self._pool.waitall()

    def wait_rounds(self, rounds: int, timeout: float = 30.0) -> None:
        """Until `rounds` closes have been run in all."""
        deadline = time.monotonic() + timeout
        while self.rounds < rounds:
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"{self.rounds} of {rounds} closes in {timeout}s: {self.errors}"
                )
            eventlet.sleep(0.05)

    def _run(self) -> None:
        while not self._stopping:
            self._pool.spawn_n(self._close)
            eventlet.sleep(random.uniform(*self.every))

    def _close(self) -> None:
        try:
            closed = close_all_connections(self.vhost, self.reason)
            self.rounds += 1
            self.hits += closed > 0
            self.closed += closed
        except Exception as exc:  # the test reports it
            self.errors.append(repr(exc))

    def __enter__(self) -> ConnectionBlips:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def terminate_backends(database: str, pid: int | None = None) -> int:
    """Terminate every backend connected to `database` (or the one of `pid`); how many."""
    connection = psycopg2.connect(infra.PG_ADMIN_URL)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid() AND (%s IS NULL OR pid = %s)",
                (database, pid, pid),
            )
            return cursor.fetchone()[0]
    finally:
        connection.close()


class BackendTerminations(ConnectionBlips):
    """Terminate every backend of the PostgreSQL `databases` every `every` seconds until
    stopped; `rounds`, `hits` and `closed` (backends terminated) as for `ConnectionBlips`."""

    def __init__(self, *databases: str, every: tuple[float, float] = (0.3, 0.8)) -> None:
        super().__init__("", every)
        self.databases = databases

    def _close(self) -> None:
        try:
            closed = sum(terminate_backends(database) for database in self.databases)
            self.rounds += 1
            self.hits += closed > 0
            self.closed += closed
        except Exception as exc:  # the test reports it
            self.errors.append(repr(exc))


def queue_consumers(amqp_uri: str, queue: str) -> int:
    """Consumers of `queue` right now (a passive declare: exact, not a sampled figure)."""
    with Connection(amqp_uri) as connection:
        return connection.default_channel.queue_declare(queue=queue, passive=True).consumer_count


def settle(suite: Suite, timeout: float = 60.0) -> None:
    """Until every service answers through the gateway again and no request waits in
    billing's RPC queue (a request whose connection was closed is delivered again)."""
    suite.wait_ready(timeout=timeout)
    wait_for_queue_depth(suite.env["AMQP_URI"], "rpc-billing", lambda depth: depth == 0, timeout)


_BATCH = """
import contextlib, io, json, sys
from portalctl.cli import main
results = []
for argv in json.load(sys.stdin):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([*argv, "--json"])
        except SystemExit as exc:
            code = exc.code
    results.append({"argv": argv, "code": code, "stdout": out.getvalue(), "stderr": err.getvalue()})
json.dump(results, sys.stdout)
"""


def portalctl_batch(suite: Suite, commands: list[list[str]]) -> list[Any]:
    """Run each `portalctl` command (argv without `--json`) in one process as staff; the
    parsed JSON document of each, in order. Any failed command fails the caller."""
    result = subprocess.run(
        [sys.executable, "-c", _BATCH],
        cwd=ROOT,
        env=suite.env_of("staff"),
        input=json.dumps(commands),
        capture_output=True,
        text=True,
        timeout=30 + 5 * len(commands),
    )
    assert result.returncode == 0, result.stderr
    documents = []
    for run in json.loads(result.stdout):
        assert run["code"] == 0, f"portalctl {' '.join(run['argv'])}: {run['stderr']}"
        documents.append(json.loads(run["stdout"]))
    return documents


@dataclass(frozen=True)
class Books:
    """What one company was charged: billing's payments, the provider's charges and refunds."""

    payments: int
    provider_charges: int
    provider_refunds: int


class BillingBooks:
    """Reads billing's database (read only) to count, per company, what was charged."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url

    def _one(self, query: str, *args: Any) -> Any:
        connection = psycopg2.connect(self.database_url)
        try:
            with connection.cursor() as cursor:
                cursor.execute(query, args)
                return cursor.fetchone()[0]
        finally:
            connection.close()

    def of(self, customer_id: str) -> Books:
        return Books(
            payments=self._one("SELECT count(*) FROM payments WHERE customer_id = %s", customer_id),
            provider_charges=self._one(
                "SELECT count(*) FROM sandbox_charges s"
                " JOIN charges c ON c.idempotency_key = s.idempotency_key"
                " WHERE c.customer_id = %s AND s.kind = 'charge' AND s.status = 'succeeded'",
                customer_id,
            ),
            provider_refunds=self._one(
                "SELECT count(*) FROM sandbox_charges r"
                " JOIN sandbox_charges s ON s.charge_id = r.refunded_charge_id"
                " JOIN charges c ON c.idempotency_key = s.idempotency_key"
                " WHERE c.customer_id = %s AND r.kind = 'refund' AND r.status = 'succeeded'",
                customer_id,
            ),
        )


def wait_until(check: Any, timeout: float, what: str) -> Any:
    """`check()`'s first truthy value, asked every 0.2 s (each ask is an HTTP round or a
    query), or AssertionError naming `what` and the last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} not within {timeout}s (last: {value!r})")
        time.sleep(0.2)
