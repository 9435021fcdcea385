"""The auth database: companies and their users, sessions, password requests and their
one-time tokens, failed password checks, where reset requests came from, the requests
handled, and auth's part of the audit trail."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from common.audit import AuditEventColumns
from common.idempotency import HandledRequestColumns
from common.outbox import outbox_table
from common.timeutil import UTCDateTime


class AuthBase(DeclarativeBase):
    """The auth service's own metadata: no table is shared with another service."""


class Company(AuthBase):
    __tablename__ = "companies"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    contact_name: Mapped[str] = mapped_column(String(200))
    # stored lower-cased: logins by email ignore case
    contact_email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    password_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class User(AuthBase):
    """A person of a company, with a role. The contact user (`is_contact`, one per company)
    is the company-wide login: its password is `companies.password_hash` (its own stays
    null), and its email is `companies.contact_email`. Other users have their own password,
    which never activates a product."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[str] = mapped_column(String(16), unique=True)  # U-XXXX-XXXX
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"), index=True)
    # stored lower-cased, and unique in the whole system: an email logs in one user
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))  # domain.ROLES
    status: Mapped[str] = mapped_column(String(16))  # "invited" | "active" | "disabled"
    password_hash: Mapped[str | None] = mapped_column(String(255))
    password_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    is_contact: Mapped[bool] = mapped_column(Boolean)
    # the notices the user receives (domain.NOTICES), each only if the role may
    notify_installation_activated: Mapped[bool] = mapped_column(Boolean)
    notify_license_expiring: Mapped[bool] = mapped_column(Boolean)
    notify_receipts: Mapped[bool] = mapped_column(Boolean)
    notify_payment_failed: Mapped[bool] = mapped_column(Boolean)
    notify_seats_exhausted: Mapped[bool] = mapped_column(Boolean)


class Session(AuthBase):
    __tablename__ = "sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"), index=True)
    user_pk: Mapped[int] = mapped_column(
        ForeignKey("users.id", name="fk_sessions_user_pk"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class PasswordRequest(AuthBase):
    """A request for a password link: a reset asked for by login, a new company's set-up,
    or a user's invitation.

    Events carry its opaque `request_id`, never a token: notify asks `password_link` for the
    link when it sends the email, and only the hash of the token made then is stored. A
    reset request is `queued` with the login as typed, so that asking costs the same whatever
    the login; a timer resolves it: deleted if the login names nobody (or the account had its
    share of reset emails), `open` otherwise, and `closed` once the password is set.
    """

    __tablename__ = "password_requests"
    __table_args__ = (Index("ix_password_requests_status_created_at", "status", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[str] = mapped_column(String(32), unique=True)
    purpose: Mapped[str] = mapped_column(String(16))  # "reset" | "setup" | "invite"
    status: Mapped[str] = mapped_column(String(16))  # "queued" | "open" | "closed"
    # a queued reset's login as typed; cleared once resolved
    login: Mapped[str | None] = mapped_column(String(254))
    company_id: Mapped[int | None] = mapped_column(ForeignKey("companies.id"), index=True)
    # whose password it sets (null while a reset is queued)
    user_pk: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", name="fk_password_requests_user_pk"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class PasswordToken(AuthBase):
    """A single-use token to reset (or first set) a user's password, made when its request's
    email is sent (tokens made before issue 11 have no request)."""

    __tablename__ = "password_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"), index=True)
    user_pk: Mapped[int] = mapped_column(
        ForeignKey("users.id", name="fk_password_tokens_user_pk"), index=True
    )
    request_pk: Mapped[int | None] = mapped_column(
        ForeignKey("password_requests.id", name="fk_password_tokens_request_pk"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    purpose: Mapped[str] = mapped_column(String(16))  # "reset" | "setup" | "invite"
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class LoginFailure(AuthBase):
    """One row per failed password check: the account it named (`key`: the company, or the
    normalised login that names none) and the client address it came from (`address`:
    `domain.address_key`), so both (account, address) and address can be counted."""

    __tablename__ = "login_failures"
    __table_args__ = (
        Index("ix_login_failures_key_at", "key", "at"),
        Index("ix_login_failures_address_at", "address", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(300))
    address: Mapped[str] = mapped_column(String(64), server_default="unknown")
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class ResetRequestAddress(AuthBase):
    """One row per reset request queued: the client address it came from (`address`:
    `domain.address_key`) and when, so that queued requests can be counted per address.
    Nothing here names a login or a company; pruned once out of the window."""

    __tablename__ = "reset_request_addresses"
    __table_args__ = (Index("ix_reset_request_addresses_address_at", "address", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    address: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class HandledRequest(HandledRequestColumns, AuthBase):
    """The request ledger: a redelivered RPC request answers its first answer
    (common/idempotency.py)."""


class AuditEvent(AuditEventColumns, AuthBase):
    """auth's part of the audit trail: logins, passwords, users (common/audit.py)."""


# events staged with the change that made them true (common/outbox.py)
EventOutbox = outbox_table(AuthBase.metadata)
