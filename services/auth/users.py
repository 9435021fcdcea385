"""The users of a company: making a user and setting their password (`use_cases.py` uses
these too), invitations, roles, disabling, removal, notification preferences, who receives a
notice, and auth's part of the audit trail.

Like `use_cases.py`, each takes the repository, plain data and `now`; the changes take the
acting `audit.Actor` (the gateway's user, staff, or the system) for the trail and the
events. Every change locks the company's row first, so that two owners demoting each other
at once cannot both find another active owner.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from common import audit, identifiers
from common.errors import validation_error
from common.unit_of_work import Outcome
from services.auth import domain, passwords, views
from services.auth.exceptions import (
    CompanyNotFound,
    ContactIsOwner,
    EmailTaken,
    InvalidToken,
    InvitationNotPending,
    LastOwner,
    UserNotFound,
    WeakPassword,
)
from services.auth.models import Company, PasswordRequest, User
from services.auth.repository import OPEN, AuthRepository

# --- making and changing users (use_cases.py uses these too) -------------------------------


def check_password(
    password: str,
    company: Company | None,
    field: str = "new_password",
    user: User | None = None,
    **identity: str,
) -> None:
    """Raise `WeakPassword` naming `field`, the payload field the password came in; the
    password must not contain the customer ID nor the email of `user` (default: the
    company's contact)."""
    if company is not None:
        email = user.email if user is not None else company.contact_email
        identity = {"customer_id": company.customer_id, "email": email}
    problems = domain.password_problems(password, **identity)
    if problems:
        raise WeakPassword(" ".join(problems), details={"fields": {field: problems}})


def email_in_use(repo: AuthRepository, email: str, user: User | None = None) -> bool:
    """Whether a user other than `user` (or a company's contact) has the normalised `email`;
    call under `repo.lock_email(email)`."""
    other = repo.user_by_email(email)
    if other is not None and (user is None or other.id != user.id):
        return True
    company = repo.company_by_email(email)
    return company is not None and (user is None or company.id != user.company_id)


def company_of(repo: AuthRepository, customer_id: str, lock: bool = False) -> Company:
    company = repo.company_by_customer_id(customer_id, lock=lock)
    if company is None:
        raise CompanyNotFound(details={"customer_id": customer_id})
    return company


def password_request(user: User, purpose: str, now: datetime) -> PasswordRequest:
    """A set-password request (`setup` for a new company's contact, `invite` for an invited
    user): its link is made when notify sends the email (`password_link`)."""
    return PasswordRequest(
        request_id=domain.new_request_id(),
        purpose=purpose,
        status=OPEN,
        company_id=user.company_id,
        user_pk=user.id,
        created_at=now,
        expires_at=now + domain.SETUP_LIFETIME,
    )


def new_user(
    repo: AuthRepository,
    company: Company,
    data: dict[str, Any],
    status: str,
    now: datetime,
    contact: bool = False,
) -> User:
    """Add a user `{email, name, role}` (email normalised) with the role's default notices."""
    user_id = domain.new_user_id()
    while repo.user_id_exists(user_id):
        user_id = domain.new_user_id()
    user = User(
        user_id=user_id,
        company_id=company.id,
        email=data["email"],
        name=data["name"],
        role=data["role"],
        status=status,
        password_hash=None,
        created_at=now,
        is_contact=contact,
    )
    set_preferences(user, domain.default_preferences(user.role))
    repo.add(user)
    return user


def set_preferences(user: User, preferences: dict[str, bool]) -> None:
    for notice in domain.NOTICES:
        setattr(user, f"notify_{notice}", bool(preferences[notice]))


def user_entry(
    company: Company,
    user: User,
    action: str,
    now: datetime,
    actor: audit.Actor | None = None,
    **details: Any,
) -> audit.AuditEntry:
    """An audit entry about `user` (the target), by `actor` (default: the user)."""
    actor = actor or audit.user_actor(views.user_summary(user))
    return audit.entry(company.customer_id, actor, action, ("user", user.user_id), now, **details)


def store_password(company: Company, user: User, password: str, now: datetime) -> None:
    """Set `user`'s password (the contact's is the company-wide one) and make them active."""
    password_hash = passwords.hash_password(password)
    if user.is_contact:
        company.password_hash = password_hash
        company.password_changed_at = now
    else:
        user.password_hash = password_hash
    user.password_changed_at = now
    user.status = domain.ACTIVE


def token_user(
    repo: AuthRepository, token: str, purposes: tuple[str, ...], now: datetime
) -> tuple[Company, User]:
    """Use up a token of one of `purposes` (for this transaction: a refusal after it rolls
    the use back); its company and user, locked. `InvalidToken` when it is unknown, used,
    expired, of another purpose, or its user is disabled."""
    user_pk = repo.consume_token(domain.hash_token(token), purposes, now) if token else None
    user = repo.user_by_pk(user_pk) if user_pk is not None else None
    if user is None:
        raise InvalidToken()
    # the company's row first, then the user's: the order every change of a user locks in
    company = repo.company_by_id(user.company_id, lock=True)
    user = repo.user_by_pk(user_pk, lock=True)
    if user is None or user.status == domain.DISABLED:
        raise InvalidToken()
    return company, user


# --- managing a company's users --------------------------------------------------------------


def _by(actor: audit.Actor) -> str:
    """How the user events name who acted: the user's email, or "staff"."""
    return actor.email or "staff"


def _user(
    repo: AuthRepository, customer_id: str, user_id: str, lock: bool = False
) -> tuple[Company, User]:
    """The company of `customer_id` and its user `user_id`; `UserNotFound` also for another
    company's user (which must look like nobody's). With `lock`, the company's row is locked
    until commit."""
    company = company_of(repo, customer_id, lock=lock)
    user = repo.user_by_user_id(user_id) if user_id else None
    if user is None or user.company_id != company.id:
        raise UserNotFound(details={"user_id": identifiers.user_id(user_id or "")})
    return company, user


def _view(repo: AuthRepository, user: User, now: datetime) -> dict[str, Any]:
    expires = repo.invitation_expires_at(user.id, now) if user.status == domain.INVITED else None
    return views.user_view(user, expires)


def _keep_an_owner(
    repo: AuthRepository, company: Company, user: User, active_owner_after: bool
) -> None:
    """`LastOwner` when the change would leave the company without an active owner."""
    owners = {
        other.user_id
        for other in repo.users_of(company.id)
        if other.role == domain.OWNER and other.status == domain.ACTIVE
    }
    if domain.leaves_no_active_owner(owners, user.user_id, active_owner_after):
        raise LastOwner(details={"user_id": user.user_id})


def _not_the_contact(user: User) -> None:
    if user.is_contact:
        raise ContactIsOwner(details={"user_id": user.user_id})


def list_users(repo: AuthRepository, customer_id: str, now: datetime) -> dict[str, Any]:
    """`{"users": [view…]}`: the contact first, then by email."""
    company = company_of(repo, customer_id)
    return {"users": [_view(repo, user, now) for user in repo.users_of(company.id)]}


def find_user(repo: AuthRepository, lookup: str, now: datetime) -> dict[str, Any]:
    """A user by email or user ID (staff), with the customer ID of their company."""
    lookup = lookup.strip()
    if domain.looks_like_email(lookup):
        user = repo.user_by_email(domain.normalize_email(lookup))
    else:
        user = repo.user_by_user_id(lookup) if lookup else None
    if user is None:
        raise UserNotFound("No user with this email or user ID.", details={"lookup": lookup})
    company = repo.company_by_id(user.company_id)
    expires = repo.invitation_expires_at(user.id, now) if user.status == domain.INVITED else None
    return views.found_user(user, company, expires)


def _invitation(
    repo: AuthRepository, company: Company, user: User, actor: audit.Actor, now: datetime
) -> tuple[str, dict[str, Any]]:
    """A new invitation request of `user`, and its `user_invited` event."""
    request = password_request(user, "invite", now)
    repo.add(request)
    return ("user_invited", views.user_invited(company, user, request, _by(actor)))


def invite_user(
    repo: AuthRepository, customer_id: str, data: dict[str, Any], actor: audit.Actor, now: datetime
) -> Outcome:
    """An `invited` user `{email, name, role}` and an invitation valid SETUP_LIFETIME,
    announced by `user_invited` (notify emails the link). `EmailTaken` when any user, of any
    company, has the email."""
    company = company_of(repo, customer_id, lock=True)
    email = domain.normalize_email(data["email"])
    repo.lock_email(email)
    if email_in_use(repo, email):
        raise EmailTaken(
            "A user with this email already exists.",
            details={"fields": {"email": ["Already registered."]}},
        )
    fields = {"email": email, "name": data["name"].strip(), "role": data["role"]}
    user = new_user(repo, company, fields, domain.INVITED, now)
    event = _invitation(repo, company, user, actor, now)
    entry = user_entry(company, user, "user_invited", now, actor, email=user.email, role=user.role)
    return Outcome(_view(repo, user, now), [event], audit=[entry])


def resend_invitation(
    repo: AuthRepository, customer_id: str, user_id: str, actor: audit.Actor, now: datetime
) -> Outcome:
    """A fresh invitation for an `invited` user: earlier links stop working, and a new
    `user_invited` has notify email the new one. `InvitationNotPending` otherwise."""
    company, user = _user(repo, customer_id, user_id, lock=True)
    if user.status != domain.INVITED:
        raise InvitationNotPending(details={"user_id": user.user_id, "status": user.status})
    repo.invalidate_tokens(user.id, now)
    event = _invitation(repo, company, user, actor, now)
    entry = user_entry(
        company, user, "invitation_resent", now, actor, email=user.email, role=user.role
    )
    return Outcome(_view(repo, user, now), [event], audit=[entry])


def accept_invitation(repo: AuthRepository, token: str, password: str, now: datetime) -> Outcome:
    """Set an invited user's password with their invitation token (once): they are `active`
    and may log in; no session is opened. `InvalidToken` for unknown, used or expired tokens
    and for tokens of another purpose (a reset link accepts nothing)."""
    company, user = token_user(repo, token, ("invite",), now)
    if user.status != domain.INVITED:
        raise InvalidToken()
    check_password(password, company, "password", user=user)
    store_password(company, user, password, now)
    repo.invalidate_tokens(user.id, now)
    return Outcome(None, audit=[user_entry(company, user, "invitation_accepted", now)])


def update_user(
    repo: AuthRepository,
    customer_id: str,
    user_id: str,
    changes: dict[str, Any],
    actor: audit.Actor,
    now: datetime,
) -> Outcome:
    """A new name and/or role. The contact keeps the owner role (`ContactIsOwner`; its name
    is the company's contact name); a demotion must leave an active owner (`LastOwner`). A
    new role turns off the notices it may not receive; announced by `user_role_changed`."""
    company, user = _user(repo, customer_id, user_id, lock=True)
    events, entries = [], []
    role = changes.get("role", user.role)
    if role != user.role:
        _not_the_contact(user)
        still_owner = role == domain.OWNER and user.status == domain.ACTIVE
        _keep_an_owner(repo, company, user, still_owner)
        old_role, user.role = user.role, role
        set_preferences(user, domain.preferences_for_role(views.preferences(user), role))
        event = views.user_role_changed(company, user, old_role, _by(actor))
        events.append(("user_role_changed", event))
        entries.append(
            user_entry(
                company, user, "user_role_changed", now, actor, old_role=old_role, new_role=role
            )
        )
    if "name" in changes:
        user.name = changes["name"].strip()
        if user.is_contact:
            company.contact_name = user.name
    return Outcome(_view(repo, user, now), events, audit=entries)


def disable_user(
    repo: AuthRepository, customer_id: str, user_id: str, actor: audit.Actor, now: datetime
) -> Outcome:
    """Disable a user: their sessions are revoked and their links voided at once; they can
    no longer log in. Not the contact (`ContactIsOwner`), nor the last active owner
    (`LastOwner`). Disabling a disabled user changes nothing."""
    company, user = _user(repo, customer_id, user_id, lock=True)
    _not_the_contact(user)
    if user.status == domain.DISABLED:
        return Outcome(_view(repo, user, now))
    _keep_an_owner(repo, company, user, False)
    user.status = domain.DISABLED
    repo.revoke_sessions(user.id, now)
    repo.invalidate_tokens(user.id, now)
    event = views.user_disabled(company, user, _by(actor))
    entry = user_entry(company, user, "user_disabled", now, actor, email=user.email, role=user.role)
    return Outcome(_view(repo, user, now), [("user_disabled", event)], audit=[entry])


def enable_user(
    repo: AuthRepository, customer_id: str, user_id: str, actor: audit.Actor, now: datetime
) -> Outcome:
    """Enable a disabled user again: `active` if they had set a password, else `invited`
    (their earlier links stay void: `resend_invitation` sends a new one). Enabling a user
    who is not disabled changes nothing."""
    company, user = _user(repo, customer_id, user_id, lock=True)
    if user.status != domain.DISABLED:
        return Outcome(_view(repo, user, now))
    user.status = domain.ACTIVE if user.password_hash else domain.INVITED
    entry = user_entry(company, user, "user_enabled", now, actor, email=user.email, role=user.role)
    return Outcome(_view(repo, user, now), audit=[entry])


def remove_user(
    repo: AuthRepository, customer_id: str, user_id: str, actor: audit.Actor, now: datetime
) -> Outcome:
    """Forget a user with their sessions and links (removing an invited user revokes the
    invitation); the trail keeps their email. Not the contact, nor the last active owner."""
    company, user = _user(repo, customer_id, user_id, lock=True)
    _not_the_contact(user)
    _keep_an_owner(repo, company, user, False)
    entry = user_entry(company, user, "user_removed", now, actor, email=user.email, role=user.role)
    repo.delete_user(user)
    return Outcome(None, audit=[entry])


def get_preferences(repo: AuthRepository, customer_id: str, user_id: str) -> dict[str, Any]:
    """`{"preferences": {notice: bool}, "available": [the notices of the user's role]}`."""
    _, user = _user(repo, customer_id, user_id)
    return views.preferences_view(user)


def update_preferences(
    repo: AuthRepository,
    customer_id: str,
    user_id: str,
    changes: dict[str, bool],
    actor: audit.Actor,
    now: datetime,
) -> Outcome:
    """Turn notices on or off (those not named stay); turning on one the role may not
    receive is a `validation_error` naming it. Audited with what changed."""
    company, user = _user(repo, customer_id, user_id, lock=True)
    refused = domain.refused_notices(changes, user.role)
    if refused:
        message = f"Not available to the {user.role} role."
        raise validation_error({"preferences": {notice: [message] for notice in refused}})
    before = views.preferences(user)
    after = {**before, **changes}
    set_preferences(user, after)
    changed = {notice: on for notice, on in after.items() if before[notice] != on}
    entries = []
    if changed:
        entries.append(
            user_entry(company, user, "notification_preferences_changed", now, actor, **changed)
        )
    return Outcome(views.preferences_view(user), audit=entries)


def notice_recipients(repo: AuthRepository, customer_id: str, notice: str) -> list[dict[str, Any]]:
    """Who of the company receives `notice`: users whose role may receive it and who have
    it on, contact first. Active users, and the contact whatever its status: it is the
    company's address of record, emailed before it has set a password as it always was."""
    company = company_of(repo, customer_id)
    return [
        views.recipient(user)
        for user in repo.users_of(company.id)
        if (user.status == domain.ACTIVE or user.is_contact)
        and notice in domain.notices_of(user.role)
        and views.preferences(user)[notice]
    ]
