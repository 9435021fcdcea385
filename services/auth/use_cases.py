"""The account use cases: each takes the repository, plain data and `now`.

Writes return an `Outcome` that `UnitOfWork.run` commits with its events; a refused password
check is an `Outcome(error=...)`, so the failure that counts toward the throttle is committed
before the caller hears `invalid_credentials`. Reads return the view itself.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from common import identifiers
from common.unit_of_work import Outcome
from services.auth import domain, passwords, views
from services.auth.exceptions import (
    CompanyNotFound,
    EmailTaken,
    InvalidCredentials,
    InvalidToken,
    PasswordAlreadySet,
    TooManyAttempts,
    Unauthenticated,
    WeakPassword,
)
from services.auth.models import Company, PasswordRequest, PasswordToken, Session
from services.auth.repository import OPEN, QUEUED, AuthRepository

RESOLVE_BATCH = 100  # queued reset requests resolved per transaction (the timer loops)


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


def _company(repo: AuthRepository, customer_id: str, lock: bool = False) -> Company:
    company = repo.company_by_customer_id(customer_id, lock=lock)
    if company is None:
        raise CompanyNotFound(details={"customer_id": customer_id})
    return company


def _setup_request(company: Company, now: datetime) -> PasswordRequest:
    """A set-password request for a company without a password: its link is made when
    notify sends the email (`password_link`)."""
    return PasswordRequest(
        request_id=domain.new_request_id(),
        purpose="setup",
        status=OPEN,
        company_id=company.id,
        created_at=now,
        expires_at=now + domain.SETUP_LIFETIME,
    )


def create_company(repo: AuthRepository, data: dict[str, Any], now: datetime) -> Outcome:
    email = domain.normalize_email(data["contact_email"])
    password = data.get("password")
    customer_id = domain.new_customer_id()
    while repo.customer_id_exists(customer_id):
        customer_id = domain.new_customer_id()
    if password is not None:
        _check_password(password, None, "password", customer_id=customer_id, email=email)
    repo.lock_email(email)
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
    setup = None
    if password is None:
        setup = _setup_request(company, now)
        repo.add(setup)
    event = views.company_created(company, setup)
    return Outcome(views.company_view(company), [("company_created", event)])


def update_company(
    repo: AuthRepository, customer_id: str, changes: dict[str, Any], now: datetime
) -> Outcome:
    """Change the name, contact name and/or contact email of a company (staff).

    `EmailTaken` when another company has the email (in any case). A new contact email
    voids the password links sent to the old one (a typo's owner must not set the
    password): `resend_invite` sends a fresh one to the new address.
    """
    company = _company(repo, customer_id, lock=True)
    if "name" in changes:
        company.name = changes["name"].strip()
    if "contact_name" in changes:
        company.contact_name = changes["contact_name"].strip()
    if "contact_email" in changes:
        email = domain.normalize_email(changes["contact_email"])
        if email != company.contact_email:
            repo.lock_email(email)
            if repo.company_by_email(email) is not None:
                raise _email_taken()
            company.contact_email = email
            repo.invalidate_tokens(company.id, now)
    return Outcome(views.company_view(company))


def resend_invite(repo: AuthRepository, customer_id: str, now: datetime) -> Outcome:
    """A fresh set-password request for a company that has no password yet (staff).

    The links of earlier requests stop working (their tokens are voided and the requests
    closed, so notify gets no new link for them either); `company_invited` announces the new
    request, which notify emails like the welcome. `PasswordAlreadySet` when the company
    has a password: then a password reset is the tool, and nothing changes.
    """
    company = _company(repo, customer_id, lock=True)
    if company.password_hash is not None:
        raise PasswordAlreadySet(details={"customer_id": company.customer_id})
    repo.invalidate_tokens(company.id, now)
    setup = _setup_request(company, now)
    repo.add(setup)
    event = views.company_invited(company, setup)
    return Outcome(views.invite_view(company), [("company_invited", event)])


def find_companies(repo: AuthRepository, query: str) -> list[dict[str, Any]]:
    return [views.company_view(company) for company in repo.search_companies(query)]


def get_company(repo: AuthRepository, lookup: str) -> dict[str, Any]:
    """The company of a customer ID or of a contact email (either in any case)."""
    company = _find_company(repo, lookup) if lookup else None
    if company is None:
        if domain.looks_like_email(lookup):
            raise CompanyNotFound(
                "No company with this contact email.", details={"contact_email": lookup.strip()}
            )
        raise CompanyNotFound(details={"customer_id": identifiers.customer_id(lookup)})
    return views.company_view(company)


def _find_company(repo: AuthRepository, login: str) -> Company | None:
    login = login.strip()
    if domain.looks_like_email(login):
        return repo.company_by_email(domain.normalize_email(login))
    return repo.company_by_customer_id(login)


def _throttle_key(login: str, company: Company | None) -> str:
    # both login forms of one company share one counter, and so does its company-wide
    # password tried at an activation (by customer ID)
    return f"company:{company.id}" if company else f"login:{domain.normalize_login(login)}"


def _check_throttle(repo: AuthRepository, key: str, address: str, now: datetime) -> None:
    """Refuse while a delay of (`key`, `address`) or of `address` runs; holds the lock of
    `key` until the transaction ends.

    Without the lock, ten guesses at one account sent at once would all read "no failures
    yet" and all be checked; with it, each sees the failures that the ones before recorded.
    The address is not locked: that would queue every login of an office behind one NAT,
    and guesses at many accounts at once overshoot its allowance by at most as many as run
    at once before its delays apply. The unknown address has no counter of its own (see
    `domain.counts_per_address`): only (`key`, unknown) counts.
    """
    repo.lock_attempts(key)
    address_failures = []
    if domain.counts_per_address(address):
        address_failures = repo.failures(now - domain.ADDRESS_FAILURE_WINDOW, address=address)
    decision = domain.throttle(
        repo.failures(now - domain.ACCOUNT_FAILURE_WINDOW, address=address, key=key),
        address_failures,
        now,
    )
    if not decision.allowed:
        raise TooManyAttempts(details={"retry_after": decision.retry_after})


def _password_matches(
    repo: AuthRepository,
    key: str,
    address: str,
    password_hash: str | None,
    password: str,
    now: datetime,
) -> bool:
    """Check a password under the throttle of (`key`, `address`): `TooManyAttempts` while a
    delay runs; a failure is recorded, a success forgets this address's failures on `key`
    (never another address's: the owner's login must not lift an attacker's delays)."""
    _check_throttle(repo, key, address, now)
    if passwords.verify_password(password_hash, password):
        repo.clear_failures(key, address)
        return True
    repo.record_failure(key, address, now)
    return False


def login(
    repo: AuthRepository,
    login_name: str,
    password: str,
    client_address: str | None,
    now: datetime,
) -> Outcome:
    """A session for the company, or `InvalidCredentials`; unknown logins look the same."""
    company = _find_company(repo, login_name)
    key = _throttle_key(login_name, company)
    address = domain.address_key(client_address)
    password_hash = company.password_hash if company else None
    if not _password_matches(repo, key, address, password_hash, password, now):
        return Outcome(error=InvalidCredentials())
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
    repo: AuthRepository,
    token: str,
    current: str,
    new: str,
    client_address: str | None,
    now: datetime,
) -> Outcome:
    """A wrong current password is counted like a failed login of the company from
    `client_address` (None: unknown)."""
    session, company = _live_session(repo, token, now)
    key = _throttle_key("", company)
    address = domain.address_key(client_address)
    if not _password_matches(repo, key, address, company.password_hash, current, now):
        return Outcome(error=InvalidCredentials("The current password is incorrect."))
    _check_password(new, company)
    company = repo.company_by_id(company.id, lock=True)
    company.password_hash = passwords.hash_password(new)
    company.password_changed_at = now
    repo.revoke_sessions(company.id, now, keep_id=session.id)
    repo.invalidate_tokens(company.id, now)
    return Outcome(None, [("password_changed", views.password_changed(company, "change", now))])


