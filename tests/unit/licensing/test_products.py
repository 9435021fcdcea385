"""The catalogue: codes in any case, archive instead of delete (fixtures: conftest.py)."""

from __future__ import annotations

import pytest

from tests.unit.licensing.support import COMPANY, activate, issue, raises_code

CAD_PRO = {"code": "cadpro", "name": "CAD Pro", "active": True, "features": []}


def test_a_code_is_accepted_in_any_case_and_kept_in_lower_case(service) -> None:
    created = service.create_product({"code": " CAD-Pro.2 ", "name": " CAD Pro 2 "})
    assert created == {"code": "cad-pro.2", "name": "CAD Pro 2", "active": True, "features": []}
    for typed in ("CAD-PRO.2", "cad-pro.2", "  Cad-Pro.2\t"):
        assert service.get_product(typed) == created
    raises_code("product_exists", service.create_product, {"code": "Cad-Pro.2", "name": "x"})
    license = service.issue_license({"customer_id": COMPANY, "product": "CAD-PRO.2", "seats": 1})
    assert license["product"] == {"code": "cad-pro.2", "name": "CAD Pro 2"}


@pytest.mark.parametrize("code", ["", "   ", "-cad", "cad pro", "cad/pro", "c" * 65, "cäd"])
def test_a_bad_code_names_the_field(service, code: str) -> None:
    error = raises_code("validation_error", service.create_product, {"code": code, "name": "X"})
    assert "code" in error.details["fields"]
    assert "code" in raises_code("validation_error", service.get_product, code).details["fields"]


def test_get_product_names_what_is_missing(service) -> None:
    assert service.get_product("cadpro") == CAD_PRO
    raises_code("product_not_found", service.get_product, "nope")
    raises_code("product_not_found", service.archive_product, "nope")
    raises_code("validation_error", service.get_product, None)


def test_archiving_takes_a_product_off_sale_and_back(service) -> None:
    service.create_product({"code": "viewer", "name": "Viewer"})
    archived = service.archive_product("CADPRO")
    assert archived == {**CAD_PRO, "active": False}
    assert service.archive_product("cadpro") == archived  # again: the same
    assert service.get_product("cadpro") == archived
    assert [p["code"] for p in service.list_products()] == ["viewer"]
    assert service.list_products(include_archived=True) == [
        archived,
        {"code": "viewer", "name": "Viewer", "active": True, "features": []},
    ]
    raises_code("validation_error", service.list_products, "yes")
    assert service.unarchive_product(" CadPro ") == CAD_PRO
    assert service.unarchive_product("cadpro") == CAD_PRO
    assert [p["code"] for p in service.list_products()] == ["cadpro", "viewer"]


def test_an_archived_products_licenses_go_on_working(service, clock) -> None:
    license_id, password = issue(service, seats=2, expires_at="2027-06-30")
    activate(service, license_id, password, "before")
    service.archive_product("cadpro")
    assert activate(service, license_id, password, "after")["created"] is True
    certificate = activate(service, license_id, password, "before")["certificate"]
    assert service.validate(certificate)["code"] == "VALID"
    extended = service.extend_license(license_id, "2028-06-30")
    assert extended["status"] == "active"
    assert service.get_license(license_id, COMPANY)["seats_in_use"] == 2
    service.deactivate_installation(COMPANY, license_id, "after")
    assert service.rotate_activation_password(license_id, COMPANY)["license_id"] == license_id
