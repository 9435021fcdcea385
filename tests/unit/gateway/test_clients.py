"""The client address the gateway hands the services' throttles: the socket peer, and
X-Forwarded-For only as far as TRUSTED_PROXIES vouch for it."""

from __future__ import annotations

import pytest
from nameko import config as nameko_config
from nameko.testing.services import worker_factory
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from gateway import clients
from gateway.service import GatewayService
from tests.unit.gateway.support import FakeAuth

PROXIES = clients.parse_networks("10.0.0.0/8, 192.0.2.1, 2001:db8::/32")


def address(peer: str | None, forwarded: str | None, proxies=PROXIES) -> str | None:
    return clients.peer_and_chain(peer, forwarded, proxies)


def test_without_trusted_proxies_the_header_is_ignored() -> None:
    assert address("203.0.113.4", "198.51.100.7", ()) == "203.0.113.4"
    assert address("10.0.0.5", "198.51.100.7", ()) == "10.0.0.5"


def test_an_untrusted_peer_cannot_choose_its_address() -> None:
    assert address("203.0.113.4", "198.51.100.7") == "203.0.113.4"
    assert address("203.0.113.4", "10.0.0.9, 192.0.2.1") == "203.0.113.4"


def test_a_trusted_proxy_passes_the_address_it_saw() -> None:
    assert address("10.0.0.5", "198.51.100.7") == "198.51.100.7"
    assert address("2001:db8::5", "2001:db8:1::7, 2a00:1450::1") == "2a00:1450::1"


def test_a_chain_is_read_from_the_right_past_trusted_proxies_only() -> None:
    # the client claimed 1.1.1.1; the edge proxy saw 198.51.100.7; then two inner proxies
    chain = "1.1.1.1, 198.51.100.7, 192.0.2.1, 10.9.9.9"
    assert address("10.0.0.5", chain) == "198.51.100.7"
    # every hop trusted: the left-most of them
    assert address("10.0.0.5", "192.0.2.1, 10.1.1.1") == "192.0.2.1"


@pytest.mark.parametrize(
    ("forwarded", "expected"),
    [
        ("", "10.0.0.5"),
        ("not-an-ip", "10.0.0.5"),
        ("198.51.100.7, 10.1.1.1, ", "10.0.0.5"),  # an empty entry on the right
        ("1.1.1.1, garbage, 10.1.1.1", "10.1.1.1"),  # the walk stops at the last hop vouched for
        ("198.51.100.7:5123", "198.51.100.7"),
        ("[2a00:1450::1]:443", "2a00:1450::1"),
        ("unknown", "10.0.0.5"),
        ("x" * 10_000, "10.0.0.5"),
    ],
)
def test_a_malformed_header_never_yields_a_made_up_address(forwarded, expected) -> None:
    assert address("10.0.0.5", forwarded) == expected


def test_addresses_are_normalised() -> None:
    assert address("::ffff:203.0.113.4", None) == "203.0.113.4"
    assert address("fe80::1%eth0", None) == "fe80::1"
    assert address(None, "198.51.100.7") is None
    assert address("", None) is None


def test_a_wrong_trusted_proxies_setting_names_the_entry() -> None:
    with pytest.raises(ValueError, match="nope"):
        clients.parse_networks("10.0.0.0/8, nope")


def request_from(peer: str, **headers: str) -> Request:
    builder = EnvironBuilder(
        method="POST",
        json={"login": "C1000001", "password": "pw"},
        headers=headers,
        environ_base={"REMOTE_ADDR": peer},
    )
    return Request(builder.get_environ())


def test_the_request_helper_reads_the_setting() -> None:
    request = request_from("10.0.0.5", **{"X-Forwarded-For": "198.51.100.7"})
    with nameko_config.patch({"TRUSTED_PROXIES": ""}):
        assert clients.client_address(request) == "10.0.0.5"
    with nameko_config.patch({"TRUSTED_PROXIES": "10.0.0.0/8"}):
        assert clients.client_address(request) == "198.51.100.7"


class RecordingAuth(FakeAuth):
    def __init__(self) -> None:
        super().__init__()
        self.payloads: list[dict] = []

    def login(self, body: dict) -> dict:
        self.payloads.append(body)
        return super().login(body)

    def request_password_reset(self, body: dict) -> None:
        self.payloads.append(body)


def test_login_and_reset_requests_carry_the_client_address() -> None:
    auth = RecordingAuth()
    service = worker_factory(GatewayService, auth=auth)
    login = {"login": "C1000001", "password": "pw"}
    service.create_session(request_from("203.0.113.4"), body=login)
    service.create_web_session(
        request_from("203.0.113.4", **{"Sec-Fetch-Site": "same-origin"}), body=login
    )
    service.request_password_reset(request_from("203.0.113.4"), body={"login": "C1000001"})
    assert [p["client_address"] for p in auth.payloads] == ["203.0.113.4"] * 3
    assert auth.payloads[0] == {**login, "client_address": "203.0.113.4"}


def test_activations_carry_the_client_address() -> None:
    service = worker_factory(GatewayService)
    service.licensing.activate.return_value = {"created": True}
    service.licensing.deactivate.return_value = {"installation_id": "i"}
    body = {"license_id": "L-1", "password": "pw", "installation_id": "i", "machine_name": "m"}
    service.activate(request_from("198.51.100.7"), body=body)
    service.deactivate(request_from("198.51.100.7"), body=body)
    sent = service.licensing.activate.call_args.args[0]
    assert sent == {**body, "client_address": "198.51.100.7"}
    assert service.licensing.deactivate.call_args.args[0]["client_address"] == "198.51.100.7"
