"""Offline activation and features at the gateway (design §11, §12), licensing faked: who may
upload a request or a proof, what is passed on and answered, the 16 KiB bound of the files,
and features in the license, validation and catalog answers."""

from __future__ import annotations

from typing import Any

import pytest
from nameko.testing.services import worker_factory

from common.clock import SystemClock
from common.errors import Forbidden, PortalError
from common.schemas import load
from gateway import openapi, schemas
from gateway.errors import status_for
from gateway.http import Reply
from gateway.schemas import OFFLINE_FILE_MAX
from gateway.service import GatewayService
from tests.unit.gateway.support import FakeAuth, bypassing_read_model, make_request

REQUEST = (
    '{"type": "activation_request", "version": 1, "license_id": "L-7KQX-M2PD", '
    '"installation_id": "ws-07", "machine_name": "CAD-WS-07", "product": "cadpro", '
    '"requested_at": "2026-12-02T10:00:00+00:00", "nonce": "q3VdX1b2c3d4e5f6g7h8i9"}'
)
PROOF = (
    '{"type": "deactivation_proof", "version": 1, "license_id": "L-7KQX-M2PD", '
    '"installation_id": "ws-07", "deactivated_at": "2026-12-03T10:00:00+00:00", '
    '"secret": "' + "s" * 43 + '"}'
)
ACTIVATION = {
    "installation_id": "ws-07",
    "machine_name": "CAD-WS-07",
    "status": "active",
    "activated_at": "2026-12-02T10:00:01+00:00",
    "license_id": "L-7KQX-M2PD",
    "source": "offline",
}
INSTALLATION = {
    "installation_id": "ws-07",
    "machine_name": "CAD-WS-07",
    "status": "deactivated",
    "activated_at": "2026-12-02T10:00:01+00:00",
    "last_seen_at": "2026-12-02T10:00:01+00:00",
    "deactivated_at": "2026-12-03T10:05:00+00:00",
    "deactivated_by": "offline",
}


class Licensing:
    """Licensing's offline use cases: a known installation (`ws-07`) is `created: False`."""

    def __init__(self, known: bool = False) -> None:
        self.known = known
        self.calls: list[tuple[Any, ...]] = []

    def activate_offline(self, customer_id: str, license_id: str, request_text: str) -> dict:
        self.calls.append(("activate_offline", customer_id, license_id, request_text))
        return {
            "activation": ACTIVATION,
            "certificate": "a.b.c",
            "response": '{"type": "activation_response"}',
            "created": not self.known,
            "internal": "never answered",
        }

    def deactivate_offline(self, customer_id: str, license_id: str, proof_text: str) -> dict:
        self.calls.append(("deactivate_offline", customer_id, license_id, proof_text))
        return {**INSTALLATION, "customer_id": customer_id}


def gateway(role: str = "owner", licensing: Any = None) -> tuple[GatewayService, Any]:
    licensing = licensing if licensing is not None else Licensing()
    service = worker_factory(GatewayService, auth=FakeAuth(role=role), licensing=licensing)
    return service, licensing


@pytest.mark.parametrize("role", ["owner", "license_admin"])
def test_an_offline_activation_is_201_when_new_with_the_response_file(role: str) -> None:
    service, licensing = gateway(role)
    answer = service.activate_offline(
        make_request("POST"), "L-7KQX-M2PD", body={"request": REQUEST}
    )
    assert isinstance(answer, Reply) and answer.status == 201
    assert answer.body == {
        "activation": ACTIVATION,
        "certificate": "a.b.c",
        "response": '{"type": "activation_response"}',
    }
    # the session's company, the URL's license and the file exactly as uploaded
    assert licensing.calls == [("activate_offline", "C1000001", "L-7KQX-M2PD", REQUEST)]


def test_the_same_installation_again_is_200() -> None:
    service, _ = gateway(licensing=Licensing(known=True))
    answer = service.activate_offline(
        make_request("POST"), "L-7KQX-M2PD", body={"request": REQUEST}
    )
    assert answer.status == 200
    assert set(answer.body) == {"activation", "certificate", "response"}


