"""Finding 4 (logins): five wrong logins from anywhere locked the real company out for 15
minutes.

Now failures count per (account, client address) and per address, with growing delays: the
address that hammers the account waits longer and longer, and the company, from an address
of its own, logs in at once. The running suite over HTTP, each client bound to an address
of its own on the loopback network, so the gateway sees a different socket peer for each.
(The company password guessed through activations counting for logins too, finding 3, is
proven in test_licensing_activation_throttle.py and tests/unit/auth/test_service.py.)
"""

from __future__ import annotations

import uuid

import pytest

from tests.support.suite import Api
from tests.support.suite import client_at as suite_client_at

pytestmark = pytest.mark.e2e

PASSWORD = "Cobalt-Orchard-Lantern-31"


def client_at(suite) -> Api:
    return suite_client_at(suite.url)


def test_the_company_logs_in_from_its_address_while_another_hammers_the_account(suite) -> None:
    email = f"hammered.{uuid.uuid4().hex[:10]}@example.test"
    company = suite.portalctl(
        "company", "create", "--name", "Hammered Ltd", "--contact-name", "Ada",
        "--email", email, "--password", PASSWORD,
    )  # fmt: skip
    attacker, owner = client_at(suite), client_at(suite)
    # five used to lock the account out; five more double the guesser's wait five times
    for guess in range(10):
        login = (company["customer_id"], email)[guess % 2]
        answer = attacker.post("/api/v1/sessions", json={"login": login, "password": f"g-{guess}"})
        assert answer.status_code in (401, 429), answer.text
    # the hammering address is slowed down, even with the right password
    slowed = attacker.post(
        "/api/v1/sessions", json={"login": company["customer_id"], "password": PASSWORD}
    )
    assert slowed.status_code == 429, slowed.text
    assert slowed.json()["error"]["code"] == "too_many_attempts"
    assert (
        int(slowed.headers["Retry-After"]) == slowed.json()["error"]["details"]["retry_after"] > 0
    )
    # the company, from its own address, is not slowed at all, by either login form
    for login in (company["customer_id"], email):
        answer = owner.post("/api/v1/sessions", json={"login": login, "password": PASSWORD})
        assert answer.status_code == 201, answer.text
    # and its logins lift nothing of the attacker's delay
    again = attacker.post("/api/v1/sessions", json={"login": email, "password": PASSWORD})
    assert again.status_code == 429, again.text
