"""Features (modules) inside a license end to end (design §12): staff add them to a product
with the real `portalctl`; a license issued with features carries them in its certificate, its
validation and the portal's answers; a plan's features reach the license a purchase over the
API makes; a removed feature leaves validation at once and the next certificate, and the
company is emailed about the change.
"""

from __future__ import annotations

import base64
import json
import uuid

import pytest

from tests.support.smtp_sink import text_body
from tests.support.team import PASSWORD, new_company

pytestmark = pytest.mark.e2e

CARD = {"number": "4242 4242 4242 4242", "exp_month": 12, "exp_year": 2031, "cvc": "123"}
STEEL = {"code": "steel", "name": "Steel design"}
DYN = {"code": "dyn", "name": "Dynamic analysis"}


@pytest.fixture(scope="module")
def product(suite) -> str:
    """A product with two features, added by staff."""
    code = f"mod{uuid.uuid4().hex[:8]}"
    suite.portalctl("product", "create", "--code", code, "--name", "CAD Pro Modules")
    for feature in (STEEL, DYN):
        shown = suite.portalctl(
            "product", "feature", "add", "--product", code,
            "--code", feature["code"], "--name", feature["name"],
        )  # fmt: skip
    assert sorted(shown["features"], key=lambda item: item["code"]) == [DYN, STEEL]
    return code


@pytest.fixture(scope="module")
def company(suite, api) -> dict:
    company = new_company(suite, name="Modular Engineering")
    company["token"] = api.login(company["contact_email"], PASSWORD)
    return company


def claims_of(certificate: str) -> dict:
    payload = certificate.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def activate(api, license: dict, installation_id: str) -> tuple[int, dict]:
    answer = api.post(
        "/api/v1/activations",
        json={
            "license_id": license["license_id"],
            "password": license["activation_password"],
            "installation_id": installation_id,
            "machine_name": "CAD-WS-11",
        },
    )
    assert answer.status_code in (200, 201), answer.text
    return answer.status_code, answer.json()


def validation(api, certificate: str) -> dict:
    answer = api.post("/api/v1/validations", json={"certificate": certificate})
    assert answer.status_code == 200, answer.text
    return answer.json()


def listed(api, company: dict, license_id: str) -> dict:
    licenses = api.get("/api/v1/licenses", token=company["token"]).json()["licenses"]
    [found] = [item for item in licenses if item["license_id"] == license_id]
    return found


def test_a_feature_is_added_once_per_product(suite, product):
    again = suite.portalctl(
        "product", "feature", "add", "--product", product, "--code", "steel", "--name", "Again",
        check=False,
    )  # fmt: skip
    assert again.returncode != 0 and "feature_exists" in again.stderr, again.stderr


def test_issue_with_features_then_remove_one(suite, api, product, company, smtp_sink):
    license = suite.portalctl(
        "license", "issue", "--customer", company["customer_id"], "--product", product,
        "--seats", "2", "--features", "steel,dyn",
    )  # fmt: skip
    license_id = license["license_id"]
    # the portal shows them, sorted by code
    assert listed(api, company, license_id)["features"] == [DYN, STEEL]
    detail = api.get(f"/api/v1/licenses/{license_id}", token=company["token"]).json()
    assert detail["features"] == [DYN, STEEL]

    installation = f"feat-{uuid.uuid4().hex[:10]}"
    status, first = activate(api, license, installation)
    assert status == 201
    assert sorted(claims_of(first["certificate"])["features"]) == ["dyn", "steel"]
    assert sorted(validation(api, first["certificate"])["features"]) == ["dyn", "steel"]

    # an unknown code is refused by name, nothing changes
    unknown = suite.portalctl("license", "features", license_id, "--add", "fem", check=False)
    assert unknown.returncode != 0 and "unknown_feature" in unknown.stderr, unknown.stderr
    assert "fem" in unknown.stderr

    changed = suite.portalctl("license", "features", license_id, "--remove", "dyn")
    assert changed["features"] == [STEEL]
    # validation answers as of now, even for the certificate that still says dyn
    checked = validation(api, first["certificate"])
    assert (checked["code"], checked["features"]) == ("VALID", ["steel"])
    assert claims_of(checked["signed_answer"])["features"] == ["steel"]
    # a re-issued certificate (the same machine activates again) no longer carries it
    status, again = activate(api, license, installation)
    assert status == 200
    assert claims_of(again["certificate"])["features"] == ["steel"]
    assert listed(api, company, license_id)["features"] == [STEEL]

    mail = smtp_sink.wait_for(
        lambda message: (
            license_id in text_body(message) and "Dynamic analysis" in text_body(message)
        ),
        to=company["contact_email"],
        timeout=20,
    )
    body = text_body(mail)
    assert "removed" in body.lower(), body


