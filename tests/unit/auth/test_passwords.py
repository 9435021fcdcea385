"""Company passwords are hashed with argon2id at the OWASP parameters."""

from __future__ import annotations

import re

import pytest
from argon2 import PasswordHasher, Type

from services.auth import passwords

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def stored() -> str:
    return passwords.hash_password(PASSWORD)


def _parameters(encoded: str) -> tuple[str, dict[str, int]]:
    """`$argon2id$v=19$m=19456,t=2,p=1$salt$hash` → ("argon2id", {"m": 19456, ...})."""
    match = re.fullmatch(r"\$(argon2\w+)\$v=(\d+)\$([^$]+)\$([^$]+)\$([^$]+)", encoded)
    assert match, encoded
    params = dict(item.split("=") for item in match.group(3).split(","))
    return match.group(1), {key: int(value) for key, value in params.items()}


def test_hash_is_argon2id_with_owasp_parameters(stored: str) -> None:
    variant, params = _parameters(stored)
    assert variant == "argon2id"
    assert params == {"m": 19456, "t": 2, "p": 1}


def test_hash_is_salted_and_never_the_password(stored: str) -> None:
    assert PASSWORD not in stored
    assert passwords.hash_password(PASSWORD) != stored


def test_the_right_password_verifies(stored: str) -> None:
    assert passwords.verify_password(stored, PASSWORD) is True


@pytest.mark.parametrize("attempt", ["correct horse batterY", "", PASSWORD + " ", "x" * 200])
def test_a_wrong_password_does_not_verify(stored: str, attempt: str) -> None:
    assert passwords.verify_password(stored, attempt) is False


def test_an_unknown_hash_never_verifies() -> None:
    # an unknown login (no company) or a company without a password yet
    assert passwords.verify_password(None, PASSWORD) is False
    assert passwords.verify_password(None, "not-a-real-password-0") is False
    assert passwords.verify_password("", "not-a-real-password-0") is False


def test_a_malformed_hash_does_not_verify_or_raise() -> None:
    assert passwords.verify_password("not a hash", PASSWORD) is False


def test_current_hashes_need_no_rehash_but_weaker_ones_do(stored: str) -> None:
    assert passwords.needs_rehash(stored) is False
    weak = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1, type=Type.ID)
    assert passwords.needs_rehash(weak.hash(PASSWORD)) is True
