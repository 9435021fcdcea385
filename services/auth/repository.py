"""The queries the account rules need, behind one small class per unit of work."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session as DbSession

from common.db import add_unique, advisory_xact_lock
from services.auth.models import AuthBase, Company, LoginFailure, PasswordToken, Session


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

    def company_by_customer_id(self, customer_id: str) -> Company | None:
        return self.session.scalar(
            select(Company).where(func.upper(Company.customer_id) == customer_id.strip().upper())
        )

    def company_by_email(self, email: str) -> Company | None:
        return self.session.scalar(select(Company).where(Company.contact_email == email))

    def company_by_id(self, company_id: int, lock: bool = False) -> Company | None:
        query = select(Company).where(Company.id == company_id)
        if lock:
            query = query.with_for_update()
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
                        func.upper(Company.customer_id) == text.upper(),
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

    def revoke_sessions(self, company_id: int, now: datetime, keep_id: int | None = None) -> int:
        query = update(Session).where(
            Session.company_id == company_id, Session.revoked_at.is_(None)
        )
        if keep_id is not None:
            query = query.where(Session.id != keep_id)
        return self.session.execute(query.values(revoked_at=now)).rowcount

    def revoke_session(self, token_hash: str, now: datetime) -> None:
        self.session.execute(
            update(Session)
            .where(Session.token_hash == token_hash, Session.revoked_at.is_(None))
            .values(revoked_at=now)
        )

    # one-time password tokens
    def consume_token(self, token_hash: str, now: datetime) -> int | None:
        """Mark the token used, atomically; the company ID, or None if it was not usable."""
        result = self.session.execute(
            update(PasswordToken)
            .where(
                PasswordToken.token_hash == token_hash,
                PasswordToken.used_at.is_(None),
                PasswordToken.expires_at > now,
            )
            .values(used_at=now)
            .returning(PasswordToken.company_id)
        )
        return result.scalar()

    def recent_reset_requests(self, company_id: int, since: datetime) -> list[datetime]:
        return list(
            self.session.scalars(
                select(PasswordToken.created_at).where(
                    PasswordToken.company_id == company_id,
                    PasswordToken.purpose == "reset",
                    PasswordToken.created_at > since,
                )
            )
        )

    def invalidate_tokens(self, company_id: int, now: datetime) -> None:
        self.session.execute(
            update(PasswordToken)
            .where(PasswordToken.company_id == company_id, PasswordToken.used_at.is_(None))
            .values(used_at=now)
        )

    # failed logins
    def lock_attempts(self, key: str) -> None:
        """Serialise attempts on one throttle key until commit (PostgreSQL advisory lock)."""
        advisory_xact_lock(self.session, "login", key)

    def failures(self, key: str, since: datetime) -> list[datetime]:
        return list(
            self.session.scalars(
                select(LoginFailure.at).where(LoginFailure.key == key, LoginFailure.at > since)
            )
        )

    def record_failure(self, key: str, now: datetime) -> None:
        self.session.add(LoginFailure(key=key, at=now))

    def clear_failures(self, key: str, before: datetime | None = None) -> None:
        query = delete(LoginFailure).where(LoginFailure.key == key)
        if before is not None:
            query = query.where(LoginFailure.at < before)
        self.session.execute(query)

    def prune_failures(self, before: datetime) -> None:
        self.session.execute(delete(LoginFailure).where(LoginFailure.at < before))
