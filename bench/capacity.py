"""What RabbitMQ and PostgreSQL on this machine do alone, for docs/performance.md.

No suite runs: each figure talks to the broker or the database directly, from this process.

- RabbitMQ, publishes with publisher confirms (what nameko's publisher does for each RPC
  request, reply and event: it waits for the broker's ack), `PUBLISHERS` connections in
  parallel for `SECONDS` each: transient messages to a classic queue (the shape of an RPC
  request or reply), persistent ones to a durable classic queue and to a quorum queue (the
  shape of an event on a durable queue; `QUEUE_TYPE=quorum`). Nobody consumes during the
  figure; the queues are purged and deleted after.
- PostgreSQL, with `pgbench` and the scripts of `bench/sql/`: an activation-shaped
  transaction (lock the license row, count its active seats, look the installation up,
  insert the installation, a history row, an audit row and an outbox row; commit) plus the
  relay marking the outbox row published (a second commit), and a validation-shaped read
  (license and installation by key), `PG_CLIENTS` clients for `SECONDS` each, on a scratch
  database of `LICENSES` licenses.

Run alone: `.venv/bin/python -m bench bench.capacity`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

from kombu import Connection, Exchange, Producer, Queue

from tests.support import infra

NEEDS_SUITE = False
SECONDS = int(os.environ.get("BENCH_CAPACITY_SECONDS", "8"))
PUBLISHERS = 8
PG_CLIENTS = 8
LICENSES = 1000
SQL = Path(__file__).resolve().parent / "sql"
BODY = b'{"event": "installation_activated", "payload": "' + b"x" * 400 + b'"}'


def _publishes(uri: str, queue: Queue, persistent: bool) -> tuple[float, float]:
    """(publishes confirmed per second, median ms each) from PUBLISHERS connections."""
    counts = [0] * PUBLISHERS
    latencies: list[list[float]] = [[] for _ in range(PUBLISHERS)]
    stop = time.monotonic() + SECONDS

    def publisher(index: int) -> None:
        with Connection(uri, transport_options={"confirm_publish": True}) as connection:
            producer = Producer(connection.channel(), exchange=Exchange(""))
            while time.monotonic() < stop:
                started = time.perf_counter()
                producer.publish(
                    BODY,
                    routing_key=queue.name,
                    delivery_mode=2 if persistent else 1,
                    mandatory=True,
                    content_type="application/json",
                    content_encoding="utf-8",
                )
                latencies[index].append((time.perf_counter() - started) * 1000)
                counts[index] += 1

    threads = [threading.Thread(target=publisher, args=(i,)) for i in range(PUBLISHERS)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = sorted(ms for per in latencies for ms in per)
    return sum(counts) / (time.monotonic() - started), every[len(every) // 2] if every else 0.0


def rabbitmq() -> list[str]:
    vhost = f"lp-capacity-{infra.RUN_ID}"
    uri = infra.create_vhost(vhost)
    lines = []
    try:
        shapes = (
            ("transient, classic queue (RPC)", {"durable": False, "auto_delete": False}, False),
            ("persistent, durable classic queue", {"durable": True}, True),
            (
                "persistent, quorum queue (events)",
                {"durable": True, "queue_arguments": {"x-queue-type": "quorum"}},
                True,
            ),
        )
        for label, options, persistent in shapes:
            queue = Queue(f"capacity-{uuid.uuid4().hex[:8]}", **options)
            with Connection(uri) as connection:
                queue.bind(connection.channel()).declare()
            try:
                rate, median = _publishes(uri, queue, persistent)
                lines.append(
                    f"  {'RabbitMQ publish with confirm, ' + label:<66} {rate:8.0f} /s "
                    f"(median {median:5.2f} ms each, {PUBLISHERS} connections)"
                )
            finally:
                with Connection(uri) as connection:
                    queue.bind(connection.channel()).delete()
    finally:
        infra.delete_vhost(vhost)
    return lines


def _pgbench(url: str, script: str, clients: int) -> tuple[float, float]:
    """(transactions per second, mean latency ms) of one pgbench script."""
    parts = urlparse(url)
    done = subprocess.run(  # noqa: S603 - pgbench with our scripts
        [
            shutil.which("pgbench"),
            "--no-vacuum",
            f"--client={clients}",
            f"--jobs={min(clients, 2)}",
            f"--time={SECONDS}",
            f"--file={SQL / script}",
            f"--define=licenses={LICENSES}",
            "--host",
            parts.hostname or "127.0.0.1",
            "--port",
            str(parts.port or 5432),
            "--username",
            parts.username or "postgres",
            parts.path.lstrip("/"),
        ],
        capture_output=True,
        text=True,
        timeout=SECONDS + 60,
    )
    if done.returncode != 0:
        raise RuntimeError(f"pgbench {script} failed:\n{done.stderr}")
    tps = re.search(r"tps = ([\d.]+)", done.stdout)
    latency = re.search(r"latency average = ([\d.]+) ms", done.stdout)
    return float(tps.group(1)), float(latency.group(1)) if latency else float("nan")


def postgresql() -> list[str]:
    if shutil.which("pgbench") is None or shutil.which("psql") is None:
        return [
            "  PostgreSQL: pgbench or psql not found (Debian: apt-get install postgresql-client)"
        ]
    name = f"lp_capacity_{infra.RUN_ID}"
    url = infra.create_database(name)
    lines = []
    try:
        subprocess.run(  # noqa: S603 - psql with our schema
            [
                shutil.which("psql"),
                "--quiet",
                "--set=ON_ERROR_STOP=1",
                f"--set=licenses={LICENSES}",
                f"--file={SQL / 'schema.sql'}",
                url,
            ],
            check=True,
            capture_output=True,
        )
        for label, script, clients in (
            ("activation (2 commits)", "activation.sql", PG_CLIENTS),
            ("activation (2 commits), 1 client", "activation.sql", 1),
            ("validation-shaped read", "validation.sql", PG_CLIENTS),
        ):
            tps, latency = _pgbench(url, script, clients)
            lines.append(
                f"  {'PostgreSQL ' + label:<66} {tps:8.0f} /s (mean {latency:5.2f} ms, "
                f"{clients} client{'s' if clients > 1 else ''})"
            )
    finally:
        infra.drop_database(name)
    return lines


def run(suite: None) -> list[str]:
    return [
        f"capacity of the infrastructure alone, {SECONDS} s per figure:",
        *rabbitmq(),
        *postgresql(),
    ]
