"""Finding 7: the bus trusts no one by default.

The suite runs with one RabbitMQ user per process kind (`portalctl bus grant`); here the
gateway's own credentials, as an attacker who took the internet-facing process would hold
them, try what the review reproduced with the shared credential:

- publish a forged `payment_succeeded` (free licenses): the broker refuses it;
- call a staff method (`licensing.suspend_license`, `issue_license`): the broker refuses it;
- read any company's activation password through a staff path of a customer method
  (`licensing.get_license(id, None)`): the service answers `forbidden`, whatever the caller
  writes in its headers, while staff still get it; claiming staff's name as `user_id` is
  refused by the broker;

services themselves call only the methods they use: billing cannot issue or extend a
license, and only notify (and staff) get a set-password link from auth (`password_link`,
which opens the account): licensing's and the gateway's users are refused by the broker, an
administrator's by auth itself. Card data travels in transient messages only.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import eventlet
import pytest
from amqp.exceptions import AccessRefused, PreconditionFailed
from kombu import Connection, Consumer, Exchange, Queue, binding
from nameko.amqp.publish import Publisher

from common.bus import user_of
from common.errors import PortalError
from common.events import new_event
from common.rpc import CALLER_KEY, standalone_client
from tests.support.bus import watch_events

pytestmark = pytest.mark.e2e

PASSWORD = "Harbour-Lantern-58"
CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2031, "cvc": "123"}
RPC_EXCHANGE = Exchange("nameko-rpc", type="topic", durable=True, no_declare=True)


@pytest.fixture(scope="module")
def license(suite) -> dict:
    """A company's license, issued by staff."""
    email = f"bus.{uuid.uuid4().hex[:10]}@example.test"
    company = suite.portalctl(
        "company", "create", "--name", "Acme", "--contact-name", "Ada",
        "--email", email, "--password", PASSWORD,
    )  # fmt: skip
    product = f"bus{uuid.uuid4().hex[:8]}"
    suite.portalctl("product", "create", "--code", product, "--name", "CAD Pro")
    return suite.portalctl(
        "license", "issue", "--customer", company["customer_id"], "--product", product,
        "--seats", "2",
    )  # fmt: skip


def publish(uri: str, exchange: str, routing_key: str, payload: dict, **properties) -> None:
    """One message with publisher confirms, so a refusal raises here."""
    Publisher(uri, exchange=exchange, use_confirms=True, retry=False).publish(
        payload, routing_key=routing_key, **properties
    )


class RpcTap:
    """Copies of the requests with one routing key, and of every reply, on the vhost."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.seen: list = []

    def keep(self, body, message) -> None:
        self.seen.append(message)
        message.ack()

    def wait_for_call(self, routing_key: str, timeout: float = 20.0) -> tuple:
        """The first request with `routing_key` and the reply with its correlation ID."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            requests = [m for m in self.seen if m.delivery_info["routing_key"] == routing_key]
            if requests:
                correlation_id = requests[0].properties["correlation_id"]
                replies = [
                    m
                    for m in self.seen
                    if m is not requests[0] and m.properties["correlation_id"] == correlation_id
                ]
                if replies:
                    return requests[0], replies[0]
            with contextlib.suppress(TimeoutError):
                self.connection.drain_events(timeout=0.5)
        raise AssertionError(f"no {routing_key} call and reply: {self.seen}")


@contextmanager
def tap_rpc(admin_uri: str, routing_key: str) -> Iterator[RpcTap]:
    # replies are routed by the UUID of their reply queue: one word, which "*" matches
    queue = Queue(
        f"test-rpc-tap-{uuid.uuid4().hex}",
        bindings=[
            binding(RPC_EXCHANGE, routing_key=routing_key),
            binding(RPC_EXCHANGE, routing_key="*"),
        ],
        exclusive=True,
        auto_delete=True,
    )
    with Connection(admin_uri) as connection:
        tap = RpcTap(connection)
        with Consumer(connection, queues=[queue], callbacks=[tap.keep]):
            yield tap


