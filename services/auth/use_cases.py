"""The account use cases: each takes the repository, plain data and `now`.

Writes return an `Outcome` that `UnitOfWork.run` commits with its events; a refused password
check is an `Outcome(error=...)`, so the failure that counts toward the throttle is committed
before the caller hears `invalid_credentials`. Reads return the view itself.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from common.unit_of_work import Outcome
from services.auth import domain, passwords, views
from services.auth.exceptions import (
    CompanyNotFound,
    EmailTaken,
    InvalidCredentials,
    InvalidToken,
    TooManyAttempts,
    Unauthenticated,
    WeakPassword,
)
from services.auth.models import Company, PasswordToken, Session
from services.auth.repository import AuthRepository


def _check_password(
    password: str, company: Company | None, field: str = "new_password", **identity: str
) -> None:
    """Raise `WeakPassword` naming `field`, the payload field the password came in."""
    if company is not None:
        identity = {"customer_id": company.customer_id, "email": company.contact_email}
    problems = domain.password_problems(password, **identity)
    if problems:
        raise WeakPassword(" ".join(problems), details={"fields": {field: problems}})


def _email_taken() -> EmailTaken:
    return EmailTaken(details={"fields": {"contact_email": ["Already registered."]}})


def _password_token(
    repo: AuthRepository, company: Company, purpose: str, lifetime: timedelta, now: datetime
) -> tuple[str, datetime]:
    """A single-use set-up or reset token, stored hashed: the raw token and its expiry."""
    raw, token_hash = domain.new_token()
    expires_at = now + lifetime
    repo.add(
        PasswordToken(
            company_id=company.id,
            token_hash=token_hash,
            purpose=purpose,
            created_at=now,
            expires_at=expires_at,
        )
    )
    return raw, expires_at


def create_company(
    repo: AuthRepository, data: dict[str, Any], now: datetime, portal_url: str
) -> Outcome:
    email = domain.normalize_email(data["contact_email"])
    password = data.get("password")
    customer_id = domain.new_customer_id()
    while repo.customer_id_exists(customer_id):
        customer_id = domain.new_customer_id()
    if password is not None:
        _check_password(password, None, "password", customer_id=customer_id, email=email)
    if repo.company_by_email(email) is not None:
        raise _email_taken()
    company = Company(
        customer_id=customer_id,
        name=data["name"].strip(),
        contact_name=data["contact_name"].strip(),
        contact_email=email,
        password_hash=passwords.hash_password(password) if password else None,
        password_changed_at=now if password else None,
        created_at=now,
    )
    if not repo.add_unique(company):  # a concurrent create with the same email won the race
        raise _email_taken()
    set_password_url = expires_at = None
    if password is None:
        raw, expires_at = _password_token(repo, company, "setup", domain.SETUP_LIFETIME, now)
        set_password_url = domain.reset_url(portal_url, raw)
    event = views.company_created(company, set_password_url, expires_at)
    return Outcome(views.company_view(company), [("company_created", event)])


def find_companies(repo: AuthRepository, query: str) -> list[dict[str, Any]]:
    return [views.company_view(company) for company in repo.search_companies(query)]


def get_company(repo: AuthRepository, customer_id: str) -> dict[str, Any]:
    company = repo.company_by_customer_id(customer_id)
    if company is None:
        raise CompanyNotFound(details={"customer_id": customer_id})
    return views.company_view(company)


def _find_company(repo: AuthRepository, login: str) -> Company | None:
    login = login.strip()
    if domain.looks_like_email(login):
        return repo.company_by_email(domain.normalize_email(login))
    return repo.company_by_customer_id(login)


def _throttle_key(login: str, company: Company | None) -> str:
    # both login forms of one company share one counter
    return f"company:{company.id}" if company else f"login:{domain.normalize_login(login)}"


def _check_throttle(repo: AuthRepository, key: str, now: datetime) -> None:
    """Refuse once the limit is reached; holds the key's lock until the transaction ends.

    Without the lock, ten guesses sent at once would all read "no failures yet" and all be
    checked; with it, each attempt sees the failures that the ones before it recorded.
    """
    repo.lock_attempts(key)
    decision = domain.throttle(repo.failures(key, now - domain.LOGIN_FAILURE_WINDOW), now)
    if not decision.allowed:
        raise TooManyAttempts(details={"retry_after": decision.retry_after})


def _record_failure(repo: AuthRepository, key: str, now: datetime) -> None:
    """Count a failed attempt, and forget the ones that left the window."""
    repo.record_failure(key, now)
    repo.clear_failures(key, before=now - domain.LOGIN_FAILURE_WINDOW)


def login(repo: AuthRepository, login_name: str, password: str, now: datetime) -> Outcome:
    """A session for the company, or `InvalidCredentials`; unknown logins look the same."""
    company = _find_company(repo, login_name)
    key = _throttle_key(login_name, company)
    _check_throttle(repo, key, now)
    if not passwords.verify_password(company.password_hash if company else None, password):
        _record_failure(repo, key, now)
        return Outcome(error=InvalidCredentials())
    repo.clear_failures(key)
    raw, token_hash = domain.new_token()
    expires_at = now + domain.SESSION_LIFETIME
    repo.add(
        Session(company_id=company.id, token_hash=token_hash, created_at=now, expires_at=expires_at)
    )
    if passwords.needs_rehash(company.password_hash):
        company.password_hash = passwords.hash_password(password)
    return Outcome(views.session_view(raw, expires_at, company))


def _live_session(repo: AuthRepository, token: str, now: datetime) -> tuple[Session, Company]:
    session = repo.live_session(domain.hash_token(token), now) if token else None
    if session is None:
        raise Unauthenticated()
    return session, repo.company_by_id(session.company_id)


def authenticate(repo: AuthRepository, token: str, now: datetime) -> dict[str, Any]:
    """The company of a live session; `Unauthenticated` for "" and any unknown token."""
    _, company = _live_session(repo, token, now)
    return views.company_view(company)


def logout(repo: AuthRepository, token: str, now: datetime) -> Outcome:
    if token:
        repo.revoke_session(domain.hash_token(token), now)
    return Outcome()


def change_password(
    repo: AuthRepository, token: str, current: str, new: str, now: datetime
) -> Outcome:
    session, company = _live_session(repo, token, now)
    key = _throttle_key("", company)
    _check_throttle(repo, key, now)
    if not passwords.verify_password(company.password_hash, current):
        _record_failure(repo, key, now)
        return Outcome(error=InvalidCredentials("The current password is incorrect."))
    _check_password(new, company)
    company = repo.company_by_id(company.id, lock=True)
    company.password_hash = passwords.hash_password(new)
    company.password_changed_at = now
    repo.revoke_sessions(company.id, now, keep_id=session.id)
    repo.invalidate_tokens(company.id, now)
    return Outcome(None, [("password_changed", views.password_changed(company, "change", now))])


def request_reset(repo: AuthRepository, login_name: str, now: datetime, portal_url: str) -> Outcome:
    """Email a reset link if the login names a company; the caller's answer never differs."""
    company = _find_company(repo, login_name)
    if company is None:
        return Outcome()
    recent = repo.recent_reset_requests(company.id, now - domain.RESET_EMAIL_WINDOW)
    if not domain.may_send_reset_email(recent, now):
        return Outcome()
    raw, expires_at = _password_token(repo, company, "reset", domain.RESET_LIFETIME, now)
    event = views.password_reset_requested(company, domain.reset_url(portal_url, raw), expires_at)
    return Outcome(None, [("password_reset_requested", event)])


def confirm_reset(repo: AuthRepository, token: str, new_password: str, now: datetime) -> Outcome:
    """Set a new password with a reset (or set-up) token; the token works once."""
    company_id = repo.consume_token(domain.hash_token(token), now) if token else None
    if company_id is None:
        raise InvalidToken()
    company = repo.company_by_id(company_id, lock=True)
    _check_password(new_password, company)
    company.password_hash = passwords.hash_password(new_password)
    company.password_changed_at = now
    repo.revoke_sessions(company.id, now)
    repo.invalidate_tokens(company.id, now)
    repo.clear_failures(_throttle_key("", company))
    return Outcome(None, [("password_changed", views.password_changed(company, "reset", now))])


def verify_company_password(repo: AuthRepository, customer_id: str, password: str) -> bool:
    """Whether `password` is the company's; an unknown company costs the same time, False."""
    company = repo.company_by_customer_id(customer_id)
    return passwords.verify_password(company.password_hash if company else None, password)


def prune_failures(repo: AuthRepository, now: datetime) -> Outcome:
    """Forget failed logins that left the throttle window (every key at once)."""
    repo.prune_failures(now - domain.LOGIN_FAILURE_WINDOW)
    return Outcome()
