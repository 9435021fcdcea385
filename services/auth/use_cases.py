"""The account use cases: each takes the repository, plain data and `now`.

Companies, logins, sessions and passwords live here; the users of a company (invitations,
roles, preferences, and the helpers that make and change a user) in `users.py`.

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
)
from services.auth.models import Company, PasswordRequest, PasswordToken, Session, User
from services.auth.repository import QUEUED, AuthRepository
from services.auth.users import (
    check_password,
    company_of,
    email_in_use,
    new_user,
    password_request,
    store_password,
    token_user,
    user_entry,
)

RESOLVE_BATCH = 100  # queued reset requests resolved per transaction (the timer loops)


def email_taken() -> EmailTaken:
    return EmailTaken(details={"fields": {"contact_email": ["Already registered."]}})


def create_company(repo: AuthRepository, data: dict[str, Any], now: datetime) -> Outcome:
    """A company and its contact user (an owner): `active` with `password`, else `invited`
    and emailed a set-password link."""
    email = domain.normalize_email(data["contact_email"])
    password = data.get("password")
    customer_id = domain.new_customer_id()
    while repo.customer_id_exists(customer_id):
        customer_id = domain.new_customer_id()
    if password is not None:
        check_password(password, None, "password", customer_id=customer_id, email=email)
    repo.lock_email(email)
    if email_in_use(repo, email):
        raise email_taken()
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
        raise email_taken()
    status = domain.ACTIVE if password else domain.INVITED
    contact_data = {"email": email, "name": company.contact_name, "role": domain.OWNER}
    contact = new_user(repo, company, contact_data, status, now, contact=True)
    contact.password_changed_at = company.password_changed_at
    setup = None
    if password is None:
        setup = password_request(contact, "setup", now)
        repo.add(setup)
    event = views.company_created(company, setup)
    return Outcome(views.company_view(company), [("company_created", event)])


def update_company(
    repo: AuthRepository, customer_id: str, changes: dict[str, Any], now: datetime
) -> Outcome:
    """Change the name, contact name and/or contact email of a company (staff).

    `EmailTaken` when another company or another user has the email (in any case). The
    contact user keeps the company's contact name and email. A new contact email voids the
    password links sent to the old one (a typo's owner must not set the password):
    `resend_invite` sends a fresh one to the new address.
    """
    company = company_of(repo, customer_id, lock=True)
    contact = repo.contact_of(company.id)
    if "name" in changes:
        company.name = changes["name"].strip()
    if "contact_name" in changes:
        company.contact_name = contact.name = changes["contact_name"].strip()
    if "contact_email" in changes:
        email = domain.normalize_email(changes["contact_email"])
        if email != company.contact_email:
            repo.lock_email(email)
            if email_in_use(repo, email, contact):
                raise email_taken()
            company.contact_email = contact.email = email
            repo.invalidate_tokens(contact.id, now)
    return Outcome(views.company_view(company))


def resend_invite(repo: AuthRepository, customer_id: str, now: datetime) -> Outcome:
    """A fresh set-password request for a company that has no password yet (staff).

    The links of earlier requests stop working (their tokens are voided and the requests
    closed, so notify gets no new link for them either); `company_invited` announces the new
    request, which notify emails like the welcome. `PasswordAlreadySet` when the company
    has a password: then a password reset is the tool, and nothing changes.
    """
    company = company_of(repo, customer_id, lock=True)
    if company.password_hash is not None:
        raise PasswordAlreadySet(details={"customer_id": company.customer_id})
    contact = repo.contact_of(company.id)
    repo.invalidate_tokens(contact.id, now)
    setup = password_request(contact, "setup", now)
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


def _find_user(repo: AuthRepository, login: str) -> tuple[Company | None, User | None]:
    """The user a login names: an email names its user (in any company), a customer ID
    the company's contact user."""
    login = login.strip()
    if domain.looks_like_email(login):
        user = repo.user_by_email(domain.normalize_email(login))
        if user is None:
            return None, None
        return repo.company_by_id(user.company_id), user
    company = repo.company_by_customer_id(login)
    if company is None:
        return None, None
    return company, repo.contact_of(company.id)


def _company_key(company: Company) -> str:
    return f"company:{company.id}"


def _throttle_key(login: str, user: User | None) -> str:
    # both login forms of the contact share one counter with the company-wide password
    # tried at an activation (by customer ID); every other user has their own
    if user is None:
        return f"login:{domain.normalize_login(login)}"
    return f"company:{user.company_id}" if user.is_contact else f"user:{user.id}"


def _password_hash(company: Company | None, user: User | None) -> str | None:
    """The hash a login of `user` is checked against; None (no password matches) for an
    unknown login and for users who are invited or disabled."""
    if user is None or company is None:
        return None
    if user.is_contact:
        return company.password_hash  # the company-wide password
    return user.password_hash if user.status == domain.ACTIVE else None


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
    """A session for the user the login names, or `InvalidCredentials`; unknown logins,
    invited and disabled users look the same (and cost the same work).

    Audited: `login_succeeded`, and `login_failed` for a login that names a user (an unknown
    login names no company to file it under).
    """
    company, user = _find_user(repo, login_name)
    key = _throttle_key(login_name, user)
    address = domain.address_key(client_address)
    password_hash = _password_hash(company, user)
    if not _password_matches(repo, key, address, password_hash, password, now):
        return _login_failed(company, user, now)
    # The user was read unlocked, and the password check is slow: a removal, a disabling or
    # a new password may have committed since. They all lock the company's row first, so
    # take it (then the user's, in that order) and look again before opening a session.
    company = repo.lock_company(company.id)
    user = repo.user_by_pk(user.id, lock=True)
    if user is None or _password_hash(company, user) != password_hash:
        return _login_failed(company, user, now)
    raw, token_hash = domain.new_token()
    expires_at = now + domain.SESSION_LIFETIME
    repo.add(
        Session(
            company_id=company.id,
            user_pk=user.id,
            token_hash=token_hash,
            created_at=now,
            expires_at=expires_at,
        )
    )
    user.last_login_at = now
    if passwords.needs_rehash(password_hash):
        if user.is_contact:
            company.password_hash = passwords.hash_password(password)
        else:
            user.password_hash = passwords.hash_password(password)
    return Outcome(
        views.session_view(raw, expires_at, company, user),
        audit=[user_entry(company, user, "login_succeeded", now)],
    )


def _login_failed(company: Company | None, user: User | None, now: datetime) -> Outcome:
    """`InvalidCredentials`, audited `login_failed` when the login names a user."""
    entries = []
    if user is not None:
        entries.append(user_entry(company, user, "login_failed", now, reason=_why(user)))
    return Outcome(error=InvalidCredentials(), audit=entries)


def _why(user: User) -> str:
    """The `login_failed` reason the trail gives an owner (the caller hears none)."""
    if user.is_contact or user.status == domain.ACTIVE:
        return "wrong_password"
    return "user_disabled" if user.status == domain.DISABLED else "invitation_pending"


def _live_session(repo: AuthRepository, token: str, now: datetime) -> tuple[Session, Company, User]:
    """The live session of `token`, its company and its user; `Unauthenticated` also when
    the user was disabled or removed since (their sessions are revoked then anyway)."""
    session = repo.live_session(domain.hash_token(token), now) if token else None
    user = repo.user_by_pk(session.user_pk) if session is not None else None
    if session is None or user is None or user.status == domain.DISABLED:
        raise Unauthenticated()
    return session, repo.company_by_id(session.company_id), user


def authenticate(repo: AuthRepository, token: str, now: datetime) -> dict[str, Any]:
    """The company of a live session with its `user`; `Unauthenticated` for "" and any
    unknown token."""
    _, company, user = _live_session(repo, token, now)
    return views.authenticated(company, user)


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
    """Change the session user's password (the contact's is the company-wide one). A wrong
    current password is counted like a failed login of that user from `client_address`
    (None: unknown). Revokes the user's other sessions; audited `password_changed`."""
    session, company, user = _live_session(repo, token, now)
    key = _throttle_key("", user)
    address = domain.address_key(client_address)
    if not _password_matches(repo, key, address, _password_hash(company, user), current, now):
        return Outcome(error=InvalidCredentials("The current password is incorrect."))
    check_password(new, company, user=user)
    company = repo.company_by_id(company.id, lock=True)
    user = repo.user_by_pk(user.id, lock=True)
    store_password(company, user, new, now)
    repo.revoke_sessions(user.id, now, keep_id=session.id)
    repo.invalidate_tokens(user.id, now)
    return Outcome(
        None,
        [("password_changed", views.password_changed(company, user, "change", now))],
        audit=[user_entry(company, user, "password_changed", now)],
    )


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
    """Work off up to RESOLVE_BATCH queued reset requests: one whose login names a user (an
    email names its user, a customer ID the contact) who may reset (the contact, or an
    active user) and has not had RESET_EMAIL_LIMIT reset emails within RESET_EMAIL_WINDOW is
    opened and announced (`password_reset_requested`, which notify emails to the user); the
    others are forgotten. The result is how many left the queue: fewer than RESOLVE_BATCH
    when it is empty (of what another instance is not resolving)."""
    events = []
    requests = repo.queued_requests(RESOLVE_BATCH)
    for request in requests:
        company, user = _find_user(repo, request.login or "")
        may_reset = user is not None and (user.is_contact or user.status == domain.ACTIVE)
        if not may_reset or request.expires_at <= now:
            repo.drop_request(request)
            continue
        # the user's row lock serialises the count with other instances
        user = repo.user_by_pk(user.id, lock=True)
        recent = repo.recent_reset_requests(user.id, now - domain.RESET_EMAIL_WINDOW)
        if not domain.may_send_reset_email(recent, now):
            repo.drop_request(request)
            continue
        repo.open_request(request, user)
        event = views.password_reset_requested(company, user, request)
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
            user_pk=request.user_pk,
            request_pk=request.id,
            token_hash=token_hash,
            purpose=request.purpose,
            created_at=now,
            expires_at=request.expires_at,
        )
    )
    if request.purpose == "invite":
        url = domain.accept_url(portal_url, raw)
    else:
        url = domain.reset_url(portal_url, raw)
    return Outcome(views.password_link(url, request.expires_at))


