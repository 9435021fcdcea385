"""What licensing's unit tests share besides fixtures: the companies, and a fake auth."""

from __future__ import annotations

from typing import Any

from common.errors import PortalError

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
