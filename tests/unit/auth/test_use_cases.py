"""Use cases of auth whose shape matters beyond their result: what they ask the repository."""

from __future__ import annotations

from datetime import UTC, datetime
from unittest.mock import call, create_autospec

import pytest

from common.audit import SYSTEM
from services.auth import domain, passwords, use_cases, users
from services.auth.exceptions import InvalidCredentials, LastOwner
from services.auth.models import Company, PasswordRequest, User
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


# --- users (issue 13) -----------------------------------------------------------------------


def _company() -> Company:
    return Company(id=7, customer_id="C1234567", name="Acme", contact_email="ada@acme.test")


def _user(pk: int, status: str, role: str = "owner", contact: bool = False) -> User:
    return User(
        id=pk,
        user_id=f"U-AAAA-{pk:04d}",
        company_id=7,
        email=f"u{pk}@acme.test",
        name="U",
        role=role,
        status=status,
        password_hash="$argon2id$stored",
        is_contact=contact,
    )


@pytest.mark.parametrize(
    ("status", "reason"), [("disabled", "user_disabled"), ("invited", "invitation_pending")]
)
def test_an_invited_or_disabled_user_is_checked_like_an_unknown_login(
    monkeypatch, status: str, reason: str
) -> None:
    repo = create_autospec(AuthRepository, instance=True)
    repo.user_by_email.return_value = _user(3, status)
    repo.company_by_id.return_value = _company()
    repo.failures.return_value = []
    checked = []
    monkeypatch.setattr(
        passwords, "verify_password", lambda stored, given: checked.append(stored) or False
    )
    outcome = use_cases.login(repo, "U3@acme.test", "right password", "203.0.113.7", NOW)
    assert checked == [None]  # the dummy hash's work, whatever their own hash
    assert isinstance(outcome.error, InvalidCredentials)
    assert repo.record_failure.call_args == call("user:3", "203.0.113.7", NOW)
    [entry] = outcome.audit
    assert (entry.action, entry.details, entry.actor.user_id) == (
        "login_failed",
        {"reason": reason},
        "U-AAAA-0003",
    )
    assert not repo.add.called  # no session


def _login_repo(monkeypatch, locked: User | None) -> AuthRepository:
    """A repository whose user 3 logs in with the right password, and is `locked` once the
    login takes the locks (what a removal, disabling or reset committed meanwhile left)."""
    repo = create_autospec(AuthRepository, instance=True)
    repo.user_by_email.return_value = _user(3, "active")
    repo.company_by_id.return_value = _company()
    repo.lock_company.return_value = _company()
    repo.user_by_pk.return_value = locked
    repo.failures.return_value = []
    monkeypatch.setattr(passwords, "verify_password", lambda stored, given: True)
    monkeypatch.setattr(passwords, "needs_rehash", lambda stored: False)
    return repo


def test_a_login_locks_the_company_then_the_user_before_opening_a_session(monkeypatch) -> None:
    locked = _user(3, "active")
    repo = _login_repo(monkeypatch, locked)
    outcome = use_cases.login(repo, "u3@acme.test", "right password", "203.0.113.7", NOW)
    assert outcome.error is None
    assert repo.lock_company.call_args == call(7)
    assert repo.user_by_pk.call_args == call(3, lock=True)
    [session] = [c.args[0] for c in repo.add.call_args_list]
    assert session.user_pk == 3
    assert locked.last_login_at == NOW


@pytest.mark.parametrize(
    ("locked", "reason"),
    [
        (None, None),
        (_user(3, "disabled"), "user_disabled"),
        (_user(3, "invited"), "invitation_pending"),
    ],
)
def test_a_user_removed_or_disabled_during_the_password_check_gets_no_session(
    monkeypatch, locked: User | None, reason: str | None
) -> None:
    repo = _login_repo(monkeypatch, locked)
    outcome = use_cases.login(repo, "u3@acme.test", "right password", "203.0.113.7", NOW)
    assert isinstance(outcome.error, InvalidCredentials)
    assert not repo.add.called  # no session
    assert [entry.details for entry in outcome.audit] == ([{"reason": reason}] if reason else [])


def test_a_password_changed_during_the_check_gets_no_session(monkeypatch) -> None:
    changed = _user(3, "active")
    changed.password_hash = "$argon2id$new"
    repo = _login_repo(monkeypatch, changed)
    outcome = use_cases.login(repo, "u3@acme.test", "old password", "203.0.113.7", NOW)
    assert isinstance(outcome.error, InvalidCredentials)
    assert not repo.add.called


@pytest.mark.parametrize("change", ["disable", "remove", "demote"])
def test_the_last_active_owner_is_refused_before_anything_changes(change: str) -> None:
    repo = create_autospec(AuthRepository, instance=True)
    owner = _user(3, "active")
    repo.company_by_customer_id.return_value = _company()
    repo.user_by_user_id.return_value = owner
    # the contact has not set its password: the owner is the only active one
    repo.users_of.return_value = [_user(1, "invited", contact=True), owner, _user(4, "invited")]
    with pytest.raises(LastOwner):
        if change == "disable":
            users.disable_user(repo, "C1234567", owner.user_id, SYSTEM, NOW)
        elif change == "remove":
            users.remove_user(repo, "C1234567", owner.user_id, SYSTEM, NOW)
        else:
            users.update_user(repo, "C1234567", owner.user_id, {"role": "viewer"}, SYSTEM, NOW)
    assert repo.company_by_customer_id.call_args == call("C1234567", lock=True)
    assert not repo.revoke_sessions.called and not repo.delete_user.called
    assert owner.status == "active" and owner.role == "owner"
