"""Account use cases: each takes a repository and plain data, returns plain data.

The nameko service opens the transaction and dispatches the resulting events after commit;
these functions only decide and write.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError

from common.timeutil import iso
from services.auth import domain, passwords
from services.auth.exceptions import (
    CompanyNotFound,
    EmailTaken,
    InvalidToken,
    TooManyAttempts,
    Unauthenticated,
    WeakPassword,
)
from services.auth.models import Company, PasswordToken, Session
from services.auth.repository import AuthRepository


@dataclass
class Outcome:
    """What a use case returns: its result and the events to publish once committed."""

    result: Any = None
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    # a failed password check: recorded for throttling, committed, then answered 401
    rejected: bool = False


def company_view(company: Company) -> dict[str, Any]:
    return {
        "customer_id": company.customer_id,
        "name": company.name,
        "contact_name": company.contact_name,
        "contact_email": company.contact_email,
        "has_password": company.password_hash is not None,
        "created_at": iso(company.created_at),
    }


def _check_password(
    password: str, company: Company | None, field: str = "new_password", **identity: str
) -> None:
    """Raise `WeakPassword` naming `field`, the payload field the password came in."""
    if company is not None:
        identity = {"customer_id": company.customer_id, "email": company.contact_email}
    problems = domain.password_problems(password, **identity)
    if problems:
        raise WeakPassword(" ".join(problems), details={"fields": {field: problems}})


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
        raise EmailTaken(details={"fields": {"contact_email": ["Already registered."]}})
    company = Company(
        customer_id=customer_id,
        name=data["name"].strip(),
        contact_name=data["contact_name"].strip(),
        contact_email=email,
        password_hash=passwords.hash_password(password) if password else None,
        password_changed_at=now if password else None,
        created_at=now,
    )
    try:
        repo.add(company)
    except IntegrityError as exc:  # a concurrent create with the same email won the race
        raise EmailTaken(details={"fields": {"contact_email": ["Already registered."]}}) from exc
    event = {"company": company_view(company), "set_password_url": None}
    if password is None:
        raw, token_hash = domain.new_token()
        repo.add(
            PasswordToken(
                company_id=company.id,
                token_hash=token_hash,
                purpose="setup",
                created_at=now,
                expires_at=now + domain.SETUP_LIFETIME,
            )
        )
        event["set_password_url"] = domain.reset_url(portal_url, raw)
        event["expires_at"] = iso(now + domain.SETUP_LIFETIME)
    return Outcome(company_view(company), [("company_created", event)])


def find_company(repo: AuthRepository, login: str) -> Company | None:
    login = login.strip()
    if domain.looks_like_email(login):
        return repo.company_by_email(domain.normalize_email(login))
    return repo.company_by_customer_id(login)


def _throttle_key(login: str, company: Company | None) -> str:
    # both login forms of one company share one counter
    return f"company:{company.id}" if company else f"login:{domain.normalize_login(login)}"


def check_throttle(repo: AuthRepository, key: str, now: datetime) -> None:
    """Refuse once the limit is reached; holds the key's lock until the transaction ends.

    Without the lock, ten guesses sent at once would all read "no failures yet" and all be
    checked; with it, each attempt sees the failures that the ones before it recorded.
    """
    repo.lock_attempts(key)
    decision = domain.throttle(repo.failures(key, now - domain.LOGIN_FAILURE_WINDOW), now)
    if not decision.allowed:
        raise TooManyAttempts(details={"retry_after": decision.retry_after})


def login(repo: AuthRepository, login_name: str, password: str, now: datetime) -> Outcome:
    """A session for the company, or `InvalidCredentials`; unknown logins look the same."""
    company = find_company(repo, login_name)
    key = _throttle_key(login_name, company)
    check_throttle(repo, key, now)
    ok = passwords.verify_password(company.password_hash if company else None, password)
    if not ok:
        record_failure(repo, key, now)
        return Outcome(rejected=True)
    repo.clear_failures(key)
    raw, token_hash = domain.new_token()
    expires_at = now + domain.SESSION_LIFETIME
    repo.add(
        Session(company_id=company.id, token_hash=token_hash, created_at=now, expires_at=expires_at)
    )
    if passwords.needs_rehash(company.password_hash):
        company.password_hash = passwords.hash_password(password)
    return Outcome({"token": raw, "expires_at": iso(expires_at), "company": company_view(company)})


def record_failure(repo: AuthRepository, key: str, now: datetime) -> None:
    """Count a failed attempt, and forget the ones that left the window."""
    repo.record_failure(key, now)
    repo.clear_failures(key, before=now - domain.LOGIN_FAILURE_WINDOW)


def authenticate(repo: AuthRepository, token: str, now: datetime) -> tuple[Session, Company]:
    session = repo.live_session(domain.hash_token(token), now) if token else None
    if session is None:
        raise Unauthenticated()
    company = repo.company_by_id(session.company_id)
    return session, company


def change_password(
    repo: AuthRepository, token: str, current: str, new: str, now: datetime
) -> Outcome:
    session, company = authenticate(repo, token, now)
    key = _throttle_key("", company)
    check_throttle(repo, key, now)
    if not passwords.verify_password(company.password_hash, current):
        record_failure(repo, key, now)
        return Outcome(rejected=True)
    _check_password(new, company)
    company = repo.company_by_id(company.id, lock=True)
    company.password_hash = passwords.hash_password(new)
    company.password_changed_at = now
    repo.revoke_sessions(company.id, now, keep_id=session.id)
    repo.invalidate_tokens(company.id, now)
    return Outcome(None, [("password_changed", _password_changed(company, "change", now))])


def _password_changed(company: Company, how: str, now: datetime) -> dict[str, Any]:
    return {"company": company_view(company), "how": how, "changed_at": iso(now)}


def request_reset(repo: AuthRepository, login_name: str, now: datetime, portal_url: str) -> Outcome:
    """Email a reset link if the login names a company; the caller's answer never differs."""
    company = find_company(repo, login_name)
    if company is None:
        return Outcome()
    recent = repo.recent_reset_requests(company.id, now - domain.RESET_EMAIL_WINDOW)
    if not domain.may_send_reset_email(recent, now):
        return Outcome()
    raw, token_hash = domain.new_token()
    expires_at = now + domain.RESET_LIFETIME
    repo.add(
        PasswordToken(
            company_id=company.id,
            token_hash=token_hash,
            purpose="reset",
            created_at=now,
            expires_at=expires_at,
        )
    )
    event = {
        "company": company_view(company),
        "reset_url": domain.reset_url(portal_url, raw),
        "expires_at": iso(expires_at),
    }
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
    return Outcome(None, [("password_changed", _password_changed(company, "reset", now))])


def get_company(repo: AuthRepository, customer_id: str) -> dict[str, Any]:
    company = repo.company_by_customer_id(customer_id)
    if company is None:
        raise CompanyNotFound(details={"customer_id": customer_id})
    return company_view(company)


def verify_company_password(repo: AuthRepository, customer_id: str, password: str) -> bool:
    company = repo.company_by_customer_id(customer_id)
    return passwords.verify_password(company.password_hash if company else None, password)
