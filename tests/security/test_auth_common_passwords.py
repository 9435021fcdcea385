"""Finding 8 (passwords): common passwords such as `password123` were accepted.

Now a password on the shipped list of weak patterns (`services/auth/common_passwords.txt`,
made by rules from keyboard walks, common words with digits, years and symbols) is refused,
whatever its case, wherever a password is set: creating a company, changing it, resetting it.
"""

from __future__ import annotations

import uuid

import pytest

pytestmark = pytest.mark.e2e

PASSWORD = "Copper-Meadow-Falcon-62"
COMMON = ["password123", "Qwerty12345", "Welcome2026!", "1q2w3e4r5t6y"]


def test_common_passwords_are_refused_wherever_a_password_is_set(suite, api) -> None:
    email = f"common.{uuid.uuid4().hex[:10]}@example.test"
    create = ["company", "create", "--name", "Common Ltd", "--contact-name", "Ada"]
    refused = suite.portalctl(*create, "--email", email, "--password", "Password123", check=False)
    assert refused.returncode != 0 and "weak_password" in refused.stdout + refused.stderr
    suite.portalctl(*create, "--email", email, "--password", PASSWORD)
    session = api.login(email, PASSWORD)
    for common in COMMON:
        answer = api.put(
            "/api/v1/account/password",
            token=session,
            json={"current_password": PASSWORD, "new_password": common},
        )
        assert answer.status_code == 422, (common, answer.text)
        error = answer.json()["error"]
        assert error["code"] == "weak_password"
        assert any("common" in problem for problem in error["details"]["fields"]["new_password"])
    assert api.login(email, PASSWORD)  # unchanged
