"""Floating licenses at the gateway (design §13), licensing faked: check-out, heartbeat and
check-in with the lease token as the credential (`auth="lease"`), the portal's lease list and
revocation by role, the floating fields of license answers, the error codes' statuses and
the OpenAPI document."""

from __future__ import annotations

import json
from typing import Any

import pytest
from nameko.testing.services import worker_factory
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from common.clock import SystemClock
from common.errors import Forbidden, PortalError
from common.schemas import TOKEN_MAX, load
from gateway import openapi, schemas
from gateway.errors import error_response, status_for
from gateway.http import ROUTES, Reply, canonical_parameters, read_json, route
from gateway.service import GatewayService
from gateway.views import NO_RENEWAL
from tests.unit.gateway.support import FakeAuth, bypassing_read_model, make_request

LEASE_TOKEN = "q3VdX1b2c3d4e5f6g7h8i9j0k1l2m3n4o5p6q7r8s9t"
LEASE = {
    "lease_id": "LS-7KQX-M2PD",
    "license_id": "L-7KQX-M2PD",
    "installation_id": "ws-07/𝔸",
    "machine_name": "CAD-WS-07",
    "started_at": "2026-12-02T10:00:00+00:00",
    "expires_at": "2026-12-02T10:15:00+00:00",
    "last_heartbeat_at": None,
    "borrowed": False,
    "borrowed_until": None,
    "status": "live",
    "ended_at": None,
}
# licensing's lease view may hold more than a client sees
LEASE_VIEW = {**LEASE, "token_hash": "never answered", "customer_id": "C1000001"}
USAGE = {
    "peak_30d": 2,
    "days": [{"date": "2026-12-01", "peak": 1}, {"date": "2026-12-02", "peak": 2}],
}
FLOATING = {
    "license_id": "L-7KQX-M2PD",
    "product": {"code": "cadpro", "name": "CAD Pro"},
    "model": "floating",
    "lease_seconds": 900,
    "max_borrow_days": 7,
    "seats": 10,
    "seats_in_use": 1,
    "expires_at": None,
    "status": "active",
    "suspension_reason": None,
    "suspension_cause": None,
    "created_at": "2026-01-05T10:00:00+00:00",
    "features": [],
}
CHECKOUT = {
    "license_id": "L-7KQX-M2PD",
    "password": "K7QX-M2PD-9TRW-H4NC",
    "installation_id": "ws-07/𝔸",
    "machine_name": "CAD-WS-07",
}

# licensing's answer for a lease certificate: `expires_at` is the license's, the lease's own
# end is `lease_expires_at`, and `signed_answer` holds the same fields
LEASE_VALIDATION = {
    "valid": True,
    "code": "VALID",
    "license_id": "L-7KQX-M2PD",
    "installation_id": "ws-07/𝔸",
    "expires_at": None,
    "features": ["steel"],
    "lease_id": "LS-7KQX-M2PD",
    "lease_expires_at": "2026-12-02T10:15:00+00:00",
    "deactivated_at": None,
    "deactivated_by": None,
    "suspended_at": None,
    "suspension_reason": None,
    "signed_answer": "signed.n1.answer",
}


class Licensing:
    """Licensing's lease use cases; an installation named `known` already holds a lease."""

    def __init__(self, error: PortalError | None = None) -> None:
        self.error = error
        self.calls: list[tuple[Any, ...]] = []

    def _answer(self, name: str, *args: Any) -> None:
        self.calls.append((name, *args))
        if self.error is not None:
            raise self.error

    def checkout(self, payload: dict) -> dict:
        self._answer("checkout", payload)
        return {
            "lease": LEASE_VIEW,
            "lease_token": LEASE_TOKEN,
            "certificate": "a.b.c",
            "created": payload["installation_id"] != "known",
        }

    def heartbeat(self, lease_id: str, lease_token: str) -> dict:
        self._answer("heartbeat", lease_id, lease_token)
        return {
            "lease": {**LEASE_VIEW, "last_heartbeat_at": LEASE["started_at"]},
            "certificate": "d.e.f",
        }

    def checkin(self, lease_id: str, lease_token: str) -> dict:
        self._answer("checkin", lease_id, lease_token)
        return {**LEASE_VIEW, "status": "checked_in"}

    def list_leases(self, license_id: str, customer_id: str) -> list[dict]:
        self._answer("list_leases", license_id, customer_id)
        return [LEASE_VIEW]

    def revoke_lease(self, customer_id: str, license_id: str, lease_id: str) -> dict:
        self._answer("revoke_lease", customer_id, license_id, lease_id)
        return {**LEASE_VIEW, "status": "revoked", "ended_at": "2026-12-02T10:05:00+00:00"}

    def validate(self, certificate: str, nonce: str | None = None) -> dict:
        self._answer("validate", certificate, nonce)
        return LEASE_VALIDATION

    def list_licenses(self, customer_id: str) -> list[dict]:
        return [{**FLOATING, "customer_id": customer_id}]

    def get_license(self, license_id: str, customer_id: str, reveal_password: bool) -> dict:
        return {
            **FLOATING,
            "activation_password": "K7QX" if reveal_password else None,
            "installations": [],
            "leases": [LEASE_VIEW],
            "usage": USAGE,
        }


