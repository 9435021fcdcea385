"""portalctl's feature and offline-activation commands: what they send, what they print
(the response file on stdout or in `--out`, the instructions on stderr) and how they fail."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from common.errors import PortalError
from portalctl import cli
from tests.unit.portalctl.test_cli import FakeBus, run

LICENSE = "L-7KQX-M2PD"
REQUEST = json.dumps(
    {
        "type": "activation_request",
        "version": 1,
        "license_id": LICENSE,
        "installation_id": "ws07-3f1c",
        "machine_name": "CAD-WS-07",
        "product": "cadpro",
        "requested_at": "2026-12-02T10:00:00+00:00",
        "nonce": "n" * 22,
    }
)
RESPONSE = '{"type": "activation_response", "version": 1}'
STEEL = {"code": "steel", "name": "Steel design"}


@pytest.fixture
def bus(monkeypatch: pytest.MonkeyPatch) -> FakeBus:
    fake = FakeBus()
    monkeypatch.setattr(cli, "standalone_client", fake.standalone_client)
    return fake


def license_view(*features: dict[str, str]) -> dict[str, Any]:
    return {
        "license_id": LICENSE,
        "product": {"code": "cadpro", "name": "CAD Pro"},
        "activation_password": "never-printed-here",
        "features": list(features),
    }


def activated(created: bool = True) -> dict[str, Any]:
    return {
        "activation": {"installation_id": "ws07-3f1c", "machine_name": "CAD-WS-07"},
        "certificate": "eyJ.x.y",
        "response": RESPONSE,
        "created": created,
    }


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            [
                "product",
                "feature",
                "add",
                "--product",
                "CADPRO",
                "--code",
                " Steel ",
                "--name",
                "S",
            ],
            ("licensing.add_product_feature", ("cadpro", {"code": "steel", "name": "S"}), {}),
        ),
        (
            ["license", "issue", "--customer", "c1", "--product", "cadpro", "--seats", "2"]
            + ["--features", "Steel, dyn,steel"],
            (
                "licensing.issue_license",
                (
                    {
                        "customer_id": "C1",
                        "product": "cadpro",
                        "seats": 2,
                        "expires_at": None,
                        "features": ["steel", "dyn"],
                    },
                ),
                {},
            ),
        ),
        (
            ["plan", "create", "--code", "p", "--product", "cadpro", "--amount", "49.00"]
            + ["--currency", "EUR", "--interval", "month", "--features", "steel"],
            (
                "billing.create_plan",
                (
                    {
                        "code": "p",
                        "product_code": "cadpro",
                        "amount": 4900,
                        "currency": "EUR",
                        "interval": "month",
                        "features": ["steel"],
                    },
                ),
                {},
            ),
        ),
        (
            ["license", "features", "l-7kqx-m2pd", "--add", "steel", "--remove", "DYN"],
            (
                "licensing.change_license_features",
                (LICENSE, {"add": ["steel"], "remove": ["dyn"]}),
                {},
            ),
        ),
        (
            ["license", "features", LICENSE],
            ("licensing.get_license", (LICENSE,), {"reveal_password": False}),
        ),
    ],
)
def test_each_command_sends_the_contracts_call(bus, capsys, argv, expected) -> None:
    bus.answers["licensing.issue_license"] = license_view()
    code, _, err = run(capsys, *argv, "--json")
    assert code == 0, err
    method, args, kwargs = expected
    call = bus.calls[0]
    assert (call["method"], call["args"], call["kwargs"]) == (method, args, kwargs)


def test_without_features_the_payloads_stay_as_before(bus, capsys) -> None:
    bus.answers["licensing.issue_license"] = license_view()
    run(capsys, "license", "issue", "--customer", "C1", "--product", "cadpro", "--seats", "1")
    assert "features" not in bus.calls[0]["args"][0]
    argv = ["--currency", "EUR", "--interval", "year"]
    run(capsys, "plan", "create", "--code", "p", "--product", "x", "--amount", "1.00", *argv)
    assert bus.calls[-1]["method"] == "billing.create_plan"
    assert "features" not in bus.calls[-1]["args"][0]


@pytest.mark.parametrize("value", ["", " , ", ","])
def test_an_empty_feature_list_is_a_usage_error(bus, capsys, value) -> None:
    code, _, err = run(capsys, "license", "features", LICENSE, "--add", value)
    assert code == 2 and "give feature codes" in err and bus.calls == []


def test_license_features_prints_a_table_or_one_json_document(bus, capsys) -> None:
    bus.answers["licensing.get_license"] = license_view(STEEL)
    code, out, _ = run(capsys, "license", "features", LICENSE)
    assert code == 0
    assert out.splitlines() == ["Code   Name", "steel  Steel design"]
    code, out, _ = run(capsys, "license", "features", LICENSE, "--json")
    shown = json.loads(out)
    assert shown == {
        "license_id": LICENSE,
        "product": {"code": "cadpro", "name": "CAD Pro"},
        "features": [STEEL],
    }
    assert "never-printed-here" not in out


def test_activate_offline_writes_the_response_to_stdout_and_says_what_next(
    bus, capsys, tmp_path: Path
) -> None:
    request = tmp_path / "request.json"
    request.write_text(REQUEST, encoding="utf-8")
    bus.answers["licensing.activate_offline"] = activated()
    code, out, err = run(capsys, "license", "activate-offline", LICENSE, "--request", str(request))
    assert code == 0, err
    assert out == RESPONSE + "\n"  # exactly the file: `> response.json` keeps it whole
    assert bus.calls[0]["method"] == "licensing.activate_offline"
    assert bus.calls[0]["args"] == (None, LICENSE, REQUEST)
    assert "CAD-WS-07 (a new seat)" in err and "standard output" in err
    assert "license-client offline-install" in err
    assert len(err.strip().splitlines()) == 1


def test_activate_offline_writes_out_and_json_names_the_file(bus, capsys, tmp_path: Path) -> None:
    request = tmp_path / "request.json"
    request.write_text(REQUEST, encoding="utf-8")
    out_file = tmp_path / "usb" / "response.json"
    out_file.parent.mkdir()
    bus.answers["licensing.activate_offline"] = activated(created=False)
    argv = ["license", "activate-offline", LICENSE, "--request", str(request)]
    code, out, err = run(capsys, *argv, "--out", str(out_file), "--json")
    assert code == 0, err
    assert out_file.read_text(encoding="utf-8") == RESPONSE
    assert [p.name for p in out_file.parent.iterdir()] == ["response.json"]  # no temp left
    shown = json.loads(out)
    assert shown["out"] == str(out_file) and shown["created"] is False
    assert "response" not in shown
    assert str(out_file) in err and "no new seat" in err
    # with --json and no --out the one JSON document carries the response text
    code, out, _ = run(capsys, *argv, "--json")
    assert json.loads(out)["response"] == RESPONSE


def test_activate_offline_refuses_what_it_cannot_read(bus, capsys, tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    code, _, err = run(capsys, "license", "activate-offline", LICENSE, "--request", str(missing))
    assert code == 1 and err.startswith("portalctl: usage_error: --request: cannot read")
    binary = tmp_path / "photo.jpg"
    binary.write_bytes(b"\xff\xd8\xff\xe0")
    code, _, err = run(capsys, "license", "activate-offline", LICENSE, "--request", str(binary))
    assert code == 1 and "is not a text file" in err
    request = tmp_path / "request.json"
    request.write_text(REQUEST, encoding="utf-8")
    argv = ["license", "activate-offline", LICENSE, "--request", str(request)]
    code, _, err = run(capsys, *argv, "--out", str(request))
    assert code == 1 and "overwrite the request file" in err
    assert bus.calls == [] and request.read_text(encoding="utf-8") == REQUEST


def test_a_failed_activation_writes_no_file(bus, capsys, tmp_path: Path) -> None:
    request = tmp_path / "request.json"
    request.write_text(REQUEST, encoding="utf-8")
    bus.answers["licensing.activate_offline"] = PortalError(
        "The request file is not valid.",
        details={"problem": "nonce is too short", "field": "nonce"},
        code="invalid_request",
    )
    out_file = tmp_path / "response.json"
    argv = ["license", "activate-offline", LICENSE, "--request", str(request)]
    code, out, err = run(capsys, *argv, "--out", str(out_file))
    assert code == 1 and out == "" and not out_file.exists()
    [line] = err.strip().splitlines()
    assert line.startswith("portalctl: invalid_request: The request file is not valid.")
    assert "(nonce: nonce is too short)" in line and "license-client offline-request" in line


@pytest.mark.parametrize(
    ("argv", "code", "fix"),
    [
        (["license", "features", LICENSE, "--add", "wind"], "unknown_feature", "feature add"),
        (
            ["product", "feature", "add", "--product", "c", "--code", "s", "--name", "S"],
            "feature_exists",
            "product show",
        ),
        (
            ["license", "activate-offline", LICENSE, "--request", "REQUEST"],
            "no_seats_available",
            "license deactivate",
        ),
    ],
)
def test_feature_and_seat_errors_are_one_line_with_a_fix(
    bus, capsys, tmp_path: Path, argv, code, fix
) -> None:
    request = tmp_path / "request.json"
    request.write_text(REQUEST, encoding="utf-8")
    bus.default = PortalError("It failed.", code=code)
    status, _, err = run(capsys, *[str(request) if arg == "REQUEST" else arg for arg in argv])
    [line] = err.strip().splitlines()
    assert status == 1 and line.startswith(f"portalctl: {code}: It failed.") and fix in line
