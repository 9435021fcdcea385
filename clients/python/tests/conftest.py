"""Fixtures of the client's unit tests: a settable clock, a fake portal, a client factory.

No server runs: the client talks to `FakePortal` as its transport (or over loopback HTTP in
the tests that need real sockets), and backoff sleeps are recorded instead of slept.
"""

from __future__ import annotations

import io
import signal
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

import pytest

from license_client import LicenseClient, cli, leases
from license_client.testing import FakePortal, serve

START = datetime(2030, 1, 15, 9, 0, tzinfo=timezone.utc)
SERVER = "http://portal.test"
PRODUCT = "cadpro"
PASSWORD = "Copper-Kettle-17"


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now

    def monotonic(self) -> float:
        """Seconds on the client's monotonic clock: moved with the wall clock by `advance`."""
        return (self.now - START).total_seconds()


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # a developer's own settings must not leak into the tests
    for name in (
        "LICENSE_CLIENT_INSTALLATION_ID",
        "LICENSE_CLIENT_DATA_DIR",
        "LICENSE_SERVER_URL",
        "LICENSE_CLIENT_PRODUCT",
        "LICENSE_CLIENT_PASSWORD",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))


@pytest.fixture(autouse=True)
def exit_hooks(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Callable[[], Any]]]:
    """A check-out registers an atexit hook and a SIGTERM handler: recorded here (a test
    may run them), and the SIGTERM handler put back, so no test leaves them to pytest."""
    registered: list[Callable[[], Any]] = []
    monkeypatch.setattr(leases.atexit, "register", registered.append)
    original = signal.getsignal(signal.SIGTERM)
    yield registered
    signal.signal(signal.SIGTERM, original)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def portal(clock: Clock) -> FakePortal:
    portal = FakePortal(clock=clock)
    portal.add_license("LIC-AAAA-1111", PASSWORD, seats=1, expires_at=START + timedelta(days=365))
    portal.add_license("LIC-PERP-2222", PASSWORD, seats=2)
    return portal


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def make_client(
    tmp_path: Path, clock: Clock, portal: FakePortal, sleeps: list[float]
) -> Callable[..., LicenseClient]:
    """A client of the fake portal; `machine` picks its data folder and installation ID."""

    def make(machine: str = "pc-1", **kwargs: Any) -> LicenseClient:
        options: dict[str, Any] = {
            "product": PRODUCT,
            "data_dir": tmp_path / machine,
            "clock": clock,
            "transport": portal,
            "sleep": sleeps.append,
            "installation_id": f"inst-{machine}",
            "monotonic": clock.monotonic,
        }
        options.update(kwargs)
        return LicenseClient(options.pop("base_url", SERVER), **options)

    return make


# --- the command line over loopback HTTP (a module overrides `portal` with its licenses) ----


@pytest.fixture
def server(portal: FakePortal) -> Iterator[str]:
    """The fake portal served on loopback: its URL."""
    with serve(portal) as url:
        yield url


@pytest.fixture
def run(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> Callable[..., tuple[int, str, str]]:
    """`run("--server", url, "activate", …)` → `(exit code, stdout, stderr)` of `license-client`,
    with its own data folder and the module's `INSTALLATION_ID` (if it names one)."""
    monkeypatch.setenv("LICENSE_CLIENT_DATA_DIR", str(tmp_path / "data"))
    installation_id = getattr(request.module, "INSTALLATION_ID", "cli-test-installation")
    monkeypatch.setenv("LICENSE_CLIENT_INSTALLATION_ID", installation_id)

    def run(*args: str, stdin: str = "") -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        code = cli.main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return run