def gateway(role: str = "owner", licensing: Any = None) -> tuple[GatewayService, Any]:
    licensing = licensing if licensing is not None else Licensing()
    service = worker_factory(
        GatewayService,
        auth=FakeAuth(role=role),
        licensing=licensing,
        read_model=bypassing_read_model(),
        clock=SystemClock(),
    )
    return service, licensing


def json_request(raw: bytes) -> Request:
    """A POST of `raw` as application/json, as the route machinery reads a body."""
    return Request(
        EnvironBuilder(method="POST", data=raw, content_type="application/json").get_environ()
    )


def product_request(method: str = "POST", **kwargs: Any):
    """A request of the product: no session; `token` is the Authorization bearer, if any."""
    kwargs.setdefault("token", LEASE_TOKEN)
    return make_request(method, **kwargs)


# --- check-out: the password is the credential, as for an activation -------------------------


def test_a_new_lease_is_201_with_its_token_once_and_the_same_installation_200() -> None:
    service, licensing = gateway()
    request = make_request("POST", token=None, environ_base={"REMOTE_ADDR": "203.0.113.4"})
    new = service.checkout(request, body={**CHECKOUT, "borrow_until": None})
    assert isinstance(new, Reply) and new.status == 201
    assert new.body == {"lease": LEASE, "lease_token": LEASE_TOKEN, "certificate": "a.b.c"}
    # the body as sent, with the caller's address for licensing's throttle
    assert licensing.calls == [
        ("checkout", {**CHECKOUT, "borrow_until": None, "client_address": "203.0.113.4"})
    ]
    again = service.checkout(
        make_request("POST", token=None), body={**CHECKOUT, "installation_id": "known"}
    )
    assert again.status == 200
    assert set(again.body) == {"lease", "lease_token", "certificate"}


def test_the_checkout_body_is_an_activation_body_with_an_optional_borrow_until() -> None:
    assert load(schemas.LeaseBody(), CHECKOUT)["borrow_until"] is None
    loaded = load(schemas.LeaseBody(), {**CHECKOUT, "borrow_until": "2026-12-09T18:00:00Z"})
    # handed on as ISO text with its offset: the bus carries JSON
    assert loaded["borrow_until"] == "2026-12-09T18:00:00+00:00"
    # a plain day as licensing takes it (the end of that day, UTC), handed on as it is
    loaded = load(schemas.LeaseBody(), {**CHECKOUT, "borrow_until": "2026-12-09"})
    assert loaded["borrow_until"] == "2026-12-09"
    for wrong in (
        "2026-12-09T18:00:00",
        "next week",
        20261209,
        "20261209",
        "2026-12-9",
        "2026-02-30",
        "2026-13-01T00:00:00+00:00",
    ):
        with pytest.raises(PortalError) as caught:
            load(schemas.LeaseBody(), {**CHECKOUT, "borrow_until": wrong})
        assert caught.value.code == "validation_error"
        assert "borrow_until" in caught.value.details["fields"], wrong
    with pytest.raises(PortalError) as caught:
        load(schemas.LeaseBody(), {**CHECKOUT, "machine_name": "CAD\r\nWS"})
    assert "machine_name" in caught.value.details["fields"]


@pytest.mark.parametrize(
    ("sent", "handed_on"),
    [("2026-12-09", "2026-12-09"), ("2026-12-09T18:00:00+01:00", "2026-12-09T18:00:00+01:00")],
)
def test_a_check_out_body_borrows_until_a_day_or_a_date_time(sent: str, handed_on: str) -> None:
    raw = json.dumps({**CHECKOUT, "borrow_until": sent}).encode()
    body = read_json(json_request(raw), schemas.LeaseBody())
    service, licensing = gateway()
    service.checkout(make_request("POST", token=None), body=body)
    ((_, payload),) = licensing.calls
    assert payload["borrow_until"] == handed_on


def test_a_borrow_until_of_neither_form_is_a_422_naming_it() -> None:
    raw = json.dumps({**CHECKOUT, "borrow_until": "09.12.2026"}).encode()
    with pytest.raises(PortalError) as caught:
        read_json(json_request(raw), schemas.LeaseBody())
    response = error_response(caught.value.code, caught.value.message, caught.value.details)
    assert response.status_code == 422
    error = json.loads(response.get_data())["error"]
    assert error["code"] == "validation_error"
    assert error["details"]["fields"] == {
        "borrow_until": ["Use YYYY-MM-DD or an ISO 8601 date-time with its offset."]
    }


