"""The hot paths through the gateway, driven by wrk, beside a bare nameko echo (issue 17).

Every figure is `wrk` with 2 threads, 16 connections, 8 seconds (`bench.load`), in this
order each round:

1. echo: `GET /echo` of `bench.echo`, a bare nameko `@http` → `@rpc` round trip in two
   processes of their own on the suite's vhost, no project code: the baseline every ratio
   is against (run before and after the other figures; the two are averaged);
2. `GET /healthz` of the gateway: its HTTP ceiling (no RPC);
3. validation: `POST /api/v1/validations` of VALID certificates, rotating through
   `PREPARED` installations activated before the first round;
4. activation: `POST /api/v1/activations` of new installations (201), a unique ID per
   request, over `LICENSES` licenses round-robin with seats enough for every round;
5. re-activation: the same of the `PREPARED` installations, already active (200);
6. echo again.

After each figure the bench waits until the work it queued is done (RabbitMQ's queues
empty, licensing's outbox published, notify's emails sent), so the next figure has the
cores to itself; the CPU time each process spent, from the figure's start to then, per
request, is printed under it (`bench.cpu`): what one request costs each process, its
aftermath included, whatever else shares the machine.

`BENCH_ROUNDS` rounds (default 3): each round's figures and ratios, the medians, and one
verdict line against the aims of issue 17: validation >= 2x the echo's throughput,
activation >= 0.5x, re-activation >= 0.8x, each one's p99 <= 2x the echo's p99. A figure
with answers other than the expected status, or with socket errors, says so. Where the time
of each request goes comes from the suite's metrics (`bench.stages`).

Run alone: `.venv/bin/python -m bench bench.hotpaths` (`bench.licensing` is the same).
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import requests
from prometheus_client.parser import text_string_to_metric_families

from bench import cpu, load, stages
from bench.harness import bench_customer, issue_license
from tests.support import infra
from tests.support.suite import ROOT, Suite, free_port

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
LICENSES = 32
PREPARED = 300  # installations activated first: the validations' and re-activations' set
# new activations one figure can make at most, for the seats (a 201 each, none refused):
# far above what two cores do in 8 seconds
ACTIVATIONS_PER_FIGURE = 6000
WARMUP_SECONDS = 2
SETTLE_SECONDS = 120
AIMS = (("validation", 2.0), ("activation", 0.5), ("re-activation", 0.8))
P99_AIM = 2.0


class Echo:
    """`bench.echo` as two `nameko run` processes on `amqp_uri`; `url` its `GET /echo`."""

    def __init__(self, amqp_uri: str, log_dir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/echo"
        self.log_dir = log_dir
        self.config = log_dir / "echo.yaml"
        # the same worker count as the suite's processes (config.yaml: MAX_WORKERS, 10)
        self.config.write_text(
            f"AMQP_URI: '{amqp_uri}'\n"
            f"WEB_SERVER_ADDRESS: '127.0.0.1:{self.port}'\n"
            f"max_workers: {int(os.environ.get('MAX_WORKERS', '10'))}\n"
            "serializer: json\n"
        )
        self.processes: list[subprocess.Popen] = []

    def __enter__(self) -> Echo:
        for service in ("Echo", "EchoHttp"):
            with open(self.log_dir / f"echo-{service}.log", "ab") as log:
                self.processes.append(
                    subprocess.Popen(  # noqa: S603 - our interpreter, our module
                        [
                            sys.executable,
                            "-m",
                            "nameko",
                            "run",
                            "--config",
                            str(self.config),
                            f"bench.echo:{service}",
                        ],
                        cwd=ROOT,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(self.url, timeout=5).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            if any(process.poll() is not None for process in self.processes):
                break
            time.sleep(0.3)
        logs = "".join(path.read_text() for path in self.log_dir.glob("echo-*.log"))
        self.__exit__()
        raise RuntimeError(f"the nameko echo did not answer on {self.url}:\n{logs[-3000:]}")

    def __exit__(self, *exc: object) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)


def _pending(suite: Suite) -> float:
    """Messages in the suite's queues, events in licensing's outbox, emails notify has yet to
    send: the work earlier requests left behind."""
    api = urlparse(infra.RABBIT_API)
    vhost = urlparse(suite.env["AMQP_URI"]).path.lstrip("/")
    queues = requests.get(
        f"{api.scheme}://{api.hostname}:{api.port}/api/queues/{vhost}?columns=messages,consumers",
        auth=(api.username or "guest", api.password or "guest"),
        timeout=10,
    ).json()
    # a queue nobody consumes (a parking queue) is nobody's work; a queue without statistics
    # yet (just declared) comes as `[]`, RabbitMQ's empty property list
    waiting = float(
        sum(q.get("messages") or 0 for q in queues if isinstance(q, dict) and q.get("consumers"))
    )
    for process, gauge in (
        ("licensing", "portal_outbox_unpublished"),
        ("notify", "portal_notify_emails_pending"),
    ):
        text = requests.get(stages.metrics_url(suite, process), timeout=10).text
        for family in text_string_to_metric_families(text):
            waiting += sum(s.value for s in family.samples if s.name == gauge)
    return waiting


def settle(suite: Suite, limit: float = SETTLE_SECONDS) -> float:
    """Wait until the work a figure queued is done (`_pending` is 0 twice in a row, at most
    `limit` seconds), so the next figure does not share the cores with it; the seconds it
    took. The CPU of a figure is read after this: a request's cost includes what it queued
    (notify's emails of an activation)."""
    started = time.monotonic()
    quiet = 0
    while time.monotonic() - started < limit:
        quiet = quiet + 1 if _pending(suite) == 0 else 0
        if quiet == 2:
            break
        time.sleep(0.25)
    return time.monotonic() - started


def _licenses(suite: Suite) -> list[dict]:
    company, code = bench_customer(suite, "Bench GmbH", "Bench Product")
    rounds = ROUNDS + 1  # the warm-up too
    seats = (PREPARED + rounds * ACTIVATIONS_PER_FIGURE) // LICENSES + 10
    return [issue_license(suite, company["customer_id"], code, seats) for _ in range(LICENSES)]


def _prepare(url: str, licenses: list[dict]) -> list[tuple[dict, str, str]]:
    """`PREPARED` activations: `(license, installation ID, certificate)` of each."""

    def activate(index: int) -> tuple[dict, str, str]:
        license = licenses[index % len(licenses)]
        installation = f"prepared-{index}"
        answer = requests.post(
            f"{url}/api/v1/activations",
            json={
                "license_id": license["license_id"],
                "password": license["activation_password"],
                "installation_id": installation,
                "machine_name": f"Bench machine {installation}",
            },
            timeout=30,
        )
        if answer.status_code != 201:
            raise RuntimeError(f"preparing activations: {answer.status_code} {answer.text}")
        return license, installation, answer.json()["certificate"]

    with ThreadPoolExecutor(16) as pool:
        return list(pool.map(activate, range(PREPARED)))


def run(suite: Suite) -> list[str]:
    load.ensure_wrk()
    with (
        tempfile.TemporaryDirectory() as scratch,
        Echo(suite.env["AMQP_URI"], suite.log_dir) as echo,
    ):
        return _run(suite, echo, Path(scratch))


def _run(suite: Suite, echo: Echo, scratch: Path) -> list[str]:
    url = suite.url
    licenses = _licenses(suite)
    prepared = _prepare(url, licenses)
    certificates = scratch / "certificates"
    certificates.write_text("".join(f"{cert}\n" for _, _, cert in prepared))
    license_rows = scratch / "licenses"
    license_rows.write_text(
        "".join(f"{lic['license_id']} {lic['activation_password']}\n" for lic in licenses)
    )
    installations = scratch / "installations"
    installations.write_text(
        "".join(
            f"{lic['license_id']} {lic['activation_password']} {installation}\n"
            for lic, installation, _ in prepared
        )
    )

    processes = {name: [p.pid for p in group] for name, group in suite.processes.items()}
    meter = cpu.Meter(
        {**processes, "echo http": [echo.processes[1].pid], "echo rpc": [echo.processes[0].pid]}
    )

    def measured(name: str, target: str, script: str = "get.lua", **options: Any) -> load.Figure:
        before = meter.snapshot()
        figure = load.figure(name, target, script, **options)
        figure.settled = settle(suite)
        figure.cpu = meter.ms(before, meter.snapshot(), figure.requests)
        return figure

    def figures(seconds: int, prefix: str, scraper: stages.Stages | None) -> dict:
        scrapes: list[stages.Samples] = []

        def scrape() -> None:
            if scraper is not None:
                scrapes.append(scraper.scrape())

        run = {
            "echo before": measured("echo (before)", echo.url, seconds=seconds),
            "healthz": measured("gateway GET /healthz", f"{url}/healthz", seconds=seconds),
        }
        scrape()
        run["validation"] = measured(
            "validation (200 VALID)", url, "validate.lua", data=certificates, seconds=seconds
        )
        scrape()
        run["activation"] = measured(
            "activation (201, new seat)",
            url,
            "activate.lua",
            expect=201,
            data=license_rows,
            seconds=seconds,
            env={"BENCH_PREFIX": prefix},
        )
        scrape()
        run["re-activation"] = measured(
            "re-activation (200)", url, "reactivate.lua", data=installations, seconds=seconds
        )
        scrape()
        run["echo after"] = measured("echo (after)", echo.url, seconds=seconds)
        run["echo"] = load.averaged("echo (before/after)", run["echo before"], run["echo after"])
        run["scrapes"] = scrapes
        return run

    figures(WARMUP_SECONDS, f"warm-{uuid.uuid4().hex[:6]}", None)
    scraper = stages.Stages(suite)
    lines = [
        f"hot paths: wrk {load.THREADS} threads, {load.CONNECTIONS} connections, "
        f"{load.SECONDS} s per figure, {ROUNDS} rounds; one gateway and one licensing process; "
        f"baseline: a bare nameko @http -> @rpc echo (two processes)",
    ]
    rounds = []
    for number in range(1, ROUNDS + 1):
        run = figures(load.SECONDS, f"r{number}-{uuid.uuid4().hex[:6]}", scraper)
        rounds.append(run)
        echo_figure = run["echo"]
        lines.append(f"round {number}:")
        for key in ("echo before", "echo after"):
            lines.append(run[key].line())
        for key in ("echo", "healthz", "validation", "activation", "re-activation"):
            lines.append(run[key].line(None if key == "echo" else echo_figure))
            lines += [text for text in (run[key].cpu_line(),) if text]
        lines += _splits(run["scrapes"])
    lines.append(f"medians of {ROUNDS} rounds (ratios: the median of each round's ratio):")
    ratios = {}
    for key in ("echo", "healthz", "validation", "activation", "re-activation"):
        ratio = p99_ratio = None
        if key != "echo":
            ratio = statistics.median(r[key].throughput / r["echo"].throughput for r in rounds)
            p99_ratio = statistics.median(r[key].p99 / r["echo"].p99 for r in rounds)
            ratios[key] = (ratio, p99_ratio)
        lines.append(_median_line(key, [r[key] for r in rounds], ratio, p99_ratio))
        cpu_medians = {
            name: statistics.median(r[key].cpu.get(name, 0.0) for r in rounds)
            for name in rounds[0][key].cpu
        }
        lines += [
            text for text in (load.Figure("", 0, 0, 0, 0, cpu=cpu_medians).cpu_line(),) if text
        ]
    lines.append(_verdict(ratios, rounds))
    return lines


def _splits(scrapes: list[stages.Samples]) -> list[str]:
    if len(scrapes) < 4:
        return []
    return [
        stages.split(
            "  where the time goes: validation",
            scrapes[0],
            scrapes[1],
            "/api/v1/validations",
            "POST",
            [("licensing", "*")],
        ),
        stages.split(
            "  where the time goes: activation",
            scrapes[1],
            scrapes[2],
            "/api/v1/activations",
            "POST",
            [("licensing", "*")],
        ),
        stages.split(
            "  where the time goes: re-activation",
            scrapes[2],
            scrapes[3],
            "/api/v1/activations",
            "POST",
            [("licensing", "*")],
        ),
    ]


def _median_line(
    key: str, figures: list[load.Figure], ratio: float | None, p99_ratio: float | None
) -> str:
    errors = sum(figure.errors for figure in figures)
    text = (
        f"  {key:<30} {statistics.median(f.throughput for f in figures):8.1f} req/s   "
        f"p50 {statistics.median(f.p50 for f in figures):6.1f} ms   "
        f"p99 {statistics.median(f.p99 for f in figures):6.1f} ms"
    )
    if ratio is not None:
        text += f"  {ratio:5.2f}x echo (p99 {p99_ratio:4.2f}x)"
    if errors:
        text += f"   ERRORS in {sum(1 for f in figures if f.errors)} round(s): {errors} answers"
    return text


def _verdict(ratios: dict[str, tuple[float, float]], rounds: list[dict]) -> str:
    checks = []
    for key, aim in AIMS:
        ratio = ratios[key][0]
        met = ratio >= aim
        flag = "" if not any(r[key].errors for r in rounds) else ", with errors"
        detail = f"{ratio:.2f}x" if met else f"{ratio:.2f}x, gap {aim / ratio:.2f}x"
        checks.append(f"{key} >= {aim:g}x {'met' if met else 'MISSED'} ({detail}{flag})")
    for key, _ in AIMS:
        p99 = ratios[key][1]
        met = p99 <= P99_AIM
        checks.append(
            f"{key} p99 <= {P99_AIM:g}x echo p99 {'met' if met else 'MISSED'} ({p99:.2f}x)"
        )
    return "aims: " + " | ".join(checks)
