"""A second gateway process beside the running suite, with its own settings (a small header
timeout, a connection cap, an HTTPS PORTAL_URL, a low descriptor limit), so that abusing it
disturbs no other test. It talks to the suite's services over the suite's bus, with the
gateway's own bus user."""

from __future__ import annotations

import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

from tests.support.suite import ROOT, Suite, free_port

START_TIMEOUT = 60


@dataclass
class Gateway:
    url: str
    port: int
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None


def _descriptor_limit(soft: int | None):
    if soft is None:
        return None

    def limit() -> None:
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    return limit


@contextmanager
def gateway_process(
    suite: Suite, log_dir: Path, max_descriptors: int | None = None, **env: str
) -> Iterator[Gateway]:
    """A gateway on a free port with `env` over the suite's environment, ready to answer."""
    port = free_port()
    log_path = log_dir / f"gateway-{port}.log"
    environment = {**suite.env_of("gateway"), "GATEWAY_ADDRESS": f"127.0.0.1:{port}", **env}
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "nameko", "run", "--config", "config.yaml", "gateway.service"],
            cwd=ROOT,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_descriptor_limit(max_descriptors),
        )
    gateway = Gateway(f"http://127.0.0.1:{port}", port, process, log_path)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if not gateway.alive():
                raise RuntimeError(f"the gateway exited:\n{gateway.log()[-3000:]}")
            try:
                if requests.get(f"{gateway.url}/healthz", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the gateway did not start:\n{gateway.log()[-3000:]}")
            time.sleep(0.2)
        yield gateway
    finally:
        Suite._end(process, graceful=True)