# --- heartbeat and check-in: the lease token is the credential -------------------------------


def test_a_heartbeat_hands_licensing_the_bearer_token_and_answers_the_lease() -> None:
    service, licensing = gateway()
    answer = service.heartbeat(product_request(), "LS-7KQX-M2PD")
    assert answer == {
        "lease": {**LEASE, "last_heartbeat_at": LEASE["started_at"]},
        "certificate": "d.e.f",
    }
    assert licensing.calls == [("heartbeat", "LS-7KQX-M2PD", LEASE_TOKEN)]


def test_a_check_in_is_204() -> None:
    service, licensing = gateway()
    assert service.checkin(product_request("DELETE"), "LS-7KQX-M2PD") is None
    assert licensing.calls == [("checkin", "LS-7KQX-M2PD", LEASE_TOKEN)]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": ""},
        {"Authorization": "Bearer "},
        {"Authorization": f"Basic {LEASE_TOKEN}"},
        {"Authorization": LEASE_TOKEN},
        {"Authorization": "Bearer " + "x" * (TOKEN_MAX + 1)},
    ],
)
def test_without_a_lease_token_nothing_is_asked(headers: dict) -> None:
    service, licensing = gateway()
    for name, method in (("heartbeat", "POST"), ("checkin", "DELETE")):
        with pytest.raises(PortalError) as caught:
            getattr(service, name)(make_request(method, token=None, headers=headers), "LS-1")
        assert caught.value.code == "invalid_lease_token"
    assert licensing.calls == []
    assert status_for("invalid_lease_token") == 401


def test_a_portal_cookie_is_no_lease_token() -> None:
    # the browser sends cookies on its own; a lease route reads the header only
    service, licensing = gateway()
    request = make_request("POST", token=None, cookies={"portal_session": LEASE_TOKEN})
    with pytest.raises(PortalError) as caught:
        service.heartbeat(request, "LS-1")
    assert caught.value.code == "invalid_lease_token"
    assert licensing.calls == []


def test_licensing_refusals_come_through_with_their_codes() -> None:
    gone = PortalError(
        "The lease has ended.",
        code="lease_expired",
        details={"lease_id": "LS-1", "reason": "revoked", "ended_at": "2026-12-02T10:05:00Z"},
    )
    service, _ = gateway(licensing=Licensing(error=gone))
    with pytest.raises(PortalError) as caught:
        service.heartbeat(product_request(), "LS-1")
    assert caught.value.code == "lease_expired" and caught.value.details["reason"] == "revoked"
    assert status_for("lease_expired") == 410


def test_a_lease_route_must_take_the_token_and_only_a_lease_route_may() -> None:
    count = len(ROUTES)
    with pytest.raises(TypeError):
        route("POST", "/x", summary="x", auth="lease")(lambda self, request: None)
    with pytest.raises(TypeError):
        route("POST", "/y", summary="y")(lambda self, request, lease_token: None)
    # declared, not entrypoints: drop them from the registry again
    del ROUTES[count:]


# --- the portal: leases of a license, revocation by role --------------------------------------


@pytest.mark.parametrize("role", ["owner", "license_admin", "billing", "viewer"])
def test_every_role_lists_the_live_leases_of_its_company(role: str) -> None:
    service, licensing = gateway(role)
    assert service.list_leases(make_request(), "L-7KQX-M2PD") == {"leases": [LEASE]}
    assert licensing.calls == [("list_leases", "L-7KQX-M2PD", "C1000001")]


@pytest.mark.parametrize("role", ["owner", "license_admin"])
def test_owners_and_license_admins_revoke_a_lease_of_their_company(role: str) -> None:
    service, licensing = gateway(role)
    answer = service.revoke_lease(make_request("POST"), "L-7KQX-M2PD", "LS-7KQX-M2PD")
    assert answer == {**LEASE, "status": "revoked", "ended_at": "2026-12-02T10:05:00+00:00"}
    assert licensing.calls == [("revoke_lease", "C1000001", "L-7KQX-M2PD", "LS-7KQX-M2PD")]


@pytest.mark.parametrize("role", ["billing", "viewer"])
def test_billing_users_and_viewers_may_not_revoke(role: str) -> None:
    service, licensing = gateway(role)
    with pytest.raises(Forbidden) as refused:
        service.revoke_lease(make_request("POST"), "L-7KQX-M2PD", "LS-7KQX-M2PD")
    assert refused.value.details == {"required_roles": ["owner", "license_admin"], "role": role}
    assert licensing.calls == []


