"""The offline commands of `license-client`, as an engineer at an air-gapped site types them:
with sockets forbidden in-process, and once in a subprocess without any network namespace."""

from __future__ import annotations

import io
import json
import shutil
import socket
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest

from license_client import LicenseClient, cli, errors
from license_client.testing import FakePortal

LICENSE = "L-7KQX-M2PD"


@pytest.fixture
def portal() -> FakePortal:
    portal = FakePortal()
    expiry = datetime.now(timezone.utc) + timedelta(days=30)
    portal.add_license(LICENSE, "pw", seats=1, expires_at=expiry, features=["steel", "dynamics"])
    return portal


@pytest.fixture
def stick(tmp_path):
    """The USB stick: a folder the files are carried in."""
    folder = tmp_path / "stick"
    folder.mkdir()
    return folder


@pytest.fixture
def jwks_file(tmp_path, portal):
    path = tmp_path / "vendor-jwks.json"  # shipped with the product
    path.write_text(json.dumps(portal.jwks))
    return path


@pytest.fixture
def run(tmp_path, capsys, monkeypatch, jwks_file):
    monkeypatch.setenv("LICENSE_CLIENT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LICENSE_CLIENT_INSTALLATION_ID", "ws-07-installation")
    monkeypatch.setenv("LICENSE_CLIENT_PRODUCT", "cadpro")

    def no_network(*args, **kwargs):
        raise AssertionError("an offline command opened a connection")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)

    def run(*args: str) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "stdin", io.StringIO(""))
        code = cli.main(["--jwks", str(jwks_file), *args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_request_install_status_and_deactivate(run, portal, stick):
    request_file = stick / "activation-request.json"
    code, out, err = run(
        "offline-request", "--license-id", LICENSE, "--machine-name", "CAD-WS-07",
        "--out", str(request_file),
    )  # fmt: skip
    assert code == cli.EXIT_OK, err
    assert str(request_file) in out and "offline-install" in out
    request = json.loads(request_file.read_text())
    assert (request["type"], request["product"], request["machine_name"]) == (
        "activation_request",
        "cadpro",
        "CAD-WS-07",
    )
    assert request_file.stat().st_mode & 0o777 == 0o644

    response_file = stick / f"activation-response-{LICENSE}.json"
    response_file.write_text(portal.respond_offline(LICENSE, request_file.read_text()))
    code, out, err = run("offline-install", str(response_file))
    assert code == cli.EXIT_OK, err
    assert f"Installed the offline activation of license {LICENSE}" in out
    assert "VALID" in out and "dynamics, steel" in out and "(offline)" in out

    code, out, _ = run("status", "--offline", "--json")
    status = json.loads(out)
    assert code == cli.EXIT_OK
    assert status["features"] == ["dynamics", "steel"] and status["source"] == "offline"
    assert status["validation"]["features"] == ["dynamics", "steel"]

    proof_file = stick / "deactivation-proof.json"
    code, out, err = run("deactivate", "--offline", "--out", str(proof_file), "--json")
    assert code == cli.EXIT_OK, err
    assert json.loads(out)["proof_file"] == str(proof_file)
    assert run("status", "--offline")[0] == cli.EXIT_NOT_ACTIVATED
    portal.deactivate_offline(LICENSE, proof_file.read_text())
    assert portal.licenses[LICENSE].installations == {}


def test_refused_files_exit_7_and_say_why(run, portal, stick):
    request_file = stick / "request.json"
    assert run("offline-request", "--license-id", LICENSE, "--out", str(request_file))[0] == 0
    response = portal.respond_offline(LICENSE, request_file.read_text())
    cut = stick / "cut.json"
    cut.write_text(response[:100])
    code, _, err = run("offline-install", str(cut))
    assert code == cli.EXIT_FILE_REFUSED == 7
    assert "cut short" in err

    code, out, _ = run("offline-install", str(cut), "--json")
    assert json.loads(out)["error"]["code"] == "invalid_response"

    # a newer request makes this response one for "another request"
    assert run("offline-request", "--license-id", LICENSE, "--out", str(request_file))[0] == 0
    old = stick / "old.json"
    old.write_text(response)
    code, _, err = run("offline-install", str(old))
    assert code == cli.EXIT_FILE_REFUSED
    assert "answers another request; make a new request on this machine" in err


def test_usage_errors(run, stick, tmp_path):
    with pytest.raises(SystemExit) as caught:  # argparse: no --out
        run("offline-request", "--license-id", LICENSE)
    assert caught.value.code == cli.EXIT_USAGE
    code, _, err = run("deactivate", "--offline")
    assert code == cli.EXIT_USAGE and "--out" in err
    code, _, err = run("offline-install", str(stick / "missing.json"))
    assert code == cli.EXIT_USAGE and "Cannot read" in err
    code, _, _ = run("deactivate", "--offline", "--out", str(stick / "p.json"))
    assert code == cli.EXIT_NOT_ACTIVATED
    assert not (stick / "p.json").exists()


def test_a_failed_proof_write_keeps_the_certificate(run, portal, stick):
    request_file = stick / "request.json"
    run("offline-request", "--license-id", LICENSE, "--out", str(request_file))
    response_file = stick / "response.json"
    response_file.write_text(portal.respond_offline(LICENSE, request_file.read_text()))
    assert run("offline-install", str(response_file))[0] == cli.EXIT_OK
    code, _, err = run("deactivate", "--offline", "--out", str(stick / "gone" / "proof.json"))
    assert code == cli.EXIT_STORAGE and "nothing was deleted" in err
    assert run("status", "--offline")[0] == cli.EXIT_OK


def test_an_online_activation_is_not_deactivated_offline(run, portal, stick, tmp_path):
    client = LicenseClient(
        "http://portal.test", product="cadpro", data_dir=tmp_path / "data", transport=portal
    )
    client.activate(LICENSE, "pw")
    code, _, err = run("deactivate", "--offline", "--out", str(stick / "proof.json"))
    assert code == cli.EXIT_USAGE and "activated online" in err
    assert not (stick / "proof.json").exists()


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare(1)")
def test_the_commands_run_without_any_network(tmp_path, portal, stick, jwks_file):
    probe = subprocess.run(["unshare", "-rn", "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip("user namespaces are not available here")
    env = {
        "LICENSE_CLIENT_DATA_DIR": str(tmp_path / "data"),
        "LICENSE_CLIENT_INSTALLATION_ID": "ws-07-installation",
        "PATH": "/usr/bin:/bin",
    }
    base = ["unshare", "-rn", sys.executable, "-m", "license_client", "--product", "cadpro",
            "--jwks", str(jwks_file)]  # fmt: skip

    def command(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*base, *args], capture_output=True, text=True, env=env, timeout=60, check=False
        )

    request_file = stick / "request.json"
    done = command("offline-request", "--license-id", LICENSE, "--out", str(request_file))
    assert done.returncode == 0, done.stderr
    response_file = stick / "response.json"
    response_file.write_text(portal.respond_offline(LICENSE, request_file.read_text()))
    done = command("offline-install", str(response_file), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["features"] == ["dynamics", "steel"]
    proof_file = stick / "proof.json"
    done = command("deactivate", "--offline", "--out", str(proof_file))
    assert done.returncode == 0, done.stderr
    assert json.loads(proof_file.read_text())["type"] == "deactivation_proof"


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (errors.InvalidResponseFile(), cli.EXIT_FILE_REFUSED),
        (errors.ResponseMismatch(), cli.EXIT_FILE_REFUSED),
        (errors.UntrustedResponse(), cli.EXIT_FILE_REFUSED),
        (errors.InvalidCertificate(), cli.EXIT_REFUSED),  # online activation: as before
        (errors.NotOfflineActivation(), cli.EXIT_USAGE),
        (errors.LicenseError(code="no_signing_keys"), cli.EXIT_USAGE),
        (errors.StorageError(code="cannot_write_file"), cli.EXIT_STORAGE),
        (errors.NotActivated(), cli.EXIT_NOT_ACTIVATED),
    ],
)
def test_exit_codes_of_the_offline_errors(error, code):
    assert cli.exit_code(error) == code
