"""`python -m common.healthcheck`, the compose healthchecks, against the real RabbitMQ."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from nameko import config as nameko_config
from nameko.rpc import rpc

from common.errors import PortalError
from common.healthcheck import check, gateway_url

TEST_TIMEOUT = 60
pytestmark = [pytest.mark.integration, pytest.mark.timeout(TEST_TIMEOUT)]

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__))))


def service_class(name: str, status: str = "ok") -> type:
    class Pinged:
        @rpc
        def ping(self) -> dict[str, str]:
            if status == "raise":
                raise RuntimeError("database down")
            return {"service": name, "status": status}

    Pinged.name = name
    return Pinged


@pytest.fixture
def bus(vhost_uri):
    with nameko_config.patch({"AMQP_URI": vhost_uri}):
        yield vhost_uri


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def test_a_service_that_answers_is_healthy_through_the_command(bus, container_factory) -> None:
    name = unique("hc_up")
    container_factory(service_class(name)).start()
    done = subprocess.run(
        [sys.executable, "-m", "common.healthcheck", name],
        cwd=ROOT,
        env={**os.environ, "AMQP_URI": bus},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{name}: ok"


def test_a_service_that_never_started_is_unhealthy_at_once(bus) -> None:
    # waiting for this timeout would outlive the test: the broker's "unroutable" must answer
    with pytest.raises(PortalError, match="is not available"):
        check(unique("hc_never"), timeout=TEST_TIMEOUT * 10)


def test_a_stopped_service_is_unhealthy_within_the_timeout(bus, container_factory) -> None:
    name = unique("hc_gone")
    container = container_factory(service_class(name))
    container.start()
    container.kill()  # its queue is left behind, with nobody consuming it
    # the check gives up after its timeout (a hang would be stopped by the test's timeout)
    with pytest.raises(PortalError, match="did not answer in time"):
        check(name, timeout=1)


@pytest.mark.parametrize("status", ["raise", "starting"])
def test_a_failing_ping_is_unhealthy(bus, container_factory, status: str) -> None:
    name = unique("hc_bad")
    container_factory(service_class(name, status)).start()
    with pytest.raises(Exception):
        check(name, timeout=3)


def test_the_command_exits_1_and_says_why_when_the_bus_is_unreachable() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "common.healthcheck", "auth"],
        cwd=ROOT,
        env={**os.environ, "AMQP_URI": "amqp://guest:guest@127.0.0.1:9/"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 1
    assert "auth:" in done.stderr and "message bus" in done.stderr


class Healthz(BaseHTTPRequestHandler):
    body = {"status": "ok"}

    def do_GET(self) -> None:
        payload = json.dumps(self.body if self.path == "/healthz" else {}).encode()
        self.send_response(200 if self.path == "/healthz" else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args) -> None:
        pass


def test_the_gateway_check_gets_healthz_at_the_port_of_gateway_address() -> None:
    server = HTTPServer(("127.0.0.1", 0), Healthz)
    port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with nameko_config.patch({"GATEWAY_ADDRESS": f"0.0.0.0:{port}"}):
            assert check("gateway", timeout=3) == f"gateway: http://127.0.0.1:{port}/healthz ok"
    finally:
        server.shutdown()
        server.server_close()
    with nameko_config.patch({"GATEWAY_ADDRESS": f"0.0.0.0:{port}"}), pytest.raises(OSError):
        check("gateway", timeout=3)


def test_gateway_url_reaches_wildcard_and_specific_addresses() -> None:
    assert gateway_url(None) == "http://127.0.0.1:8000/healthz"
    assert gateway_url("0.0.0.0:8000") == "http://127.0.0.1:8000/healthz"
    assert gateway_url("10.0.0.5:9000") == "http://10.0.0.5:9000/healthz"
    assert gateway_url("[::]:8080") == "http://127.0.0.1:8080/healthz"
    assert gateway_url("[::1]:8080") == "http://[::1]:8080/healthz"