def test_revocation_needs_a_session() -> None:
    service, licensing = gateway()
    with pytest.raises(PortalError) as caught:
        service.revoke_lease(make_request("POST", token=None), "L-1", "LS-1")
    assert caught.value.code == "unauthenticated"
    # nor is a lease token a session
    with pytest.raises(PortalError) as caught:
        service.revoke_lease(make_request("POST", token=LEASE_TOKEN), "L-1", "LS-1")
    assert caught.value.code == "unauthenticated"
    assert licensing.calls == []


# --- license answers -------------------------------------------------------------------------


def test_a_floating_license_answers_its_model_leases_and_usage() -> None:
    service, _ = gateway("viewer")
    (listed,) = service.list_licenses(make_request())["licenses"]
    # no `customer_id`: only the schema's keys; billing (a mock) names no recurring payment
    labels = {"nickname": None, "note": None, "renewal": NO_RENEWAL}
    assert listed == {**FLOATING, **labels}
    detail = service.get_license(make_request(), "L-7KQX-M2PD")
    assert detail == {
        **FLOATING,
        **labels,
        "activation_password": None,
        "installations": [],
        "leases": [LEASE],
        "usage": USAGE,
    }


def test_lease_ids_in_paths_are_canonical() -> None:
    assert canonical_parameters({"lease_id": " ls-7kqx-m2pd "}) == {"lease_id": "LS-7KQX-M2PD"}


# --- validation of a lease certificate --------------------------------------------------------


def test_a_lease_certificates_validation_answers_its_lease() -> None:
    # the plain answer says what the signed one does: nothing of licensing's is dropped
    service, licensing = gateway()
    body = {"certificate": "a.b.c", "nonce": "n1"}
    assert service.validate(make_request("POST", token=None), body=body) == LEASE_VALIDATION
    assert licensing.calls == [("validate", "a.b.c", "n1")]


# --- codes and the OpenAPI document ----------------------------------------------------------


def test_the_codes_of_floating_licenses_have_their_statuses() -> None:
    expected = {
        "floating_license": 409,
        "node_locked_license": 409,
        "borrow_not_allowed": 422,
        "lease_expired": 410,
        "invalid_lease_token": 401,
        "lease_not_found": 404,
    }
    assert {code: status_for(code) for code in expected} == expected


def test_the_openapi_document_shows_the_lease_routes() -> None:
    document = openapi.build()
    paths = document["paths"]
    checkout = paths["/api/v1/leases"]["post"]
    assert "security" not in checkout  # the password in the body is the credential
    assert {"201", "401", "403", "409", "422", "429"} <= set(checkout["responses"])
    assert "`node_locked_license`" in checkout["responses"]["409"]["description"]
    assert "`borrow_not_allowed`" in checkout["responses"]["422"]["description"]
    heartbeat = paths["/api/v1/leases/{lease_id}/heartbeat"]["post"]
    checkin = paths["/api/v1/leases/{lease_id}"]["delete"]
    for operation in (heartbeat, checkin):
        assert operation["security"] == [{"lease": []}]
        assert "`invalid_lease_token`" in operation["responses"]["401"]["description"]
        assert "x-roles" not in operation
    assert "`lease_expired`" in heartbeat["responses"]["410"]["description"]
    assert "204" in checkin["responses"]
    scheme = document["components"]["securitySchemes"]["lease"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    revoke = paths["/api/v1/licenses/{license_id}/leases/{lease_id}/revoke"]["post"]
    assert revoke["x-roles"] == ["owner", "license_admin"]
    assert "`lease_not_found`" in revoke["responses"]["404"]["description"]
    assert paths["/api/v1/licenses/{license_id}/leases"]["get"]["x-roles"] == [
        "owner",
        "license_admin",
        "billing",
        "viewer",
    ]
    components = document["components"]["schemas"]
    assert {"model", "lease_seconds", "max_borrow_days"} <= set(
        components["LicenseOut"]["properties"]
    )
    assert {"leases", "usage"} <= set(components["LicenseDetail"]["properties"])
    assert set(components["LeaseOut"]["properties"]) == {"lease", "lease_token", "certificate"}
    validation = components["ValidationOut"]["properties"]
    for name in ("lease_id", "lease_expires_at"):
        assert validation[name]["nullable"] is True and validation[name]["description"], name
    borrow_until = components["LeaseBody"]["properties"]["borrow_until"]
    assert borrow_until["type"] == "string" and "format" not in borrow_until  # either form
    assert "YYYY-MM-DD" in borrow_until["description"]
    assert (
        "floating_license"
        in paths["/api/v1/activations"]["post"]["responses"]["409"]["description"]
    )