def request_reset(
    repo: AuthRepository, login_name: str, client_address: str | None, now: datetime
) -> Outcome:
    """Queue a reset request for `resolve_reset_requests`: the same statements whatever the
    login, so that neither the answer nor the time it takes tells whether the login exists.

    Beyond `domain.may_queue_reset`'s share of `client_address` (None: unknown) the request
    is answered the same way but not queued: one address cannot flood the queue. That
    decision looks at the address alone, so it tells nothing about the login either.
    """
    address = domain.address_key(client_address)
    repo.lock_reset_queue(address)
    queued = repo.queued_resets_from(address, now - domain.RESET_QUEUE_WINDOW)
    if not domain.may_queue_reset(address, queued):
        return Outcome()
    repo.record_queued_reset(address, now)
    repo.add(
        PasswordRequest(
            request_id=domain.new_request_id(),
            purpose="reset",
            status=QUEUED,
            login=login_name.strip(),
            created_at=now,
            expires_at=now + domain.RESET_LIFETIME,
        )
    )
    return Outcome()


def resolve_reset_requests(repo: AuthRepository, now: datetime) -> Outcome:
    """Work off up to RESOLVE_BATCH queued reset requests: one whose login names a company
    that has not had RESET_EMAIL_LIMIT reset emails within RESET_EMAIL_WINDOW is opened and
    announced (`password_reset_requested`, which notify emails); the others are forgotten.
    The result is how many left the queue: fewer than RESOLVE_BATCH when it is empty (of
    what another instance is not resolving)."""
    events = []
    requests = repo.queued_requests(RESOLVE_BATCH)
    for request in requests:
        company = _find_company(repo, request.login or "")
        if company is None or request.expires_at <= now:
            repo.drop_request(request)
            continue
        # the company's row lock serialises the count with other instances
        company = repo.company_by_id(company.id, lock=True)
        recent = repo.recent_reset_requests(company.id, now - domain.RESET_EMAIL_WINDOW)
        if not domain.may_send_reset_email(recent, now):
            repo.drop_request(request)
            continue
        repo.open_request(request, company.id)
        event = views.password_reset_requested(company, request)
        events.append(("password_reset_requested", event))
    return Outcome(len(requests), events)


