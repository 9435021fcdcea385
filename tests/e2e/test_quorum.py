"""The suite on quorum queues (`QUEUE_TYPE=quorum`): its durable RPC and event queues are
quorum queues, reply queues stay classic, and a company logs in and activates a machine."""

from __future__ import annotations

import uuid
from urllib.parse import quote, urlparse

import pytest
import requests

from tests.support import infra
from tests.support.blips import vhost_of
from tests.support.suite import provisioned_suite

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

PASSWORD = "Quarry-Lighthouse-31"


def queue_types(vhost: str) -> dict[str, str]:
    """Every queue of `vhost` with its type, from the management API."""
    api = urlparse(infra.RABBIT_API)
    response = requests.get(
        f"{api.scheme}://{api.hostname}:{api.port}/api/queues/{quote(vhost, safe='')}",
        auth=(api.username or "guest", api.password or "guest"),
        timeout=10,
    )
    response.raise_for_status()
    return {queue["name"]: queue.get("type", "classic") for queue in response.json()}


@pytest.fixture(scope="module")
def quorum_suite(smtp_sink, tmp_path_factory):
    env = {
        "QUEUE_TYPE": "quorum",
        "VAR_DIR": str(tmp_path_factory.mktemp("quorum-var")),
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp_sink.port),
        "MAIL_FROM": "portal@license-portal.test",
        "RPC_TIMEOUT": "3",
        "NOTIFY_POLL_SECONDS": "0.3",
        "LOG_LEVEL": "INFO",
    }
    with provisioned_suite("quorum", env, tmp_path_factory.mktemp("quorum-logs")) as suite:
        yield suite


def test_a_login_and_an_activation_on_quorum_queues(quorum_suite) -> None:
    suite = quorum_suite
    types = queue_types(vhost_of(suite.env["AMQP_URI"]))
    for service in ("auth", "licensing", "billing", "notify"):
        assert types[f"rpc-{service}"] == "quorum", types
    events = {name: kind for name, kind in types.items() if name.startswith("evt-")}
    assert events and set(events.values()) == {"quorum"}, events
    replies = {name: kind for name, kind in types.items() if name.startswith("rpc.reply-")}
    assert replies and set(replies.values()) == {"classic"}, replies

    code = f"q-{uuid.uuid4().hex[:8]}"
    suite.portalctl("product", "create", "--code", code, "--name", "Quorum CAD")
    company = suite.portalctl(
        "company",
        "create",
        "--name",
        "Quorum",
        "--contact-name",
        "Ada",
        "--email",
        f"q.{uuid.uuid4().hex[:10]}@example.test",
        "--password",
        PASSWORD,
    )
    license = suite.portalctl(
        "license", "issue", "--customer", company["customer_id"], "--product", code, "--seats", "1"
    )
    token = suite.api.login(company["customer_id"], PASSWORD)
    assert token
    activated = suite.api.post(
        "/api/v1/activations",
        json={
            "license_id": license["license_id"],
            "password": license["activation_password"],
            "installation_id": "ws-1",
            "machine_name": "WS-1",
        },
    )
    assert activated.status_code == 201, activated.text
    checked = suite.api.post(
        "/api/v1/validations", json={"certificate": activated.json()["certificate"]}
    )
    assert checked.json()["code"] == "VALID", checked.text
