"""Finding 8: CR, LF and other control characters in a machine name reached the text of
emails (the "new activation" notice) and logs. Now an activation whose machine name or
installation ID holds one is refused 422, naming the field, and takes no seat."""

from __future__ import annotations

import uuid

import pytest

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def license(suite) -> dict:
    email = f"names.{uuid.uuid4().hex[:10]}@example.test"
    company = suite.portalctl(
        "company", "create", "--name", "Name Checks", "--contact-name", "Ada",
        "--email", email, "--password", "Basalt-Orchard-Violin-73",
    )  # fmt: skip
    product = f"nam{uuid.uuid4().hex[:8]}"
    suite.portalctl("product", "create", "--code", product, "--name", "Named CAD")
    return suite.portalctl(
        "license", "issue", "--customer", company["customer_id"], "--product", product,
        "--seats", "2",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("machine_name", "CAD-WS-07\r\nBcc: everyone@example.test"),
        ("machine_name", "CAD-WS-07\nYour license was revoked, call +1 555 0100"),
        ("machine_name", "CAD\tWS"),
        ("machine_name", "CAD\u0085WS"),  # C1 NEXT LINE
        ("installation_id", "inst\r\n1"),
    ],
)
def test_control_characters_are_refused_naming_the_field(suite, api, license, field, value):
    body = {
        "license_id": license["license_id"],
        "password": license["activation_password"],
        "installation_id": "inst-1",
        "machine_name": "CAD-WS-07",
        field: value,
    }
    seats_in_use = suite.portalctl("license", "show", license["license_id"])["seats_in_use"]
    answer = api.post("/api/v1/activations", json=body)
    assert answer.status_code == 422, answer.text
    assert field in answer.json()["error"]["details"]["fields"]
    after = suite.portalctl("license", "show", license["license_id"])["seats_in_use"]
    assert after == seats_in_use


def test_unicode_names_are_still_welcome(api, license) -> None:
    body = {
        "license_id": license["license_id"],
        "password": license["activation_password"],
        "installation_id": "Ωmega/🖥️ 設計室",
        "machine_name": "Zeichenbüro – 設計室 №7",
    }
    answer = api.post("/api/v1/activations", json=body)
    assert answer.status_code == 201, answer.text
    assert answer.json()["activation"]["machine_name"] == body["machine_name"]
