"""`license-client checkout|borrow|checkin` over real loopback HTTP: what an office user
types to try a floating license, the messages naming who holds the seats, exit codes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest

from license_client import cli
from license_client.testing import FakePortal

PASSWORD = "Copper-Kettle-17"
FLOATING = "LIC-FLOT-0001"
INSTALLATION_ID = "cli-laptop"  # the `run` fixture's (conftest)


@pytest.fixture
def portal() -> FakePortal:
    portal = FakePortal()
    expiry = datetime.now(timezone.utc) + timedelta(days=30)
    portal.add_license(
        FLOATING, PASSWORD, seats=1, model="floating", lease_seconds=600, expires_at=expiry
    )
    return portal


def test_borrow_status_offline_and_checkin(run, server, portal):
    code, out, _ = run(
        "--server", server, "borrow", FLOATING, "--days", "3", "--machine-name", "LAPTOP-7",
        "--password", PASSWORD,
    )  # fmt: skip
    assert code == cli.EXIT_OK, out
    assert f"Borrowed a seat of license {FLOATING} until" in out
    assert "license-client checkin" in out
    assert [lease.machine_name for lease in portal.live_leases(FLOATING)] == ["LAPTOP-7"]

    portal.down = True  # on the train
    code, out, _ = run("status", "--offline")
    assert code == cli.EXIT_OK
    assert out.startswith("Lease LS-") and "VALID, checked offline" in out
    assert "borrowed" in out and "yes" in out
    code, out, _ = run("status", "--json", "--retries", "0")
    document = json.loads(out)
    assert code == cli.EXIT_OK and document["validation"]["valid"]
    assert document["lease"]["borrowed"] and "lease_token" not in out

    code, out, _ = run("checkout")  # the borrowed seat, with no network
    assert code == cli.EXIT_OK and "has borrowed a seat" in out and "nothing to hold" in out

    portal.down = False
    code, out, _ = run("checkin")
    assert code == cli.EXIT_OK and "its seat is free" in out
    assert portal.live_leases(FLOATING) == []
    code, _, err = run("checkin")
    assert code == cli.EXIT_NOT_ACTIVATED and "holds no lease" in err
    code, _, _ = run("status", "--offline")
    assert code == cli.EXIT_NOT_ACTIVATED


def test_borrowing_too_long_is_refused_with_the_limit(run, server):
    code, _, err = run("--server", server, "borrow", FLOATING, "--days", "30", stdin=PASSWORD)
    assert code == cli.EXIT_REFUSED
    assert "At most 7 days (until" in err
    code, _, err = run("--server", server, "borrow", FLOATING, "--days", "0", stdin=PASSWORD)
    assert code == cli.EXIT_USAGE


def test_no_seat_names_the_machines_and_until_when(run, server, portal, monkeypatch, tmp_path):
    run("--server", server, "borrow", FLOATING, "--days", "2", "--machine-name", "LAPTOP-7",
        "--password", PASSWORD)  # fmt: skip
    monkeypatch.setenv("LICENSE_CLIENT_INSTALLATION_ID", "cli-ws-2")
    monkeypatch.setenv("LICENSE_CLIENT_DATA_DIR", str(tmp_path / "ws-2"))
    code, _, err = run("--server", server, "checkout", FLOATING, "--password", PASSWORD)
    assert code == cli.EXIT_REFUSED
    assert "(on LAPTOP-7 (borrowed until " in err
    code, out, _ = run("--server", server, "checkout", FLOATING, "--password", PASSWORD, "--json")
    assert code == cli.EXIT_REFUSED
    error = json.loads(out)["error"]
    assert error["code"] == "no_seats_available"
    assert error["details"]["machines"][0]["machine_name"] == "LAPTOP-7"


def test_checkout_of_a_node_locked_license_says_activate(run, server, portal):
    portal.add_license("LIC-NODE-0001", PASSWORD, seats=1)
    code, _, err = run("--server", server, "checkout", "LIC-NODE-0001", "--password", PASSWORD)
    assert code == cli.EXIT_REFUSED and "activate it instead" in err


def test_checkout_without_a_license_id_is_a_usage_error(run, server):
    code, _, err = run("--server", server, "checkout", "--password", PASSWORD)
    assert code == cli.EXIT_USAGE and "give the license ID" in err


def _hold(server: str, tmp_path, *extra: str, license_id: str = FLOATING) -> subprocess.Popen:
    env = {
        **os.environ,
        "LICENSE_CLIENT_DATA_DIR": str(tmp_path / "ws"),
        "LICENSE_CLIENT_INSTALLATION_ID": "cli-ws-1",
        "LICENSE_CLIENT_PASSWORD": PASSWORD,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "license_client", "--server", server, "checkout", license_id,
         "--machine-name", "CAD-WS-01", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        # Ctrl-C as in a terminal: a job started in the background (`make test &`, nohup)
        # ignores SIGINT, the child inherits that and Python then never raises
        # KeyboardInterrupt: the SIGINT case would hang for reasons of the launch, not the kit
        preexec_fn=_interruptible,
    )  # fmt: skip
    return process


def _interruptible() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_checkout_holds_the_seat_until_ctrl_c_or_sigterm(server, portal, tmp_path, signum):
    process = _hold(server, tmp_path)
    try:
        first = process.stdout.readline()
        second = process.stdout.readline()  # printed once the seat is held
        assert first.startswith(f"Checked out a seat of license {FLOATING} on CAD-WS-01"), first
        assert "renewed every 200 s" in first
        assert "press Ctrl-C" in second
        assert [lease.machine_name for lease in portal.live_leases(FLOATING)] == ["CAD-WS-01"]
        process.send_signal(signum)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == cli.EXIT_OK, err
    assert "Checked in lease LS-" in out and "the seat is free" in out
    assert portal.live_leases(FLOATING) == []
    assert [lease.status for lease in portal.licenses[FLOATING].leases.values()] == ["checked_in"]


def test_checkout_json_prints_one_document_then_holds(server, portal, tmp_path):
    process = _hold(server, tmp_path, "--json")
    try:
        lines = []
        while not lines or lines[-1] != "}\n":
            lines.append(process.stdout.readline())
        document = json.loads("".join(lines))
        assert document["license_id"] == FLOATING and "lease_token" not in document
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == cli.EXIT_OK and out == ""
    assert "Checked in lease" in err


def test_checkout_stops_holding_when_an_admin_revokes_the_lease(server, portal, tmp_path):
    short = "LIC-FLOT-0002"
    expiry = datetime.now(timezone.utc) + timedelta(days=30)
    portal.add_license(
        short, PASSWORD, seats=1, model="floating", lease_seconds=3, expires_at=expiry
    )  # a heartbeat every second
    process = _hold(server, tmp_path, license_id=short)
    try:
        assert process.stdout.readline().startswith("Checked out a seat"), process.stderr
        (lease,) = portal.live_leases(short)
        portal.revoke_lease(short, lease.lease_id)
        out, err = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == cli.EXIT_INVALID, err
    assert "the seat is lost: The lease was revoked in the portal" in err
    assert portal.live_leases(short) == []  # not taken back
    checkouts = [path for method, path, _ in portal.requests if method == "POST"]
    assert checkouts.count("/api/v1/leases") == 1