def forged_payment(license: dict) -> dict:
    return new_event(
        {
            "receipt_number": "R-FORGED",
            "customer_id": license["customer_id"],
            "license_id": license["license_id"],
            "amount": 0,
            "currency": "EUR",
        }
    )


def test_only_billing_publishes_billing_events(suite, license):
    with pytest.raises(AccessRefused, match="billing.events"):
        publish(
            suite.uris["gateway"], "billing.events", "payment_succeeded", forged_payment(license)
        )
    # billing itself does (an event type nobody consumes, to change nothing)
    probe = new_event({"probe": "bus-permissions"})
    with watch_events(suite.env["AMQP_URI"], "billing") as events:
        publish(suite.uris["billing"], "billing.events", "bus_permission_probe", probe)
        [received] = events.wait_for("bus_permission_probe")
    assert received == probe


@pytest.mark.parametrize("method", ["suspend_license", "issue_license", "extend_license"])
def test_the_gateway_cannot_call_staff_methods(suite, license, method):
    with (
        standalone_client(uri=suite.uris["gateway"]) as rpc,
        pytest.raises(AccessRefused, match=f"licensing.{method}"),
    ):
        rpc.call("licensing", method, license["license_id"])
    # staff may
    assert suite.portalctl("license", "show", license["license_id"])["status"] == "active"


@pytest.mark.parametrize("method", ["issue_license", "extend_license", "suspend_license"])
def test_billing_cannot_hand_out_licenses(suite, license, method):
    with (
        standalone_client(uri=suite.uris["billing"]) as rpc,
        pytest.raises(AccessRefused, match=f"licensing.{method}"),
    ):
        rpc.call("licensing", method, license["license_id"])


def test_only_the_gateway_gets_the_certificate_signing_key(suite):
    """The gateway signs the validations it answers itself with licensing's key
    (docs/architecture.md): the broker keeps every other kind from asking, and licensing
    refuses staff and the administrator's own user too."""
    for kind in ("billing", "notify", "auth"):
        with (
            standalone_client(uri=suite.uris[kind]) as rpc,
            pytest.raises(AccessRefused, match="licensing.validation_keys"),
        ):
            rpc.call("licensing", "validation_keys")
    for uri in (suite.uris["staff"], suite.env["AMQP_URI"]):
        with standalone_client(uri=uri) as rpc, pytest.raises(PortalError) as refused:
            rpc.call("licensing", "validation_keys")
        assert refused.value.code == "forbidden"
    with standalone_client(uri=suite.uris["gateway"]) as rpc:
        keys = rpc.call("licensing", "validation_keys")
    assert keys["kid"] == keys["jwks"]["keys"][0]["kid"]


def test_the_gateway_reads_licensing_events_and_publishes_none(suite, license):
    with pytest.raises(AccessRefused, match="licensing.events"):
        publish(suite.uris["gateway"], "licensing.events", "license_suspended", license)


def test_only_notify_and_staff_get_a_password_link(suite):
    """A set-password link is the account: only the process that emails it may ask for it."""
    email = f"link.{uuid.uuid4().hex[:10]}@example.test"
    with watch_events(suite.env["AMQP_URI"], "auth") as events:
        company = suite.portalctl(
            "company", "create", "--name", "Acme", "--contact-name", "Ada", "--email", email
        )

        def ours(watched) -> list[dict]:
            return [
                event
                for event in watched.of("company_created")
                if event["company"]["customer_id"] == company["customer_id"]
            ]

        events.wait_until(ours)
        [created] = ours(events)
    request_id = created["request_id"]

    for kind in ("licensing", "gateway"):
        with (
            standalone_client(uri=suite.uris[kind]) as rpc,
            pytest.raises(AccessRefused, match="auth.password_link"),
        ):
            rpc.call("auth", "password_link", request_id)
    # the administrator's own user passes the broker, but not auth: not notify, not staff
    with standalone_client(uri=suite.env["AMQP_URI"]) as rpc, pytest.raises(PortalError) as refused:
        rpc.call("auth", "password_link", request_id)
    assert refused.value.code == "forbidden"

    with standalone_client(uri=suite.uris["notify"]) as rpc:
        link = rpc.call("auth", "password_link", request_id)
    assert "#token=" in link["url"]


