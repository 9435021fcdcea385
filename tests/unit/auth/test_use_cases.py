"""Use cases of auth whose shape matters beyond their result: what they ask the repository."""

from __future__ import annotations

from datetime import UTC, datetime
from unittest.mock import call, create_autospec

import pytest

from services.auth import domain, use_cases
from services.auth.models import PasswordRequest
from services.auth.repository import AuthRepository

NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
SINCE = NOW - domain.RESET_QUEUE_WINDOW
LOGINS = ["ada@acme.test", "C1234567", "nobody@nowhere.test", " x "]


def reset_repo(queued_from_address: int) -> AuthRepository:
    repo = create_autospec(AuthRepository, instance=True)
    repo.queued_resets_from.return_value = queued_from_address
    return repo


@pytest.mark.parametrize("login", LOGINS)
def test_a_reset_request_only_counts_its_address_and_queues_the_login(login: str) -> None:
    repo = reset_repo(0)
    assert use_cases.request_reset(repo, login, "203.0.113.7", NOW).events == []
    calls = repo.method_calls
    assert calls[:3] == [
        call.lock_reset_queue("203.0.113.7"),
        call.queued_resets_from("203.0.113.7", SINCE),
        call.record_queued_reset("203.0.113.7", NOW),
    ]
    [(name, (request,), _)] = calls[3:]
    assert name == "add" and isinstance(request, PasswordRequest)
    assert (request.status, request.purpose, request.login) == ("queued", "reset", login.strip())
    assert request.company_id is None


@pytest.mark.parametrize("login", LOGINS)
def test_beyond_its_share_an_address_is_answered_alike_and_nothing_is_queued(login: str) -> None:
    repo = reset_repo(domain.RESET_QUEUE_LIMIT)
    outcome = use_cases.request_reset(repo, login, "2001:db8:1:2::9", NOW)
    assert (outcome.result, outcome.events, outcome.error) == (None, [], None)
    # counted by its /48, and the login is never looked at
    assert repo.method_calls == [
        call.lock_reset_queue("2001:db8:1::/48"),
        call.queued_resets_from("2001:db8:1::/48", SINCE),
    ]


def test_callers_without_an_address_share_the_larger_unknown_share() -> None:
    repo = reset_repo(domain.RESET_QUEUE_LIMIT)
    use_cases.request_reset(repo, "ada@acme.test", None, NOW)
    assert repo.add.called
    repo = reset_repo(domain.RESET_QUEUE_LIMIT_UNKNOWN)
    use_cases.request_reset(repo, "ada@acme.test", None, NOW)
    assert not repo.add.called
    assert repo.queued_resets_from.call_args == call(domain.UNKNOWN_ADDRESS, SINCE)
