"""What licensing's unit tests share besides fixtures: the companies, a fake auth and a fake
request, and the calls most tests make."""

from __future__ import annotations

import sys
from typing import Any

import pytest

from common.errors import PortalError
from common.idempotency import Once, RequestInfo

COMPANY = "C1111111"
OTHER = "C2222222"
COMPANY_PASSWORD = "correct horse battery"


class FakeAuth:
    """Stands in for the auth service's RPC client."""

    def __init__(self) -> None:
        self.passwords = {COMPANY: COMPANY_PASSWORD, OTHER: "other password 123"}
        self.checks: list[str] = []
        self.addresses: list[str | None] = []

    def get_company(self, customer_id: str) -> dict[str, Any]:
        if customer_id not in self.passwords:
            raise PortalError(code="company_not_found")
        return {"customer_id": customer_id}

    def verify_company_password(
        self, customer_id: str, password: str, client_address: str | None = None
    ) -> bool:
        self.checks.append(customer_id)
        self.addresses.append(client_address)
        return self.passwords.get(customer_id) == password


class FakeRequest:
    """Stands in for `Requests()`: the request key a test sets (None: no ledger, like a
    request without one), for the entrypoint that asks, as the real one names it."""

    def __init__(self) -> None:
        self.key: str | None = None

    def once(self, scope: str | None, *body: Any) -> Once | None:
        operation = f"licensing.{sys._getframe(1).f_code.co_name}"  # the calling entrypoint
        return RequestInfo(self.key, operation).once(scope, *body)


def raises_code(code: str, call, *args, **kwargs) -> PortalError:
    with pytest.raises(PortalError) as caught:
        call(*args, **kwargs)
    assert caught.value.code == code, caught.value.to_dict()
    return caught.value


def issue(service, seats: int = 2, expires_at: str | None = None, customer: str = COMPANY):
    license = service.issue_license(
        {"customer_id": customer, "product": "cadpro", "seats": seats, "expires_at": expires_at}
    )
    password = service.get_license(license["license_id"])["activation_password"]
    return license["license_id"], password


def activate(service, license_id, password, installation_id="inst-1", machine="PC-1", address=None):
    payload = {
        "license_id": license_id,
        "password": password,
        "installation_id": installation_id,
        "machine_name": machine,
    }
    if address is not None:
        payload["client_address"] = address
    return service.activate(payload)