def password_link(repo: AuthRepository, request_id: str, now: datetime, portal_url: str) -> Outcome:
    """A link with a fresh single-use token for an open request: notify asks for it when it
    sends the request's email, so the raw token exists only in that email (and only its hash
    here). `InvalidToken` once the request is unknown, expired, or closed (its password set).

    A retried send gets a new token, and the tokens of earlier sends stay valid until the
    request expires or any of them is used: a send that reached the mail server before its
    outcome was recorded is retried with the same Message-ID, which a mail system may drop
    as a duplicate, and the first email's link must then still work.
    """
    request = repo.live_request(request_id, now) if request_id else None
    if request is None:
        raise InvalidToken()
    raw, token_hash = domain.new_token()
    repo.add(
        PasswordToken(
            company_id=request.company_id,
            request_pk=request.id,
            token_hash=token_hash,
            purpose=request.purpose,
            created_at=now,
            expires_at=request.expires_at,
        )
    )
    return Outcome(views.password_link(domain.reset_url(portal_url, raw), request.expires_at))


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


def verify_company_password(
    repo: AuthRepository,
    customer_id: str,
    password: str,
    client_address: str | None,
    now: datetime,
) -> Outcome:
    """Whether `password` is the company's, checked and counted exactly like a login by
    customer ID (one budget of guesses whichever way the password is tried); an unknown
    company costs the same time and answers False; `TooManyAttempts` while a delay runs."""
    company = repo.company_by_customer_id(customer_id) if customer_id else None
    key = _throttle_key(customer_id, company)
    address = domain.address_key(client_address)
    password_hash = company.password_hash if company else None
    return Outcome(_password_matches(repo, key, address, password_hash, password, now))


def prune(repo: AuthRepository, now: datetime) -> Outcome:
    """Forget failures that left the throttle window, the addresses of reset requests that
    left theirs, and requests (with their tokens) that expired more than REQUEST_KEEP ago."""
    repo.prune_failures(now - domain.FAILURE_KEEP)
    repo.prune_queued_resets(now - domain.RESET_QUEUE_WINDOW)
    repo.prune_requests(now - domain.REQUEST_KEEP)
    return Outcome()
