"""The shipped list of common passwords is what its rules make, and nothing else."""

from __future__ import annotations

from services.auth import common_passwords, domain


def test_the_shipped_file_is_the_output_of_the_rules() -> None:
    # after changing a rule: python -m services.auth.common_passwords > services/auth/...txt
    assert domain.COMMON_PASSWORDS.read_text(encoding="utf-8") == common_passwords.render()


def test_the_rules_write_the_patterns_people_choose() -> None:
    entries = set(common_passwords.entries())
    for expected in ("password123", "qwerty12345", "welcome2026!", "1qaz2wsx3edc", "1234567890"):
        assert expected in entries
    # too short for the length rule, so not worth listing
    assert "admin123" not in entries
