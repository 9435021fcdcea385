"""What licensing's integration tests share besides fixtures: an RPC caller and the calls
most tests make (fixtures: conftest.py)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from common.errors import PortalError
from tests.support.bus import BusEvents, deliver_again

COMPANY_PASSWORD = "correct horse battery"


class Rpc:
    def __init__(self, client) -> None:
        self.client = client

    def __call__(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self.client.call("licensing", method, *args, **kwargs)

    def auth(self, method: str, *args: Any) -> Any:
        return self.client.call("auth", method, *args)

    def error(self, code: str, method: str, *args: Any, **kwargs: Any) -> PortalError:
        with pytest.raises(PortalError) as caught:
            self(method, *args, **kwargs)
        assert caught.value.code == code, caught.value.to_dict()
        return caught.value


def new_company(rpc: Rpc, password: str = COMPANY_PASSWORD) -> str:
    company = rpc.auth(
        "create_company",
        {
            "name": "Acme",
            "contact_name": "Ada",
            "contact_email": f"ada-{uuid.uuid4().hex[:12]}@acme.test",
            "password": password,
        },
    )
    return company["customer_id"]


def issue(
    rpc: Rpc, customer: str, product: str, seats: int = 3, expires_at=None, force: bool = False
) -> tuple[str, str]:
    """Issue a license (staff) → (its ID, its activation password)."""
    body = {"customer_id": customer, "product": product, "seats": seats, "expires_at": expires_at}
    if force:
        body["force"] = True
    license = rpc("issue_license", body)
    password = rpc("get_license", license["license_id"], customer)["activation_password"]
    return license["license_id"], password


def payload(
    license_id: str,
    password: str,
    installation_id="inst-1",
    machine="PC-1",
    address: str | None = None,
) -> dict:
    body = {
        "license_id": license_id,
        "password": password,
        "installation_id": installation_id,
        "machine_name": machine,
    }
    if address is not None:
        body["client_address"] = address
    return body


def new_address() -> str:
    """An address of this test alone (the run's database counts failures per address)."""
    return f"2001:db8:{uuid.uuid4().hex[:4]}:{uuid.uuid4().hex[:4]}::1"


def issued_of(events: BusEvents, license_id: str) -> list[dict]:
    return [e for e in events.of("license_issued") if e["license"]["license_id"] == license_id]


def expiring_of(events: BusEvents, license_id: str) -> list[dict]:
    return [e for e in events.of("license_expiring") if e["license"]["license_id"] == license_id]


def redeliver_as(
    amqp_uri: str,
    actor: dict,
    service: str,
    method: str,
    args: list,
    times: int = 3,
    timeout: float = 15,
) -> list[dict]:
    """One RPC request message published `times` times, as the broker redelivers a request
    whose acknowledgement was lost (the same correlation ID, so the same request key), with
    `actor` in its context headers as the gateway's nameko client sends it. The reply
    bodies that arrive within `timeout` (licensing's and billing's audit tests)."""
    return deliver_again(amqp_uri, service, method, args, times, timeout, {"actor": actor})