@pytest.mark.parametrize("role", ["owner", "license_admin"])
def test_an_offline_deactivation_answers_the_installation(role: str) -> None:
    service, licensing = gateway(role)
    answer = service.deactivate_offline(make_request("POST"), "L-7KQX-M2PD", body={"proof": PROOF})
    assert answer == INSTALLATION  # no `customer_id`: only the schema's keys
    assert licensing.calls == [("deactivate_offline", "C1000001", "L-7KQX-M2PD", PROOF)]


@pytest.mark.parametrize("role", ["billing", "viewer"])
def test_billing_users_and_viewers_may_not_upload_requests_or_proofs(role: str) -> None:
    service, licensing = gateway(role)
    with pytest.raises(Forbidden) as refused:
        service.activate_offline(make_request("POST"), "L-7KQX-M2PD", body={"request": REQUEST})
    assert refused.value.details == {"required_roles": ["owner", "license_admin"], "role": role}
    with pytest.raises(Forbidden):
        service.deactivate_offline(make_request("POST"), "L-7KQX-M2PD", body={"proof": PROOF})
    assert licensing.calls == []


def test_without_a_session_nothing_is_asked() -> None:
    service, licensing = gateway()
    with pytest.raises(PortalError) as caught:
        service.activate_offline(
            make_request("POST", token=None), "L-7KQX-M2PD", body={"request": REQUEST}
        )
    assert caught.value.code == "unauthenticated"
    assert licensing.calls == []