def confirm_reset(repo: AuthRepository, token: str, new_password: str, now: datetime) -> Outcome:
    """Set a new password with a reset (or set-up) token; the token works once. Revokes the
    user's sessions and lifts their login throttle; audited `password_reset`."""
    company, user = token_user(repo, token, ("reset", "setup"), now)
    check_password(new_password, company, user=user)
    store_password(company, user, new_password, now)
    repo.revoke_sessions(user.id, now)
    repo.invalidate_tokens(user.id, now)
    repo.clear_failures(_throttle_key("", user))
    return Outcome(
        None,
        [("password_changed", views.password_changed(company, user, "reset", now))],
        audit=[user_entry(company, user, "password_reset", now)],
    )


def check_token(repo: AuthRepository, token: str, now: datetime) -> dict[str, Any]:
    """Whether a password link's token still works, before anyone types a password: the
    token's purpose, and the email and company whose password it sets. Nothing is used up
    or written. `InvalidToken` with `details.reason` "used" (or voided by a newer link or a
    password set), "expired", or "unknown" (no such token, or its user is disabled: the
    answer says nothing more of an account than confirming would)."""
    found = repo.password_token(domain.hash_token(token)) if token else None
    if found is None or found[1].status == domain.DISABLED:
        raise InvalidToken(details={"reason": domain.TOKEN_UNKNOWN})
    password_token, user, company = found
    problem = domain.token_problem(password_token.used_at, password_token.expires_at, now)
    if problem is not None:
        raise InvalidToken(details={"reason": problem})
    return views.token_check(password_token, user, company)


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
    key = _company_key(company) if company else f"login:{domain.normalize_login(customer_id)}"
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
