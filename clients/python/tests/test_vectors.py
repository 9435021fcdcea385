"""The shared test vectors (clients/vectors/vectors.json), which the C library's tests read
too: the Python kit, the reference, gives every verdict they expect, and the file is exactly
what make_vectors.py writes."""

from __future__ import annotations

import importlib.util
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from license_client import LicenseClient
from license_client import client as client_module
from license_client.installation import derive
from license_client.testing import FakePortal
from license_client.times import parse_time
from license_client.transport import Response, Transport

FOLDER = Path(__file__).resolve().parents[2] / "vectors"
VECTORS = json.loads((FOLDER / "vectors.json").read_text(encoding="utf-8"))
DEAD_SERVER = "http://127.0.0.1:9"  # what "server": "unreachable" means: nobody answers
CERTIFICATES = {vector["name"]: vector for vector in VECTORS["certificates"]}


class Answering(Transport):
    """A server that answers every validation with one signed answer."""

    def __init__(self, signed_answer: str) -> None:
        self.signed_answer = signed_answer

    def send(self, method, url, body, headers, timeout) -> Response:
        assert url.endswith("/api/v1/validations"), url
        document = {"signed_answer": self.signed_answer}
        return Response(200, {"content-type": "application/json"}, json.dumps(document).encode())


def _store(folder: Path, vector: dict[str, Any]) -> None:
    """The data folder as the kit leaves it, with the vector's certificate and state."""
    folder.mkdir(parents=True)
    if vector["stored_in"] == "lease.json":
        document = {
            "version": 1,
            "server": DEAD_SERVER,
            "license_id": "L-7KQX-M2PD",
            "lease": {"certificate": vector["certificate"], "lease_id": "LS-4HXN-82QW"},
        }
    else:
        document = {
            "version": 1,
            "server": DEAD_SERVER,
            "license_id": "L-7KQX-M2PD",
            "installation_id": vector["installation_id"],
            "machine_name": "CAD-WS-07",
            "certificate": vector["certificate"],
            "activated_at": vector["now"],
            "source": "offline" if vector["activated_offline"] else "online",
        }
    (folder / vector["stored_in"]).write_text(json.dumps(document))
    state = {"last_seen": vector["last_seen"], "last_online_ok": vector["last_online_ok"]}
    (folder / "state.json").write_text(json.dumps(state))


def _client(folder: Path, vector: dict[str, Any], **kwargs: Any) -> LicenseClient:
    defaults = VECTORS["defaults"]
    now = parse_time(vector["now"])
    options: dict[str, Any] = {
        "product": vector.get("product"),
        "data_dir": folder,
        "jwks": VECTORS["jwks"],
        "installation_id": vector.get("installation_id"),
        "grace_period": timedelta(seconds=defaults["grace_period_seconds"]),
        "clock_tolerance": timedelta(seconds=defaults["clock_tolerance_seconds"]),
        "clock": lambda: now,
        "retries": 0,
        "sleep": lambda seconds: None,
        **kwargs,
    }
    return LicenseClient(**options)


@pytest.mark.parametrize("vector", VECTORS["certificates"], ids=lambda vector: vector["name"])
def test_the_kit_gives_each_certificate_vector_its_verdict(vector, tmp_path):
    _store(tmp_path / "data", vector)
    if vector["server"] == "unreachable":
        down = FakePortal()
        down.down = True
        result = _client(tmp_path / "data", vector, transport=down).validate(online=True)
    else:
        result = _client(tmp_path / "data", vector).validate(online=False)
    answered = result.to_dict()
    expected = vector["expect"]
    assert {name: answered[name] for name in expected} == expected, result.reason


@pytest.mark.parametrize("vector", VECTORS["answers"], ids=lambda vector: vector["name"])
def test_the_kit_accepts_or_rejects_each_signed_answer(vector, tmp_path, monkeypatch):
    certificate = {**CERTIFICATES[vector["certificate_name"]], "now": vector["now"]}
    _store(tmp_path / "data", certificate)
    monkeypatch.setattr(client_module.secrets, "token_urlsafe", lambda size: vector["nonce"])
    client = _client(tmp_path / "data", certificate, transport=Answering(vector["answer"]))
    result = client.validate(online=True)
    # a rejected answer is as good as none: the kit falls back to the certificate offline
    assert result.online == (vector["expect"] == "accepted"), result.reason
    if "expires_at" in vector:
        assert result.to_dict()["expires_at"] == vector["expires_at"], result.reason


def test_every_vector_has_a_unique_name_and_a_known_expectation():
    names = [vector["name"] for vector in VECTORS["certificates"] + VECTORS["answers"]]
    assert len(names) == len(set(names))
    assert {vector["expect"] for vector in VECTORS["answers"]} == {"accepted", "rejected"}
    assert {vector["server"] for vector in VECTORS["certificates"]} == {"none", "unreachable"}


def test_the_installation_vector_is_what_the_kit_derives():
    installation = VECTORS["installation"]
    assert (
        derive(installation["namespace"], installation["machine_identifier"])
        == installation["installation_id"]
    )


def test_the_committed_vectors_are_what_the_generator_writes():
    spec = importlib.util.spec_from_file_location("make_vectors", FOLDER / "make_vectors.py")
    assert spec is not None and spec.loader is not None
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    assert (FOLDER / "vectors.json").read_text(encoding="utf-8") == generator.build(), (
        "vectors.json is stale: run .venv/bin/python clients/vectors/make_vectors.py"
    )
