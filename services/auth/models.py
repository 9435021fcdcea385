"""The auth database: companies, sessions, password requests and their one-time tokens,
failed password checks, where reset requests came from, and the requests handled."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

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


class Session(AuthBase):
    __tablename__ = "sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class PasswordRequest(AuthBase):
    """A request for a password link: a reset asked for by login, or a new company's set-up.

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
    purpose: Mapped[str] = mapped_column(String(16))  # "reset" | "setup"
    status: Mapped[str] = mapped_column(String(16))  # "queued" | "open" | "closed"
    # a queued reset's login as typed; cleared once resolved
    login: Mapped[str | None] = mapped_column(String(254))
    company_id: Mapped[int | None] = mapped_column(ForeignKey("companies.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class PasswordToken(AuthBase):
    """A single-use token to reset (or first set) the company password, made when its
    request's email is sent (tokens made before issue 11 have no request)."""

    __tablename__ = "password_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"), index=True)
    request_pk: Mapped[int | None] = mapped_column(
        ForeignKey("password_requests.id", name="fk_password_tokens_request_pk"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    purpose: Mapped[str] = mapped_column(String(16))  # "reset" | "setup"
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


# events staged with the change that made them true (common/outbox.py)
EventOutbox = outbox_table(AuthBase.metadata)
