"""The whole suite as real processes, for end-to-end tests and benchmarks.

Each service and the gateway run as `nameko run --config config.yaml <module>`, exactly as
ops run them, against the given environment (a vhost, PostgreSQL databases, an SMTP sink),
each with the bus user of its kind from `portalctl bus grant` (`suite.uris`; portalctl runs
as staff; `suite.env["AMQP_URI"]` stays the administrator's, for tests that inspect queues).
Tests can stop and start single services to see what users see when one is down.
"""

from __future__ import annotations

import json
import os
import random
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from common import bus
from tests.support import infra

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("auth", "licensing", "billing", "notify")
MODULES = {name: f"services.{name}.service" for name in SERVICES} | {"gateway": "gateway.service"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Api:
    """A small HTTP client for the gateway: `api.post("/api/v1/sessions", json=..., token=...)`."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.http = requests.Session()

    def request(self, method: str, path: str, token: str | None = None, **kwargs: Any):
        headers = dict(kwargs.pop("headers", {}) or {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        kwargs.setdefault("timeout", 15)
        return self.http.request(method, self.base_url + path, headers=headers, **kwargs)

    def get(self, path: str, **kwargs: Any):
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any):
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any):
        return self.request("PUT", path, **kwargs)

    def patch(self, path: str, **kwargs: Any):
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any):
        return self.request("DELETE", path, **kwargs)

    def login(self, login: str, password: str) -> str:
        response = self.post("/api/v1/sessions", json={"login": login, "password": password})
        assert response.status_code == 201, response.text
        return response.json()["token"]


class FromAddress(HTTPAdapter):
    """Connections from one source address (any of 127.0.0.0/8 is this machine on Linux)."""

    def __init__(self, address: str) -> None:
        self.address = address
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["source_address"] = (self.address, 0)
        super().init_poolmanager(*args, **kwargs)


def client_at(url: str) -> Api:
    """An API client of a loopback address no other test uses, so the gateway (and the
    throttles behind it) see a client of its own."""
    address = f"127.{random.randint(1, 254)}.{random.randint(1, 254)}.{random.randint(2, 254)}"
    api = Api(url)
    api.http.mount("http://", FromAddress(address))
    return api


# `portalctl.cli.main` on one command line after another, as a `portalctl` process runs each:
# its exit code, output and errors as one JSON line on the answers pipe (stdout goes to the
# log, so nothing else can write there); no connection outlives its command
_STAFF_CLI = """
import contextlib, io, json, os, sys, traceback
import kombu.pools
from portalctl.cli import main
answers = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)
for line in sys.stdin:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(json.loads(line))
        except SystemExit as exc:
            code = exc.code
        except Exception:
            traceback.print_exc()
            code = 1
    kombu.pools.reset()
    answers.write(json.dumps({"code": code, "stdout": out.getvalue(), "stderr": err.getvalue()}))
    answers.write("\\n")
    answers.flush()
