"""Use cases of auth whose shape matters beyond their result: what they ask the repository."""

from __future__ import annotations

from datetime import UTC, datetime
from unittest.mock import create_autospec

import pytest

from services.auth import use_cases
from services.auth.models import PasswordRequest
from services.auth.repository import AuthRepository

NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize("login", ["ada@acme.test", "C1234567", "nobody@nowhere.test", " x "])
def test_a_reset_request_only_queues_the_login_whatever_it_names(login: str) -> None:
    repo = create_autospec(AuthRepository, instance=True)
    assert use_cases.request_reset(repo, login, NOW).events == []
    [(name, (request,), _)] = repo.method_calls
    assert name == "add" and isinstance(request, PasswordRequest)
    assert (request.status, request.purpose, request.login) == ("queued", "reset", login.strip())
    assert request.company_id is None
