"""The license and activation routes with licensing faked: every answer is exactly the keys
of its response schema, whatever else licensing's views carry."""

from __future__ import annotations

from typing import Any

import pytest
from nameko.testing.services import worker_factory

from common.clock import SystemClock
from gateway.http import Reply
from gateway.service import GatewayService
from tests.unit.gateway.support import FakeAuth, bypassing_read_model, make_request

INSTALLATION = {
    "installation_id": "ws-07/𝔸",
    "machine_name": "CAD-WS-07",
    "status": "active",
    "activated_at": "2026-03-01T08:00:00+00:00",
    "last_seen_at": "2026-03-02T08:00:00.123456+00:00",
    "deactivated_at": None,
    "deactivated_by": None,
}
LICENSE = {
    "license_id": "L-7KQX-M2PD",
    "product": {"code": "cadpro", "name": "CAD Pro"},
    "model": "node_locked",
    "lease_seconds": None,
    "max_borrow_days": None,
    "seats": 5,
    "seats_in_use": 1,
    "expires_at": None,
    "status": "active",
    "suspension_reason": None,
    "suspension_cause": None,
    "created_at": "2026-01-05T10:00:00+00:00",
    "features": [{"code": "steel", "name": "Steel design"}],
    "nickname": None,
    "note": None,
    # the gateway's, from billing (none here: `NoRecurring`)
    "renewal": {
        "status": "none",
        "next_charge_at": None,
        "amount": None,
        "currency": None,
        "interval": None,
        "plan": None,
        "recurring_payment_id": None,
    },
}
# licensing's license view holds more than a customer sees, and no renewal (billing's)
LICENSE_VIEW = {
    **{key: value for key, value in LICENSE.items() if key != "renewal"},
    "customer_id": "C1000001",
    "suspended_at": None,
}


class NoRecurring:
    """Billing without a recurring payment for the company."""

    def list_recurring_payments(self, customer_id: str) -> list[dict]:
        return []


EVENT = {
    "id": "17",
    "type": "deactivated",
    "at": "2026-03-01T08:00:00+00:00",
    "installation_id": "ws-07/𝔸",
    "machine_name": "CAD-WS-07",
    "source": "portal",
    "reason": None,
    "actor": {"type": "user", "user_id": "U-7KQX-M2PD", "email": "ada@acme.test"},
}


class Licensing:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def list_licenses(self, customer_id: str) -> list[dict]:
        self.calls.append(("list_licenses", customer_id))
        return [LICENSE_VIEW]

    def get_license(self, license_id: str, customer_id: str, reveal_password: bool) -> dict:
        self.calls.append(("get_license", license_id, customer_id, reveal_password))
        password = "K7QX" if reveal_password else None
        return {
            **LICENSE_VIEW,
            "activation_password": password,
            "installations": [INSTALLATION],
            "leases": [],
            "usage": None,
        }

    def list_installations(self, license_id: str, customer_id: str) -> list[dict]:
        return [INSTALLATION]

    def history(self, license_id: str, customer_id: str, limit: int, before: int | None) -> dict:
        self.calls.append(("history", license_id, customer_id, limit, before))
        return {"events": [EVENT], "next_before": None}

    def deactivate_installation(
        self, customer_id: str, license_id: str, installation_id: str, source: str
    ) -> dict:
        self.calls.append(("deactivate_installation", customer_id, installation_id, source))
        return {**INSTALLATION, "status": "deactivated", "deactivated_by": source}

    def rotate_activation_password(self, license_id: str, customer_id: str) -> dict:
        return {"license_id": license_id, "activation_password": "NEW1"}

    def activate(self, body: dict) -> dict:
        activation = {**INSTALLATION, "license_id": body["license_id"], "license_status": "active"}
        created = body["installation_id"] == "new"
        return {"activation": activation, "certificate": "a.b.c", "created": created}

    def deactivate(self, body: dict) -> dict:
        return {**INSTALLATION, "status": "deactivated", "deactivated_by": "product"}

    def validate(self, certificate: str, nonce: str | None = None) -> dict:
        return {
            "license_id": "L-7KQX-M2PD",
            "installation_id": "ws-07/𝔸",
            "expires_at": None,
            "valid": True,
            "code": "VALID",
            "features": ["steel"],
            "signed_answer": f"signed.{nonce}.answer",
        }

    def signing_keys(self) -> dict:
        key = {"kty": "OKP", "crv": "Ed25519", "x": "abc", "kid": "k1", "use": "sig"}
        return {"keys": [{**key, "alg": "EdDSA"}]}


def gateway(role: str = "owner") -> tuple[GatewayService, Licensing]:
    licensing = Licensing()
    auth = FakeAuth(role=role)
    service = worker_factory(
        GatewayService,
        auth=auth,
        licensing=licensing,
        billing=NoRecurring(),
        read_model=bypassing_read_model(),
        clock=SystemClock(),
    )
    return service, licensing


