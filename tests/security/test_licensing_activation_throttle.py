"""Findings 3 and 4: activation guesses slow the guesser down, never the customer.

The running suite over HTTP, each client from an address of its own on the loopback network
(127.x.y.z are all this machine's, so the gateway sees a different socket peer for each).

- Finding 4: ten wrong activations from one address used to lock the license's real
  activations out for 15 minutes, from anywhere; now the product at another address
  activates at once, with the license's password and with the company password.
- Finding 3: the company-wide password tried through `POST /api/v1/activations` was counted
  by no login throttle; now a wrong one there counts in auth's one counter, as at login.
"""

from __future__ import annotations

import uuid

import pytest

from tests.support.suite import Api
from tests.support.suite import client_at as suite_client_at

pytestmark = pytest.mark.e2e

COMPANY_PASSWORD = "Quartz-Meadow-Lantern-58"


def client_at(suite) -> Api:
    return suite_client_at(suite.url)


@pytest.fixture(scope="module")
def company(suite) -> dict:
    email = f"throttle.{uuid.uuid4().hex[:10]}@example.test"
    return suite.portalctl(
        "company", "create", "--name", "Throttle Works", "--contact-name", "Ada",
        "--email", email, "--password", COMPANY_PASSWORD,
    )  # fmt: skip


@pytest.fixture(scope="module")
def product(suite) -> str:
    code = f"thr{uuid.uuid4().hex[:8]}"
    suite.portalctl("product", "create", "--code", code, "--name", "Throttled CAD")
    return code


@pytest.fixture
def license(suite, company, product) -> dict:
    return suite.portalctl(
        "license", "issue", "--customer", company["customer_id"], "--product", product,
        "--seats", "5",
    )  # fmt: skip


def activation(license: dict, password: str, installation: str) -> dict:
    return {
        "license_id": license["license_id"],
        "password": password,
        "installation_id": installation,
        "machine_name": f"WS {installation}",
    }


def test_guesses_from_one_address_never_lock_the_license_out_elsewhere(suite, license) -> None:
    attacker, product = client_at(suite), client_at(suite)
    for guess in range(10):  # ten used to lock the license out, from anywhere, for 15 minutes
        answer = attacker.post(
            "/api/v1/activations", json=activation(license, f"guess-{guess}", "x")
        )
        assert answer.status_code in (401, 429), answer.text
    refused = attacker.post(
        "/api/v1/activations", json=activation(license, license["activation_password"], "x")
    )
    assert refused.status_code == 429, refused.text  # the guesser waits (5 s, then longer)
    assert int(refused.headers["Retry-After"]) > 0

    own = activation(license, license["activation_password"], "ws-1")
    answer = product.post("/api/v1/activations", json=own)
    assert answer.status_code == 201, answer.text
    by_company = activation(license, COMPANY_PASSWORD, "ws-2")
    by_company = product.post("/api/v1/activations", json=by_company)
    assert by_company.status_code == 201, by_company.text


def test_the_company_password_at_an_activation_counts_like_a_login(suite, company, license) -> None:
    guesser, owner = client_at(suite), client_at(suite)
    login = {"login": company["customer_id"]}
    for guess in range(3):
        wrong = guesser.post("/api/v1/sessions", json={**login, "password": f"login-{guess}"})
        assert wrong.status_code == 401, wrong.text
    for guess in range(2):
        wrong = guesser.post("/api/v1/activations", json=activation(license, f"act-{guess}", "g"))
        assert wrong.status_code == 401, wrong.text
    # five failures of one counter, whichever door they came through: the guesser waits
    slowed = guesser.post("/api/v1/sessions", json={**login, "password": COMPANY_PASSWORD})
    assert slowed.status_code == 429, slowed.text
    slowed = guesser.post("/api/v1/activations", json=activation(license, COMPANY_PASSWORD, "g"))
    assert slowed.status_code == 429, slowed.text
    # while the owner, from elsewhere, is not slowed at all
    assert owner.post("/api/v1/sessions", json={**login, "password": COMPANY_PASSWORD}).ok
    answer = owner.post("/api/v1/activations", json=activation(license, COMPANY_PASSWORD, "o"))
    assert answer.status_code == 201, answer.text