@pytest.mark.parametrize(
    ("route", "field", "code"),
    [
        ("activate_offline", "request", "invalid_request"),
        ("deactivate_offline", "proof", "invalid_proof"),
    ],
)
def test_a_file_over_16_kib_is_refused_naming_the_problem(
    route: str, field: str, code: str
) -> None:
    service, licensing = gateway()
    # counted in bytes of UTF-8: 8193 two-byte characters are 16386 bytes
    for text in ("x" * (OFFLINE_FILE_MAX + 1), "é" * (OFFLINE_FILE_MAX // 2 + 1)):
        with pytest.raises(PortalError) as caught:
            getattr(service, route)(make_request("POST"), "L-7KQX-M2PD", body={field: text})
        assert caught.value.code == code
        assert status_for(code) == 422
        assert "16 KiB" in caught.value.details["problem"]
        assert caught.value.details["limit"] == OFFLINE_FILE_MAX
    assert licensing.calls == []
    # exactly 16 KiB is passed on: whether it is a good file is licensing's to say
    getattr(service, route)(make_request("POST"), "L-1", body={field: "x" * OFFLINE_FILE_MAX})
    assert len(licensing.calls) == 1


@pytest.mark.parametrize(
    ("schema", "data", "field"),
    [
        (schemas.OfflineActivationBody, {}, "request"),
        (schemas.OfflineActivationBody, {"request": {"type": "activation_request"}}, "request"),
        (schemas.OfflineActivationBody, {"request": REQUEST, "proof": PROOF}, "proof"),
        (schemas.OfflineDeactivationBody, {"proof": 42}, "proof"),
        (schemas.OfflineDeactivationBody, {"request": REQUEST}, "request"),
    ],
)
def test_the_body_is_one_string_field(schema: type, data: dict, field: str) -> None:
    # the file goes as text (what was read from it), never parsed by the client
    with pytest.raises(PortalError) as caught:
        load(schema(), data)
    assert caught.value.code == "validation_error"
    assert field in caught.value.details["fields"]


def test_the_new_codes_have_their_status() -> None:
    assert {
        code: status_for(code)
        for code in ("invalid_request", "invalid_proof", "unknown_feature", "feature_exists")
    } == {
        "invalid_request": 422,
        "invalid_proof": 422,
        "unknown_feature": 422,
        "feature_exists": 409,
    }


def test_the_openapi_document_shows_both_routes_for_license_admins() -> None:
    paths = openapi.build()["paths"]
    upload = paths["/api/v1/licenses/{license_id}/offline-activations"]["post"]
    assert upload["x-roles"] == ["owner", "license_admin"]
    assert {"201", "403", "404", "409", "422"} <= set(upload["responses"])
    assert "`invalid_request`" in upload["responses"]["422"]["description"]
    proof = paths["/api/v1/licenses/{license_id}/offline-deactivations"]["post"]
    assert proof["x-roles"] == ["owner", "license_admin"]
    assert "`invalid_proof`" in proof["responses"]["422"]["description"]
    components = openapi.build()["components"]["schemas"]
    assert set(components["OfflineActivationOut"]["properties"]) == {
        "activation",
        "certificate",
        "response",
    }
    assert "features" in components["LicenseOut"]["properties"]
    assert components["ValidationOut"]["properties"]["features"]["type"] == "array"
    assert "features" in components["PlanOut"]["properties"]


# --- features in the answers (design §12) -----------------------------------------------------


class Catalog:
    def list_plans(self) -> list[dict]:
        plan = {"amount": 4900, "currency": "EUR", "price": "€49.00", "interval": "month"}
        return [
            {**plan, "code": "cad-steel", "product_code": "cadpro", "features": ["steel", "dyn"]},
            {**plan, "code": "cad-base", "product_code": "cadpro", "features": []},
        ]


class Products:
    def __init__(self, products: list[dict] | None) -> None:
        self.products = products

    def list_products(self, include_archived: bool = False) -> list[dict]:
        if self.products is None:
            raise PortalError("Licensing is unavailable.", code="service_unavailable")
        return self.products


def catalog_of(products: list[dict] | None) -> dict:
    service = worker_factory(
        GatewayService, auth=FakeAuth(), licensing=Products(products), billing=Catalog()
    )
    return service.catalog(make_request())


def test_catalog_plans_name_their_features_by_the_products_features() -> None:
    product = {
        "code": "cadpro",
        "name": "CAD Pro",
        "active": True,
        # `dyn` was never added to the product (or licensing does not know it yet)
        "features": [{"code": "steel", "name": "Steel design"}],
    }
    (cadpro,) = catalog_of([product])["products"]
    steel, base = cadpro["plans"]
    assert steel["features"] == [
        {"code": "steel", "name": "Steel design"},
        {"code": "dyn", "name": "dyn"},
    ]
    assert base["features"] == []


def test_catalog_features_are_named_by_code_while_licensing_cannot_say() -> None:
    (cadpro,) = catalog_of(None)["products"]
    assert cadpro["plans"][0]["features"] == [
        {"code": "steel", "name": "steel"},
        {"code": "dyn", "name": "dyn"},
    ]


def test_license_answers_carry_features_and_validation_its_codes() -> None:
    features = [{"code": "dyn", "name": "Dynamic analysis"}, {"code": "steel", "name": "Steel"}]
    license = {"license_id": "L-7KQX-M2PD", "features": features, "customer_id": "C1000001"}

    class Licenses:
        def list_licenses(self, customer_id: str) -> list[dict]:
            return [license]

        def get_license(self, license_id: str, customer_id: str, reveal_password: bool) -> dict:
            return {**license, "installations": []}

        def validate(self, certificate: str, nonce: str | None = None) -> dict:
            return {"valid": True, "code": "VALID", "features": ["dyn", "steel"]}

    service = worker_factory(
        GatewayService,
        auth=FakeAuth(role="viewer"),
        licensing=Licenses(),
        read_model=bypassing_read_model(),
        clock=SystemClock(),
    )
    (listed,) = service.list_licenses(make_request())["licenses"]
    assert listed["features"] == features
    assert service.get_license(make_request(), "L-7KQX-M2PD")["features"] == features
    checked = service.validate(make_request("POST", token=None), body={"certificate": "a.b.c"})
    assert checked["features"] == ["dyn", "steel"]