def test_a_validation_of_a_license_without_features_answers_none(suite, api, product, company):
    license = suite.portalctl(
        "license", "issue", "--customer", company["customer_id"], "--product", product,
        "--seats", "1",
    )  # fmt: skip
    assert listed(api, company, license["license_id"])["features"] == []
    _, activated = activate(api, license, f"plain-{uuid.uuid4().hex[:10]}")
    assert claims_of(activated["certificate"]).get("features", []) == []
    assert validation(api, activated["certificate"])["features"] == []


def test_a_purchase_grants_the_plans_features(suite, api, product):
    plan = suite.portalctl(
        "plan", "create", "--code", f"{product}-steel", "--product", product,
        "--amount", "4900", "--currency", "EUR", "--interval", "month", "--features", "steel",
    )  # fmt: skip
    assert plan["features"] == ["steel"]
    refused = suite.portalctl(
        "plan", "create", "--code", f"{product}-fem", "--product", product,
        "--amount", "4900", "--currency", "EUR", "--interval", "month", "--features", "fem",
        check=False,
    )  # fmt: skip
    assert refused.returncode != 0 and "unknown_feature" in refused.stderr, refused.stderr

    buyer = new_company(suite, name="Steel Buyers")
    token = api.login(buyer["contact_email"], PASSWORD)
    catalog = api.get("/api/v1/catalog", token=token).json()
    [offered] = [item for item in catalog["products"] if item["code"] == product]
    [steel_plan] = [item for item in offered["plans"] if item["code"] == plan["code"]]
    assert steel_plan["features"] == [STEEL]

    bought = api.post(
        "/api/v1/purchases", token=token, json={"plan": plan["code"], "seats": 1, "card": CARD}
    )
    assert bought.status_code == 201, bought.text
    assert bought.json()["license_status"] == "issued", bought.text
    license = bought.json()["license"]
    licenses = api.get("/api/v1/licenses", token=token).json()["licenses"]
    [mine] = [item for item in licenses if item["license_id"] == license["license_id"]]
    assert mine["features"] == [STEEL]
    # the activation password, as the owner reads it on the license's page
    license = api.get(f"/api/v1/licenses/{license['license_id']}", token=token).json()
    _, activated = activate(api, license, f"bought-{uuid.uuid4().hex[:10]}")
    assert claims_of(activated["certificate"])["features"] == ["steel"]
    assert validation(api, activated["certificate"])["features"] == ["steel"]


def test_a_renewal_adds_the_plans_features(suite, api, product):
    plan = suite.portalctl(
        "plan", "create", "--code", f"{product}-renew", "--product", product,
        "--amount", "4900", "--currency", "EUR", "--interval", "month", "--features", "steel",
    )  # fmt: skip
    owner = new_company(suite, name="Renewing Engineering")
    token = api.login(owner["contact_email"], PASSWORD)
    license = suite.portalctl(
        "license", "issue", "--customer", owner["customer_id"], "--product", product,
        "--seats", "1", "--expires", "2099-12-31", "--features", "dyn",
    )  # fmt: skip
    renewed = api.post(
        "/api/v1/purchases",
        token=token,
        json={"plan": plan["code"], "seats": 1, "card": CARD, "license_id": license["license_id"]},
    )
    assert renewed.status_code == 201, renewed.text
    assert renewed.json()["license_status"] == "extended", renewed.text
    # the plan's features are added; the license's own stay
    assert listed(api, {"token": token}, license["license_id"])["features"] == [DYN, STEEL]
