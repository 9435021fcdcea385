"""Offline validations per second of the Python client kit, on one core (issue 6: ≥ 5,000/s).

Offline validation is on the product's start-up path: read the stored activation, verify the
certificate's Ed25519 signature against the pinned JWKS, check expiry, installation ID,
product and the clock. No suite is needed: a key and a certificate are made here, and the
client activates against the in-memory fake portal. The rate is counted per CPU second of
this one thread (so other load on the machine skews it less than wall time would); the raw
Ed25519 verification rate of the same machine is printed beside it as the ceiling.

    python -m bench.client          # alone
    make bench                      # with the other benchmarks
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

NEEDS_SUITE = False
TARGET = 5_000  # validations per second, from the issue
ROOT = Path(__file__).resolve().parents[1]

try:
    import license_client  # noqa: F401
except ModuleNotFoundError:  # not pip-installed: use the checkout's copy
    sys.path.insert(0, str(ROOT / "clients" / "python" / "src"))


def rate(call: Callable[[], object], count: int) -> tuple[float, float]:
    """(calls per CPU second, calls per wall second) of `count` calls, after a warm-up."""
    for _ in range(min(200, count)):
        call()
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(count):
        call()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return count / max(cpu, 1e-9), count / max(wall, 1e-9)


def run(suite: object = None, count: int = 20_000) -> list[str]:
    from license_client import LicenseClient
    from license_client.testing import FakePortal

    pinned = _pin_to_one_core()
    try:
        with tempfile.TemporaryDirectory() as scratch:
            portal = FakePortal()
            expiry = datetime.now(UTC) + timedelta(days=365)
            portal.add_license("LIC-BENCH-0001", "bench-password", seats=1, expires_at=expiry)

            def new_client() -> LicenseClient:
                return LicenseClient(
                    "http://portal.invalid",
                    product="cadpro",
                    data_dir=scratch,
                    jwks=portal.jwks,  # pinned: offline validation never fetches keys
                    installation_id="bench-installation",
                    transport=portal,
                )

            client = new_client()
            client.activate("LIC-BENCH-0001", "bench-password", machine_name="bench")
            assert client.validate(online=False).valid

            def validate() -> None:
                if not client.validate(online=False):
                    raise AssertionError("the benchmark certificate stopped validating")

            def cold_start() -> None:
                if not new_client().validate(online=False):
                    raise AssertionError("the benchmark certificate stopped validating")

            key = portal.key.public_key()
            message = b"x" * 420  # about the signing input of a certificate
            signature = portal.key.sign(message)

            per_cpu, per_wall = rate(validate, count)
            cold_cpu, _ = rate(cold_start, max(200, count // 10))
            raw_cpu, _ = rate(lambda: key.verify(signature, message), count)
    finally:
        _restore_affinity(pinned)

    verdict = "meets" if per_cpu >= TARGET else "BELOW"
    return [
        f"client offline validate     {per_cpu:9,.0f} /s per CPU second ({1e6 / per_cpu:5.0f} µs "
        f"each; {per_wall:,.0f}/s wall)  {verdict} the {TARGET:,}/s target",
        f"client cold start + validate{cold_cpu:9,.0f} /s (new client object, files read, verify)",
        f"raw Ed25519 verify (ceiling){raw_cpu:9,.0f} /s on this machine",
    ]


def _pin_to_one_core() -> set[int] | None:
    if not hasattr(os, "sched_setaffinity"):
        return None
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(before)})
    return before


def _restore_affinity(before: set[int] | None) -> None:
    if before is not None:
        os.sched_setaffinity(0, before)


if __name__ == "__main__":
    for line in run(None):
        print(line)
