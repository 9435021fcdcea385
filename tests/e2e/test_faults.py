"""Faults under load, as ops see them: the real suite over HTTP while its database backends
are terminated, its bus connections closed, or a service instance is rolled with SIGTERM.

Every answer is a success or a 503 `service_unavailable` (never a 500); whatever was
answered as done is there afterwards; the suite answers again within seconds.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from urllib.parse import urlparse

import eventlet
import pytest
from eventlet.greenpool import GreenPool

from tests.support.blips import (
    BackendTerminations,
    ConnectionBlips,
    queue_consumers,
    vhost_of,
    wait_until,
)
from tests.support.suite import client_at

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

PASSWORD = "Quarry-Lighthouse-31"


@pytest.fixture(scope="module")
def product(suite) -> str:
    code = f"flt-{uuid.uuid4().hex[:8]}"
    suite.portalctl("product", "create", "--code", code, "--name", "Fault CAD")
    return code


# seats to spare: on a fast machine the load activates hundreds of installations, and a
# license out of seats (409) would hide the faults these tests are about
def new_license(suite, product: str, seats: int = 100_000) -> tuple[dict, dict]:
    company = suite.portalctl(
        "company",
        "create",
        "--name",
        "Faulty",
        "--contact-name",
        "Ada",
        "--email",
        f"flt.{uuid.uuid4().hex[:10]}@example.test",
        "--password",
        PASSWORD,
    )
    license = suite.portalctl(
        "license",
        "issue",
        "--customer",
        company["customer_id"],
        "--product",
        product,
        "--seats",
        str(seats),
        "--expires",
        "2099-12-31",
    )
    return company, license


class Load:
    """Activations (and logins) from `clients` green threads until stopped; the status of
    every answer, and the installations answered as activated."""

    def __init__(self, suite, company: dict, license: dict, clients: int = 6) -> None:
        self.suite = suite
        self.company = company
        self.license = license
        self.api = client_at(suite.url)
        self.statuses: Counter[int] = Counter()
        self.errors: list[str] = []
        self.activated: set[str] = set()
        self.unanswered: set[str] = set()
        self._stopping = False
        self._pool = GreenPool(clients)
        self._clients = clients

    def _activate(self, installation_id: str) -> None:
        body = {
            "license_id": self.license["license_id"],
            "password": self.license["activation_password"],
            "installation_id": installation_id,
            "machine_name": installation_id,
        }
        try:
            response = self.api.post("/api/v1/activations", json=body, timeout=20)
        except Exception as exc:  # a transport error is not an answer: the test reports it
            self.errors.append(repr(exc))
            self.unanswered.add(installation_id)
            return
        self.statuses[response.status_code] += 1
        if response.status_code in (200, 201):
            self.activated.add(installation_id)
        else:
            self.unanswered.add(installation_id)
            if response.status_code != 503:
                self.errors.append(f"{response.status_code} {response.text[:300]}")
            else:
                assert response.json()["error"]["code"] == "service_unavailable"

    def _login(self) -> None:
        response = self.api.post(
            "/api/v1/sessions",
            json={"login": self.company["customer_id"], "password": PASSWORD},
            timeout=20,
        )
        self.statuses[response.status_code] += 1
        if response.status_code not in (201, 503):
            self.errors.append(f"login {response.status_code} {response.text[:300]}")

    def _client(self, number: int) -> None:
        count = 0
        while not self._stopping:
            count += 1
            self._activate(f"c{number}-{count}")
            if count % 5 == 0:
                self._login()

    def __enter__(self) -> Load:
        for number in range(self._clients):
            self._pool.spawn_n(self._client, number)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stopping = True
        self._pool.waitall()

    def installations(self) -> set[str]:
        token = self.api.login(self.company["customer_id"], PASSWORD)
        response = self.api.get(
            f"/api/v1/licenses/{self.license['license_id']}/installations", token=token
        )
        assert response.status_code == 200, response.text
        return {i["installation_id"] for i in response.json()["installations"]}


def database_name(url: str) -> str:
    return urlparse(url).path.lstrip("/")


def answers_again(suite, load: Load, timeout: float = 10.0) -> float:
    """Seconds until an activation succeeds again (a retry of one that was unavailable)."""
    started = time.monotonic()
    probe = f"probe-{uuid.uuid4().hex[:6]}"

    def activated() -> bool:
        load._activate(probe)
        return probe in load.activated

    wait_until(activated, timeout, "an activation answered after the faults")
    return time.monotonic() - started


def assert_nothing_acknowledged_lost(load: Load) -> None:
    assert not load.errors, load.errors[:5]
    assert load.activated, f"no activation answered under load: {load.statuses}"
    found = load.installations()
    assert load.activated <= found, sorted(load.activated - found)[:10]


def test_database_backends_terminated_under_load_answer_503_never_500(suite, product) -> None:
    company, license = new_license(suite, product)
    databases = [
        database_name(suite.env[f"{s.upper()}_DATABASE_URL"]) for s in ("auth", "licensing")
    ]
    with Load(suite, company, license) as load:
        eventlet.sleep(1.0)
        with BackendTerminations(*databases) as kills:
            kills.wait_rounds(8, timeout=30)
    assert kills.hits >= 3 and kills.closed >= 3, (kills.rounds, kills.closed, kills.errors)
    assert 500 not in load.statuses, load.statuses
    assert answers_again(suite, load) < 10
    assert_nothing_acknowledged_lost(load)


def test_bus_connections_closed_under_load_answer_503_never_500(suite, product) -> None:
    company, license = new_license(suite, product)
    with Load(suite, company, license) as load:
        eventlet.sleep(1.0)
        with ConnectionBlips(vhost_of(suite.env["AMQP_URI"]), every=(1.0, 2.0)) as blips:
            blips.wait_rounds(4, timeout=40)
    assert blips.hits >= 2, (blips.rounds, blips.errors)
    assert 500 not in load.statuses, load.statuses
    suite.wait_ready(timeout=30)
    assert answers_again(suite, load, timeout=20) < 20
    assert_nothing_acknowledged_lost(load)


def test_a_licensing_instance_rolled_with_sigterm_under_load_drains_and_exits_0(
    suite, product
) -> None:
    company, license = new_license(suite, product)
    amqp = suite.env["AMQP_URI"]
    suite.start("licensing")  # the instance that stays
    wait_until(lambda: queue_consumers(amqp, "rpc-licensing") >= 2, 60, "two licensing consumers")
    old_log = suite.log("licensing", 0)
    with Load(suite, company, license, clients=8) as load:
        eventlet.sleep(2.0)
        before = sum(load.statuses.values())
        code = suite.terminate("licensing", 0)
        eventlet.sleep(2.0)
    assert code == 0
    assert sum(load.statuses.values()) > before  # requests went on during and after
    # the other instance took over without a single failed answer
    assert set(load.statuses) <= {200, 201}, load.statuses
    assert_nothing_acknowledged_lost(load)
    # the management API's consumer count lags the broker by a stats interval
    wait_until(lambda: queue_consumers(amqp, "rpc-licensing") == 1, 30, "one licensing consumer")
    stopping = (suite.log_dir / "licensing-0.log").read_text(errors="replace")[len(old_log) :]
    assert "Traceback" not in stopping, stopping[-3000:]
