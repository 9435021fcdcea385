"""The `license-client` command over real loopback HTTP: what a new user types, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest

from license_client import cli
from license_client.testing import FakePortal, serve

PASSWORD = "Copper-Kettle-17"


@pytest.fixture
def portal() -> FakePortal:
    portal = FakePortal()
    expiry = datetime.now(timezone.utc) + timedelta(days=30)
    portal.add_license("LIC-CLI-0001", PASSWORD, seats=1, expires_at=expiry)
    return portal


def test_activate_status_offline_and_deactivate(run, server, portal):
    code, out, _ = run(
        "--server", server, "activate", "LIC-CLI-0001", "--password", PASSWORD,
        "--machine-name", "Drafting PC", "--json",
    )  # fmt: skip
    assert code == cli.EXIT_OK
    document = json.loads(out)
    assert document["activated"] and document["validation"]["code"] == "VALID"
    assert document["machine_name"] == "Drafting PC"
    assert portal.licenses["LIC-CLI-0001"].installations == {"cli-test-installation": "Drafting PC"}

    # no --server any more: the one used to activate is remembered
    code, out, _ = run("status")
    assert code == cli.EXIT_OK
    assert "VALID, checked online" in out and "Drafting PC" in out

    portal.down = True  # the suite is stopped
    code, out, _ = run("status", "--retries", "0")
    assert code == cli.EXIT_OK
    assert "checked offline" in out and "days of grace left" in out
    code, out, _ = run("status", "--offline", "--json")
    assert code == cli.EXIT_OK and json.loads(out)["validation"]["online"] is False

    portal.down = False
    code, out, _ = run("deactivate")
    assert code == cli.EXIT_OK and "Deactivated" in out
    assert portal.licenses["LIC-CLI-0001"].installations == {}
    code, out, _ = run("status", "--offline")
    assert code == cli.EXIT_NOT_ACTIVATED and "Not activated" in out
    code, _, err = run("deactivate")
    assert code == cli.EXIT_NOT_ACTIVATED and "not activated" in err


def test_password_from_standard_input_or_environment(run, server, portal, monkeypatch):
    code, _, _ = run("--server", server, "activate", "LIC-CLI-0001", stdin=PASSWORD + "\n")
    assert code == cli.EXIT_OK
    monkeypatch.setenv("LICENSE_CLIENT_PASSWORD", PASSWORD)
    assert run("--server", server, "activate", "LIC-CLI-0001")[0] == cli.EXIT_OK


def test_refusals_exit_4_with_the_error_document(run, server, portal):
    code, out, err = run(
        "activate", "LIC-CLI-0001", "--server", server, "--password", "wrong", "--json"
    )
    assert code == cli.EXIT_REFUSED
    assert json.loads(out)["error"]["code"] == "invalid_credentials"
    assert "wrong" in err
    portal.licenses["LIC-CLI-0001"].installations["someone-else"] = "Bob's PC"
    code, _, err = run("--server", server, "activate", "LIC-CLI-0001", "--password", PASSWORD)
    assert code == cli.EXIT_REFUSED and "Bob's PC" in err


def test_another_products_license_is_one_refusal_and_no_seat(run, server, portal):
    code, out, err = run(
        "--server", server, "--product", "femsolver", "activate", "LIC-CLI-0001",
        "--password", PASSWORD,
    )  # fmt: skip
    assert code == cli.EXIT_REFUSED
    assert out == ""  # no "Activated…"
    assert err == (
        "license-client: License LIC-CLI-0001 is for cadpro, not femsolver. No seat was taken: "
        "use a license of this product, or check the product code this program is configured "
        "with.\n"
    )
    assert portal.licenses["LIC-CLI-0001"].installations == {}


def test_status_right_after_activating_says_it_was_checked_online(run, server):
    code, out, _ = run("--server", server, "activate", "LIC-CLI-0001", "--password", PASSWORD)
    assert code == cli.EXIT_OK
    assert "VALID, checked online." in out and "checked offline" not in out
    assert "Activated online: the license server at" in out


def test_activating_again_after_a_deactivation_in_the_portal(run, server, portal):
    args = ("activate", "LIC-CLI-0001", "--password", PASSWORD)
    assert run("--server", server, *args, "--machine-name", "Drafting PC")[0] == cli.EXIT_OK
    portal.deactivate_installation("LIC-CLI-0001", "cli-test-installation")
    code, out, _ = run("status")
    assert code == cli.EXIT_INVALID
    assert "deactivated on the license server (from the portal, at " in out
    assert f"ask your administrator at {server} for a seat" in out
    code, out, err = run(*args)  # no --server, no --machine-name
    assert code == cli.EXIT_OK, err
    assert portal.licenses["LIC-CLI-0001"].installations == {"cli-test-installation": "Drafting PC"}


def test_an_unreachable_server_exits_5(run, portal):
    with serve(portal) as url:
        pass  # the port is closed again
    code, _, err = run("--server", url, "activate", "L", "--password", "p", "--retries", "0")
    assert code == cli.EXIT_UNREACHABLE and "could not be reached" in err


def test_an_invalid_license_exits_1(run, server, portal, tmp_path):
    assert run("--server", server, "activate", "LIC-CLI-0001", "--password", PASSWORD)[0] == 0
    portal.licenses["LIC-CLI-0001"].installations.clear()  # deactivated in the portal
    code, out, _ = run("status")
    assert code == cli.EXIT_INVALID and "DEACTIVATED" in out


def test_usage_errors_exit_2(run):
    assert run()[0] == cli.EXIT_USAGE
    code, _, err = run("status", "--installation-id", "has space")
    assert code == cli.EXIT_USAGE and "installation ID" in err
    with pytest.raises(SystemExit) as caught:
        run("frobnicate")
    assert caught.value.code == 2


@pytest.mark.parametrize(
    "argv",
    [
        ["--password", PASSWORD, "status"],  # before the command: not an option there
        ["status", "--password", PASSWORD],  # a command without --password
        ["id", f"--password={PASSWORD}"],
        ["--pass", PASSWORD, "id"],  # an abbreviation
        ["status", "--offline", f"--passw={PASSWORD}", "--json"],
    ],
)
def test_a_usage_error_never_prints_the_password(run, argv):
    with pytest.raises(SystemExit) as caught:
        run(*argv)
    assert caught.value.code == cli.EXIT_USAGE
    code, out, err = run("id")  # what the failed call printed is read here
    assert "[redacted]" in err and PASSWORD not in err + out


def test_passwords_in_finds_every_spelling():
    argv = ["--password", "a b", "--pas=c", "--p", "product", "--passwordx", "d", "--password"]
    assert cli.passwords_in(argv) == ["a b", "c"]


def test_id_prints_the_installation_id(run):
    code, out, _ = run("id")
    assert (code, out.strip()) == (0, "cli-test-installation")


def test_the_module_runs_as_a_command(tmp_path):
    env = {"LICENSE_CLIENT_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-m", "license_client", "status", "--offline", "--json"],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == cli.EXIT_NOT_ACTIVATED, result.stderr
    assert json.loads(result.stdout)["validation"]["code"] == "NOT_ACTIVATED"
