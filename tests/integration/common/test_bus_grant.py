"""`portalctl bus grant` on a real broker, and the caller a worker sees.

Grant creates one user per kind on the vhost of its `AMQP_URI`; a re-run changes no password
(they are kept in `VAR_DIR/bus-credentials.json`, 0600), `--rotate` renews them and the old
ones stop working. A service's `@rpc` worker learns who called from the broker-checked
`user_id` (tests/security/test_bus_least_privilege.py shows what each kind may do).
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from amqp.exceptions import AccessRefused
from kombu import Connection

from common import bus
from common.rpc import BusCaller, rpc, standalone_client
from tests.support import infra

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def prefix(config, tmp_path):
    """A user prefix of this test alone; its users are deleted afterwards."""
    value = f"lp-{infra.RUN_ID}-{uuid.uuid4().hex[:6]}-"
    yield value
    bus.revoke(
        config["AMQP_URI"], prefix=value, api_uri=infra.RABBIT_API, store=tmp_path / "unused.json"
    )


def grant_cli(config, prefix: str, var_dir: Path, *more: str, **env: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-m", "portalctl", "bus", "grant", "--prefix", prefix, "--json", *more],
        cwd=ROOT,
        env={
            **os.environ,
            "AMQP_URI": config["AMQP_URI"],
            "RABBIT_API_URI": infra.RABBIT_API,
            "VAR_DIR": str(var_dir),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def connects(uri: str) -> bool:
    try:
        with Connection(uri, connect_timeout=5) as connection:
            connection.ensure_connection(max_retries=1)
    except AccessRefused:
        return False
    return True


def test_grant_creates_a_user_per_kind_keeps_passwords_and_rotates_them(config, prefix, tmp_path):
    first = grant_cli(config, prefix, tmp_path)
    assert sorted(first) == sorted(bus.KINDS)
    for kind, user in first.items():
        assert user["user"] == f"{prefix}{kind}"
        assert user["amqp_uri"] == bus.with_credentials(
            config["AMQP_URI"], user["user"], user["password"]
        )
    assert connects(first["gateway"]["amqp_uri"])
    store = tmp_path / bus.CREDENTIALS_FILE
    assert stat.S_IMODE(store.stat().st_mode) == 0o600

    assert grant_cli(config, prefix, tmp_path) == first  # permissions again, same passwords

    rotated = grant_cli(config, prefix, tmp_path, "--rotate")
    assert all(rotated[kind]["password"] != first[kind]["password"] for kind in bus.KINDS)
    assert connects(rotated["staff"]["amqp_uri"])
    assert not connects(first["staff"]["amqp_uri"])


def test_a_password_given_in_the_environment_is_used_and_not_stored(config, prefix, tmp_path):
    granted = grant_cli(config, prefix, tmp_path, GATEWAY_BUS_PASSWORD="gateway-secret-1")
    assert granted["gateway"]["password"] == "gateway-secret-1"
    assert connects(granted["gateway"]["amqp_uri"])
    stored = json.loads((tmp_path / bus.CREDENTIALS_FILE).read_text())
    assert f"{prefix}gateway" not in stored and f"{prefix}staff" in stored


def test_grant_explains_an_unreachable_management_api(config, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "portalctl", "bus", "grant", "--json"],
        cwd=ROOT,
        env={
            **os.environ,
            "AMQP_URI": config["AMQP_URI"],
            "RABBIT_API_URI": "http://guest:guest@127.0.0.1:9/",
            "VAR_DIR": str(tmp_path),
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1 and result.stdout == ""
    assert "management API" in result.stderr and "Traceback" not in result.stderr


class Probe:
    """Named like a service, so that staff's permissions reach it."""

    name = "notify"

    caller = BusCaller()

    @rpc
    def ping(self) -> dict:
        return {"service": self.name, "status": "ok"}

    @rpc
    def whoami(self) -> dict:
        return {"user": self.caller.user, "kind": self.caller.kind}


def test_a_worker_knows_its_caller_from_the_broker(config, prefix, container_factory, tmp_path):
    store = tmp_path / bus.CREDENTIALS_FILE
    users = bus.grant(config["AMQP_URI"], prefix=prefix, api_uri=infra.RABBIT_API, store=store)
    container = container_factory(Probe)
    container.start()

    with standalone_client(uri=users["staff"]["amqp_uri"]) as client:
        assert client.call("notify", "whoami") == {"user": f"{prefix}staff", "kind": "staff"}
    with standalone_client() as client:  # the administrator this test runs as
        admin = bus.user_of(config["AMQP_URI"])
        assert client.call("notify", "whoami") == {"user": admin, "kind": None}
    with (
        standalone_client(uri=users["gateway"]["amqp_uri"]) as client,
        pytest.raises(AccessRefused, match="notify.whoami"),
    ):
        client.call("notify", "whoami")
    # a service's container checks its health as the service itself: ping, and nothing more
    with standalone_client(uri=users["notify"]["amqp_uri"]) as client:
        assert client.call("notify", "ping") == {"service": "notify", "status": "ok"}
