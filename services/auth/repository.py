"""The queries the account rules need, behind one small class per unit of work."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session as DbSession

from common import audit, identifiers
from common.db import add_unique, advisory_xact_lock
from services.auth.models import (
    AuditEvent,
    AuthBase,
    Company,
    LoginFailure,
    PasswordRequest,
    PasswordToken,
    ResetRequestAddress,
    Session,
    User,
)

QUEUED, OPEN, CLOSED = "queued", "open", "closed"  # PasswordRequest.status


class AuthRepository:
    def __init__(self, session: DbSession) -> None:
        self.session = session

    def add(self, entity: AuthBase) -> None:
        self.session.add(entity)
        self.session.flush()

    # companies
    def add_unique(self, company: Company) -> bool:
        """Insert `company` unless its email or customer ID is taken, also by a create running
        at this moment; True (and `company.id` set) if it is new.

        INSERT … ON CONFLICT DO NOTHING: the loser of a race finds the key taken without an
        IntegrityError that would spoil the transaction.
        """
        return add_unique(self.session, company)

    def company_by_customer_id(self, customer_id: str, lock: bool = False) -> Company | None:
        """The company of `customer_id` in any case and with spaces around (stored canonical)."""
        query = select(Company).where(Company.customer_id == identifiers.customer_id(customer_id))
        if lock:
            query = query.with_for_update()
        return self.session.scalar(query)

    def company_by_email(self, email: str) -> Company | None:
        """The company whose contact email is `email` (normalised: stored lower-cased)."""
        return self.session.scalar(select(Company).where(Company.contact_email == email))

    def lock_email(self, email: str) -> None:
        """Serialise the writes that give a company the (normalised) `email` until commit: a
        create and a change of contact email to the same address, at the same moment, would
        both find it free; the unique index would then fail the second with an error."""
        advisory_xact_lock(self.session, "company-email", email)

    def company_by_id(self, company_id: int, lock: bool = False) -> Company | None:
        """The company of a primary key; with `lock`, locked until commit and read afresh."""
        query = select(Company).where(Company.id == company_id)
        if lock:
            query = query.with_for_update().execution_options(populate_existing=True)
        return self.session.scalar(query)

    def customer_id_exists(self, customer_id: str) -> bool:
        return self.company_by_customer_id(customer_id) is not None

    def search_companies(self, query: str, limit: int = 50) -> list[Company]:
        text = query.strip()
        pattern = (
            "%" + text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        )
        return list(
            self.session.scalars(
                select(Company)
                .where(
                    or_(
                        Company.customer_id == identifiers.customer_id(text),
                        Company.contact_email == text.lower(),
                        func.lower(Company.name).like(pattern, escape="\\"),
                        Company.contact_email.like(pattern, escape="\\"),
                    )
                )
                .order_by(Company.name, Company.id)
                .limit(limit)
            )
        )

    # sessions
    def live_session(self, token_hash: str, now: datetime) -> Session | None:
        return self.session.scalar(
            select(Session).where(
                Session.token_hash == token_hash,
                Session.revoked_at.is_(None),
                Session.expires_at > now,
            )
        )

    def revoke_sessions(self, user_pk: int, now: datetime, keep_id: int | None = None) -> int:
        """Revoke the live sessions of one user (but `keep_id`'s)."""
        query = update(Session).where(Session.user_pk == user_pk, Session.revoked_at.is_(None))
        if keep_id is not None:
            query = query.where(Session.id != keep_id)
        return self.session.execute(query.values(revoked_at=now)).rowcount

    def revoke_session(self, token_hash: str, now: datetime) -> None:
        self.session.execute(
            update(Session)
            .where(Session.token_hash == token_hash, Session.revoked_at.is_(None))
            .values(revoked_at=now)
        )

    # password requests and their one-time tokens
    def queued_requests(self, limit: int) -> list[PasswordRequest]:
        """The oldest queued requests, locked; those another instance is resolving are skipped."""
        return list(
            self.session.scalars(
                select(PasswordRequest)
                .where(PasswordRequest.status == QUEUED)
                .order_by(PasswordRequest.created_at, PasswordRequest.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        )

    def drop_request(self, request: PasswordRequest) -> None:
        self.session.delete(request)
        self.session.flush()

    def open_request(self, request: PasswordRequest, user: User) -> None:
        """A resolved reset request: it names its user now, and no longer the login."""
        request.status, request.company_id, request.login = OPEN, user.company_id, None
        request.user_pk = user.id
        self.session.flush()

    def live_request(self, request_id: str, now: datetime) -> PasswordRequest | None:
        """The open, unexpired request of `request_id`, or None."""
        return self.session.scalar(
            select(PasswordRequest).where(
                PasswordRequest.request_id == request_id,
                PasswordRequest.status == OPEN,
                PasswordRequest.expires_at > now,
            )
        )

    def recent_reset_requests(self, user_pk: int, since: datetime) -> list[datetime]:
        """When the reset requests of the user that were emailed since `since` were made."""
        return list(
            self.session.scalars(
                select(PasswordRequest.created_at).where(
                    PasswordRequest.user_pk == user_pk,
                    PasswordRequest.purpose == "reset",
                    PasswordRequest.status != QUEUED,
                    PasswordRequest.created_at > since,
                )
            )
        )

    def lock_reset_queue(self, address: str) -> None:
        """Serialise the reset requests of one client address until commit, so that requests
        sent at once do not all count the same number queued before them."""
        advisory_xact_lock(self.session, "reset-queue", address)

    def queued_resets_from(self, address: str, since: datetime) -> int:
        """How many reset requests from `address` were queued since `since`."""
        return self.session.scalar(
            select(func.count(ResetRequestAddress.id)).where(
                ResetRequestAddress.address == address, ResetRequestAddress.at > since
            )
        )

    def record_queued_reset(self, address: str, now: datetime) -> None:
        self.session.add(ResetRequestAddress(address=address, at=now))

    def prune_queued_resets(self, before: datetime) -> None:
        self.session.execute(delete(ResetRequestAddress).where(ResetRequestAddress.at < before))

    def password_token(self, token_hash: str) -> tuple[PasswordToken, User, Company] | None:
        """The token of this hash with its user and company, whatever its state (one query,
        nothing locked: `check_password_token` only looks)."""
        row = self.session.execute(
            select(PasswordToken, User, Company)
            .join(User, User.id == PasswordToken.user_pk)
            .join(Company, Company.id == PasswordToken.company_id)
            .where(PasswordToken.token_hash == token_hash)
        ).first()
        return None if row is None else (row[0], row[1], row[2])

    def consume_token(
        self, token_hash: str, purposes: tuple[str, ...], now: datetime
    ) -> int | None:
        """Mark the token used, atomically, if it is of one of `purposes`; its user's
        primary key, or None if it was not usable."""
        result = self.session.execute(
            update(PasswordToken)
            .where(
                PasswordToken.token_hash == token_hash,
                PasswordToken.purpose.in_(purposes),
                PasswordToken.used_at.is_(None),
                PasswordToken.expires_at > now,
            )
            .values(used_at=now)
            .returning(PasswordToken.user_pk)
        )
        return result.scalar()

    def invalidate_tokens(self, user_pk: int, now: datetime) -> None:
        """Void every outstanding token of the user, and close their open requests (no
        new link is made for them)."""
        self.session.execute(
            update(PasswordToken)
            .where(PasswordToken.user_pk == user_pk, PasswordToken.used_at.is_(None))
            .values(used_at=now)
        )
        self.session.execute(
            update(PasswordRequest)
            .where(PasswordRequest.user_pk == user_pk, PasswordRequest.status == OPEN)
            .values(status=CLOSED, closed_at=now)
        )

    def invitation_expires_at(self, user_pk: int, now: datetime) -> datetime | None:
        """When the user's open invitation expires (None: none open)."""
        return self.session.scalar(
            select(func.max(PasswordRequest.expires_at)).where(
                PasswordRequest.user_pk == user_pk,
                PasswordRequest.purpose.in_(("invite", "setup")),
                PasswordRequest.status == OPEN,
                PasswordRequest.expires_at > now,
            )
        )

    def prune_requests(self, expired_before: datetime) -> None:
        """Forget requests and tokens that expired before `expired_before` (a token expires
        with its request, so no token of a request outlives it)."""
        self.session.execute(delete(PasswordToken).where(PasswordToken.expires_at < expired_before))
        self.session.execute(
            delete(PasswordRequest).where(PasswordRequest.expires_at < expired_before)
        )

    # users
    def lock_company(self, company_id: int) -> Company | None:
        """Serialise with the changes to a company's users until commit (each locks the
        company's row first); the company, read afresh."""
        return self.company_by_id(company_id, lock=True)

    def user_by_pk(self, user_pk: int, lock: bool = False) -> User | None:
        """The user of a primary key; with `lock`, locked until commit and read afresh (a
        copy read before the lock may predate another transaction's change)."""
        query = select(User).where(User.id == user_pk)
        if lock:
            query = query.with_for_update().execution_options(populate_existing=True)
        return self.session.scalar(query)

    def user_by_email(self, email: str) -> User | None:
        """The user whose email is `email` (normalised: stored lower-cased), in any company."""
        return self.session.scalar(select(User).where(User.email == email))

    def user_by_user_id(self, user_id: str) -> User | None:
        """The user of `user_id` in any case and with spaces around (stored canonical)."""
        return self.session.scalar(select(User).where(User.user_id == identifiers.user_id(user_id)))

    def contact_of(self, company_id: int) -> User | None:
        return self.session.scalar(
            select(User).where(User.company_id == company_id, User.is_contact.is_(True))
        )

    def users_of(self, company_id: int) -> list[User]:
        """The company's users: the contact first, then by email."""
        return list(
            self.session.scalars(
                select(User)
                .where(User.company_id == company_id)
                .order_by(User.is_contact.desc(), User.email)
            )
        )

    def user_id_exists(self, user_id: str) -> bool:
        return self.user_by_user_id(user_id) is not None

    def delete_user(self, user: User) -> None:
        """Forget a user with their sessions, requests and tokens (the audit trail keeps
        their email)."""
        self.session.execute(delete(PasswordToken).where(PasswordToken.user_pk == user.id))
        self.session.execute(delete(PasswordRequest).where(PasswordRequest.user_pk == user.id))
        self.session.execute(delete(Session).where(Session.user_pk == user.id))
        self.session.delete(user)
        self.session.flush()

    # the audit trail
    def audit_page(self, query: audit.AuditQuery) -> list[dict[str, Any]]:
        return audit.page(self.session, AuditEvent, query)

    # failed password checks
    def lock_attempts(self, key: str) -> None:
        """Serialise attempts on one account until commit (PostgreSQL advisory lock)."""
        advisory_xact_lock(self.session, "login", key)

    def failures(self, since: datetime, *, address: str, key: str | None = None) -> list[datetime]:
        """When the failures since `since` of this address (on `key` only, if given) were."""
        query = select(LoginFailure.at).where(
            LoginFailure.address == address, LoginFailure.at > since
        )
        if key is not None:
            query = query.where(LoginFailure.key == key)
        return list(self.session.scalars(query))

    def record_failure(self, key: str, address: str, now: datetime) -> None:
        self.session.add(LoginFailure(key=key, address=address, at=now))

    def clear_failures(
        self, key: str, address: str | None = None, before: datetime | None = None
    ) -> None:
        """Forget the failures on `key` (from `address` only, or older than `before`, if given)."""
        query = delete(LoginFailure).where(LoginFailure.key == key)
        if address is not None:
            query = query.where(LoginFailure.address == address)
        if before is not None:
            query = query.where(LoginFailure.at < before)
        self.session.execute(query)

    def prune_failures(self, before: datetime) -> None:
        self.session.execute(delete(LoginFailure).where(LoginFailure.at < before))