def test_licenses_are_listed_for_the_session_company_without_licensing_internals() -> None:
    service, licensing = gateway()
    assert service.list_licenses(make_request()) == {"licenses": [LICENSE]}
    assert licensing.calls == [("list_licenses", "C1000001")]


def test_a_license_in_detail() -> None:
    service, licensing = gateway()
    assert service.get_license(make_request(), "L-7KQX-M2PD") == {
        **LICENSE,
        "activation_password": "K7QX",
        "installations": [INSTALLATION],
        "leases": [],
        "usage": None,
    }
    assert licensing.calls == [("get_license", "L-7KQX-M2PD", "C1000001", True)]


@pytest.mark.parametrize(
    ("role", "reveal"),
    [("owner", True), ("license_admin", True), ("billing", False), ("viewer", False)],
)
def test_only_owners_and_license_admins_are_shown_the_activation_password(
    role: str, reveal: bool
) -> None:
    service, licensing = gateway(role)
    detail = service.get_license(make_request(), "L-7KQX-M2PD")
    assert licensing.calls == [("get_license", "L-7KQX-M2PD", "C1000001", reveal)]
    assert detail["activation_password"] == ("K7QX" if reveal else None)


def test_a_suspended_license_says_why() -> None:
    class Suspended(Licensing):
        def list_licenses(self, customer_id: str) -> list[dict]:
            reason = "Invoice 2026-17 is unpaid; call +49 30 1234"
            return [{**LICENSE_VIEW, "status": "suspended", "suspension_reason": reason}]

    service = worker_factory(GatewayService, auth=FakeAuth(), licensing=Suspended())
    (license,) = service.list_licenses(make_request())["licenses"]
    assert license["status"] == "suspended"
    assert license["suspension_reason"] == "Invoice 2026-17 is unpaid; call +49 30 1234"


def test_a_key_licensing_leaves_out_is_answered_as_null() -> None:
    class Sparse(Licensing):
        def list_licenses(self, customer_id: str) -> list[dict]:
            return [{key: value for key, value in LICENSE_VIEW.items() if key != "seats_in_use"}]

    service = worker_factory(
        GatewayService, auth=FakeAuth(), licensing=Sparse(), billing=NoRecurring()
    )
    assert service.list_licenses(make_request()) == {
        "licenses": [{**LICENSE, "seats_in_use": None}]
    }


def test_installations_history_and_password_rotation() -> None:
    service, licensing = gateway()
    assert service.list_installations(make_request(), "L-1") == {"installations": [INSTALLATION]}
    query = make_request(query_string={"limit": "5", "before": "40"})
    assert service.history(query, "L-1") == {"events": [EVENT], "next_before": None}
    assert licensing.calls[-1] == ("history", "L-1", "C1000001", 5, 40)
    rotated = service.rotate_activation_password(make_request("POST"), "L-1")
    assert rotated == {"license_id": "L-1", "activation_password": "NEW1"}


def test_the_portal_deactivates_for_its_company() -> None:
    service, licensing = gateway()
    answer = service.deactivate_installation(make_request("POST"), "L-1", "ws-07/𝔸")
    assert answer == {**INSTALLATION, "status": "deactivated", "deactivated_by": "portal"}
    assert licensing.calls == [("deactivate_installation", "C1000001", "ws-07/𝔸", "portal")]


def test_an_activation_is_201_when_new_and_200_when_already_there() -> None:
    service, _ = gateway()
    body = {"license_id": "L-1", "password": "p", "installation_id": "new", "machine_name": "M"}
    new = service.activate(make_request("POST", token=None), body=body)
    assert isinstance(new, Reply) and new.status == 201
    assert set(new.body) == {"activation", "certificate"}
    assert new.body["activation"]["license_status"] == "active"
    again = service.activate(
        make_request("POST", token=None), body={**body, "installation_id": "x"}
    )
    assert again.status == 200


def test_the_product_api_answers() -> None:
    service, _ = gateway()
    released = service.deactivate(make_request("POST", token=None), body={})
    assert released == {**INSTALLATION, "status": "deactivated", "deactivated_by": "product"}
    body = {"certificate": "a.b.c", "nonce": "n1"}
    checked = service.validate(make_request("POST", token=None), body=body)
    assert checked == {
        "valid": True,
        "code": "VALID",
        "license_id": "L-7KQX-M2PD",
        "installation_id": "ws-07/𝔸",
        "expires_at": None,
        "features": ["steel"],
        # an activation certificate's answer has no lease: both answered, null
        "lease_id": None,
        "lease_expires_at": None,
        # who and when only for DEACTIVATED and SUSPENDED: answered, null
        "deactivated_at": None,
        "deactivated_by": None,
        "suspended_at": None,
        "suspension_reason": None,
        "signed_answer": "signed.n1.answer",
    }
    keys = service.signing_keys(make_request(token=None))
    assert keys.headers == {"Cache-Control": "public, max-age=300"}
    assert keys.body == {
        "keys": [
            {"kty": "OKP", "crv": "Ed25519", "x": "abc", "kid": "k1", "use": "sig", "alg": "EdDSA"}
        ]
    }