"""


class StaffCli:
    """`portalctl` commands run one after the other in one process of the given environment:
    the same `main`, settings and output as a `portalctl` process each, without an
    interpreter start-up per command (one to four seconds on a busy two-core machine, and
    the suite's tests seed through hundreds of commands)."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = env
        self.lock = threading.Lock()  # green under eventlet: one command at a time
        self.pending = b""
        with open(log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-c", _STAFF_CLI],
                cwd=ROOT,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                start_new_session=True,
            )

    def run(self, args: list[str], timeout: float) -> dict[str, Any]:
        """`{"code", "stdout", "stderr"}` of `portalctl *args`; TimeoutError (and the
        process ended) when it takes longer than `timeout` seconds."""
        with self.lock:
            self.process.stdin.write(json.dumps(args).encode() + b"\n")
            self.process.stdin.flush()
            return json.loads(self._line(timeout))

    def _line(self, timeout: float) -> bytes:
        deadline = time.monotonic() + timeout
        out = self.process.stdout.fileno()
        while b"\n" not in self.pending:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([out], [], [], left)[0]:
                self.close()
                raise TimeoutError(f"portalctl did not answer within {timeout}s")
            chunk = os.read(out, 1 << 16)
            if not chunk:
                raise RuntimeError(f"portalctl ended ({self.process.wait(5)})")
            self.pending += chunk
        line, _, self.pending = self.pending.partition(b"\n")
        return line

    def close(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(5)
        self.process.stdin.close()
        self.process.stdout.close()


class Suite:
    """Processes of the suite; `start()` them, `stop(name)` one, `stop_all()` at the end."""

    def __init__(
        self, env: dict[str, str], log_dir: Path, uris: dict[str, str] | None = None
    ) -> None:
        self.port = free_port()
        self.env = {**os.environ, **env}
        # the AMQP URI of each process kind (none: every process uses AMQP_URI)
        self.uris = dict(uris or {})
        self.env["GATEWAY_ADDRESS"] = f"127.0.0.1:{self.port}"
        self.env.setdefault("PORTAL_URL", f"http://localhost:{self.port}")
        self.env.setdefault("EVENTLET_TESTS", "0")  # no maintenance-mode notice in the logs
        self.log_dir = log_dir
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.processes: dict[str, list[subprocess.Popen]] = {}
        self.url = f"http://127.0.0.1:{self.port}"
        self.api = Api(self.url)
        self.staff_cli: StaffCli | None = None

    def start(self, *names: str, instances: int = 1, env: dict[str, str] | None = None) -> None:
        """Start `instances` processes of each of `names` (default: every service), with
        `env` added to their environment (e.g. another `GATEWAY_ADDRESS`, so a second
        gateway listens on a port of its own: `start_gateway`)."""
        for name in names or tuple(MODULES):
            for _ in range(instances):
                index = len(self.processes.get(name, []))
                # the child writes to its own copy of the descriptor
                with open(self.log_dir / f"{name}-{index}.log", "ab") as log:
                    process = subprocess.Popen(
                        [
                            sys.executable,
                            "-m",
                            "nameko",
                            "run",
                            "--config",
                            "config.yaml",
                            MODULES[name],
                        ],
                        cwd=ROOT,
                        env={**self.env_of(name), **(env or {})},
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                self.processes.setdefault(name, []).append(process)

    def start_gateway(self, env: dict[str, str] | None = None) -> Api:
        """One more gateway, on a port of its own; its `Api` once it answers `/readyz`
        (it leaves with `terminate("gateway", index)` or `stop_all`)."""
        port = free_port()
        self.start("gateway", env={**(env or {}), "GATEWAY_ADDRESS": f"127.0.0.1:{port}"})
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            process = self.processes["gateway"][-1]
            if process.poll() is not None:
                raise RuntimeError(f"gateway exited:\n{self.logs('gateway')[-3000:]}")
            try:
                if requests.get(f"{url}/readyz", timeout=5).status_code == 200:
                    return client_at(url)
            except requests.RequestException:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"the gateway at {url} was not ready within 60s")

    def env_of(self, kind: str) -> dict[str, str]:
        """The environment of a process of `kind`: its own bus user, when there are some."""
        if kind not in self.uris:
            return self.env
        return {**self.env, "AMQP_URI": self.uris[kind]}

    def stop(self, name: str, graceful: bool = True) -> None:
        for process in self.processes.pop(name, []):
            self._end(process, graceful)

    def terminate(self, name: str, index: int = 0, timeout: float = 40.0) -> int:
        """SIGTERM one process of `name` (as Kubernetes rolls a pod) and wait for it to end;
        its exit code. The process leaves the suite: `start(name)` starts a new one."""
        process = self.processes[name].pop(index)
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)
            raise AssertionError(
                f"{name}-{index} did not end within {timeout}s of SIGTERM"
            ) from None

    def stop_all(self) -> None:
        """Stop every process, all at once: each drains its workers on SIGTERM, and one
        after the other they took seconds each."""
        processes = [
            process for name in list(self.processes) for process in self.processes.pop(name)
        ]
        running = [process for process in processes if process.poll() is None]
        for process in running:
            os.killpg(process.pid, signal.SIGTERM)
        for process in running:
            self._reap(process)
        if self.staff_cli is not None:
            self.staff_cli.close()
            self.staff_cli = None

    @staticmethod
    def _end(process: subprocess.Popen, graceful: bool) -> None:
        if process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM if graceful else signal.SIGKILL)
        Suite._reap(process)

    @staticmethod
    def _reap(process: subprocess.Popen) -> None:
        """Wait for a signalled process to end; SIGKILL it after 15 s."""
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)

    def portalctl(self, *args: str, check: bool = True) -> Any:
        """Run `portalctl ... --json` as staff against this suite; the parsed document.

        With `check=False`, the finished `portalctl` process itself (a process of its own,
        for tests of how the command fails); otherwise the command runs in the suite's
        `StaffCli`, started again when the staff environment changed or it ended."""
        if not check:
            return subprocess.run(
                [sys.executable, "-m", "portalctl", *args, "--json"],
                cwd=ROOT,
                env=self.env_of("staff"),
                capture_output=True,
                text=True,
                timeout=60,
            )
        env = self.env_of("staff")
        cli = self.staff_cli
        if cli is None or cli.env != env or cli.process.poll() is not None:
            if cli is not None:
                cli.close()
            self.staff_cli = cli = StaffCli(dict(env), self.log_dir / "portalctl.log")
        result = cli.run([*args, "--json"], timeout=60)
        assert result["code"] == 0, result["stderr"]
        return json.loads(result["stdout"])

    def log(self, name: str, index: int = 0) -> str:
        return (self.log_dir / f"{name}-{index}.log").read_text(errors="replace")

    def logs(self, name: str) -> str:
        """Every log of `name`'s processes, past ones included, one after the other."""
        return "".join(
            path.read_text(errors="replace") for path in sorted(self.log_dir.glob(f"{name}-*.log"))
        )

    def wait_ready(self, timeout: float = 60.0, services: tuple[str, ...] = SERVICES) -> None:
        """Until `/readyz` says the given services answer; fail with the logs of dead ones."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            for name, processes in self.processes.items():
                for index, process in enumerate(processes):
                    if process.poll() is not None:
                        raise RuntimeError(
                            f"{name}-{index} exited ({process.returncode}):\n"
                            + self.log(name, index)[-3000:]
                        )
            try:
                response = requests.get(f"{self.url}/readyz", timeout=5)
                last = response.json()
                states = last.get("services", {})
                if all(states.get(name) == "ok" for name in services):
                    return
            except (requests.RequestException, ValueError):
                pass
            time.sleep(0.3)
        raise RuntimeError(f"suite not ready within {timeout}s: {last}")


@contextmanager
def provisioned_suite(label: str, env: dict[str, str], log_dir: Path) -> Iterator[Suite]:
    """The whole suite, started and ready, on a fresh vhost with a bus user per process kind
    (`portalctl bus grant`) and fresh PostgreSQL databases named after `label`; everything is
    stopped, dropped and deleted afterwards."""
    run = f"{label}_{infra.RUN_ID}"
    vhost = f"lp-{run}"
    env = {"AMQP_URI": infra.create_vhost(vhost), **env}
    # users are global to the broker: a prefix per run, so parallel runs never share one
    prefix = f"lp-{run}-"
    store = log_dir / bus.CREDENTIALS_FILE
    names = []
    try:
        users = bus.grant(env["AMQP_URI"], prefix=prefix, api_uri=infra.RABBIT_API, store=store)
        for service in SERVICES:
            name = f"lp_{run}_{service}"
            env[f"{service.upper()}_DATABASE_URL"] = infra.create_database(name)
            names.append(name)
        suite = Suite(env, log_dir, {kind: user["amqp_uri"] for kind, user in users.items()})
        try:
            suite.start()
            suite.wait_ready(timeout=90)
            yield suite
        finally:
            suite.stop_all()
    finally:
        for name in names:
            infra.drop_database(name)
        bus.revoke(env["AMQP_URI"], prefix=prefix, api_uri=infra.RABBIT_API, store=store)
        infra.delete_vhost(vhost)
