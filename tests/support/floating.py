"""Floating licenses for the e2e tests (design §13): a license issued as staff do over RPC,
and the product's side of a lease over plain HTTP (check-out with the license's password,
heartbeat and check-in with the lease token), as any client would make them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import requests

from tests.support.team import staff_rpc


def issue_floating_license(
    suite: Any,
    customer_id: str,
    product: str,
    seats: int,
    lease_seconds: int = 60,
    max_borrow_days: int = 7,
) -> dict[str, Any]:
    """A floating license of `product` for `customer_id` until 2099, as staff issue it (the
    licensing RPC, as `portalctl license issue --model floating` does), with its
    activation password (staff read it)."""
    payload = {
        "customer_id": customer_id,
        "product": product,
        "seats": seats,
        "expires_at": "2099-12-31",
        "model": "floating",
        "lease_seconds": lease_seconds,
        "max_borrow_days": max_borrow_days,
    }
    with staff_rpc(suite) as rpc:
        issued = rpc.call("licensing", "issue_license", payload)
        return rpc.call("licensing", "get_license", issued["license_id"])


def new_product(suite: Any, prefix: str = "float", name: str = "CAD Pro Floating") -> str:
    """A new product `<prefix><random>`'s code (staff create it with portalctl)."""
    code = f"{prefix}{uuid.uuid4().hex[:8]}"
    suite.portalctl("product", "create", "--code", code, "--name", name)
    return code


def in_days(days: float) -> str:
    """An ISO date-time `days` from now (UTC), as a client sends `borrow_until`."""
    return (datetime.now(UTC) + timedelta(days=days)).replace(microsecond=0).isoformat()


def checkout_body(
    license: dict[str, Any],
    installation_id: str | None = None,
    machine_name: str = "CAD-WS-01",
    borrow_until: str | None = None,
) -> dict[str, Any]:
    body = {
        "license_id": license["license_id"],
        "password": license["activation_password"],
        "installation_id": installation_id or f"float-{uuid.uuid4().hex[:12]}",
        "machine_name": machine_name,
    }
    if borrow_until is not None:
        body["borrow_until"] = borrow_until
    return body


def lease_auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def checkout(api: Any, license: dict[str, Any], **kwargs: Any) -> requests.Response:
    """POST /api/v1/leases for a machine of `license` (see `checkout_body`)."""
    return api.post("/api/v1/leases", json=checkout_body(license, **kwargs))


def checked_out(api: Any, license: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """A new lease's answer `{lease, lease_token, certificate}` (asserts the 201)."""
    response = checkout(api, license, **kwargs)
    assert response.status_code == 201, response.text
    return response.json()


def heartbeat(api: Any, lease_id: str, token: str | None) -> requests.Response:
    headers = lease_auth(token) if token is not None else {}
    return api.post(f"/api/v1/leases/{lease_id}/heartbeat", headers=headers)


def checkin(api: Any, lease_id: str, token: str) -> requests.Response:
    return api.delete(f"/api/v1/leases/{lease_id}", headers=lease_auth(token))