def test_staff_paths_of_customer_methods_refuse_the_gateway(suite, license):
    license_id, customer_id = license["license_id"], license["customer_id"]
    with standalone_client(uri=suite.uris["gateway"]) as rpc:
        own = rpc.call("licensing", "get_license", license_id, customer_id)
        assert own["activation_password"] == license["activation_password"]
        calls = [
            ("licensing", "get_license", license_id, None),
            ("licensing", "list_installations", license_id, None),
            ("licensing", "history", license_id, None),
            ("licensing", "deactivate_installation", None, license_id, "machine-1", "portal"),
            ("licensing", "rotate_activation_password", license_id, None),
            ("billing", "get_receipt", "R-0000001", None),
            ("billing", "cancel_recurring_payment", "rp_unknown", None),
        ]
        for service, method, *args in calls:
            with pytest.raises(PortalError) as refused:
                rpc.call(service, method, *args)
            assert refused.value.code == "forbidden", (method, refused.value.to_dict())

    # a header naming staff changes nothing: only the broker-checked user_id counts
    staff = {CALLER_KEY: user_of(suite.uris["staff"])}
    with (
        standalone_client(uri=suite.uris["gateway"], context_data=staff) as rpc,
        pytest.raises(PortalError) as refused,
    ):
        rpc.call("licensing", "get_license", license_id, None)
    assert refused.value.code == "forbidden"

    with standalone_client(uri=suite.uris["staff"]) as rpc:
        seen = rpc.call("licensing", "get_license", license_id, None)
        assert seen["activation_password"] == license["activation_password"]
        with pytest.raises(PortalError) as missing:
            rpc.call("billing", "get_receipt", "R-0000001", None)
        assert missing.value.code == "payment_not_found"

    # nor can the gateway sign a request with staff's name: the broker checks user_id
    request = {"args": [license_id, None], "kwargs": {}}
    with pytest.raises(PreconditionFailed, match="user_id"):
        publish(
            suite.uris["gateway"],
            "nameko-rpc",
            "licensing.get_license",
            request,
            user_id=user_of(suite.uris["staff"]),
        )


def test_card_data_travels_in_transient_messages(suite, api):
    """The purchase request the gateway sends, and billing's answer, never reach a disk."""
    product = f"bus{uuid.uuid4().hex[:8]}"
    suite.portalctl("product", "create", "--code", product, "--name", "CAD Pro")
    plan = suite.portalctl(
        "plan", "create", "--code", f"{product}-m", "--product", product,
        "--amount", "4900", "--currency", "EUR", "--interval", "month",
    )["code"]  # fmt: skip
    email = f"card.{uuid.uuid4().hex[:10]}@example.test"
    suite.portalctl(
        "company", "create", "--name", "Acme", "--contact-name", "Ada",
        "--email", email, "--password", PASSWORD,
    )  # fmt: skip
    token = api.login(email, PASSWORD)

    body = {"plan": plan, "seats": 1, "card": CARD}
    with tap_rpc(suite.env["AMQP_URI"], "billing.purchase") as tap:
        buying = eventlet.spawn(api.post, "/api/v1/purchases", json=body, token=token)
        request, reply = tap.wait_for_call("billing.purchase")
        response = buying.wait()
    assert response.status_code == 201, response.text
    assert CARD["number"] in str(request.body)  # the card itself is in this message
    assert request.properties["delivery_mode"] == 1
    assert request.properties["user_id"] == user_of(suite.uris["gateway"])
    assert reply.properties["delivery_mode"] == 1
    assert reply.properties["user_id"] == user_of(suite.uris["billing"])
