"""The same claims scenarios for common.db on SQLite (unit) and PostgreSQL (integration)."""

from __future__ import annotations

from sqlalchemy import Column, MetaData, String, Table, UniqueConstraint, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from common.db import Db, add_unique, insert_ignore

metadata = MetaData()
claims = Table(
    "claims",
    metadata,
    Column("event_id", String(64), primary_key=True),
    Column("applied_by", String(20), nullable=False),
)


class Base(DeclarativeBase):
    metadata = metadata


class Account(Base):
    __tablename__ = "accounts"
    __table_args__ = (UniqueConstraint("email"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(String(64))


def first_insert_wins(db: Db) -> None:
    """insert_ignore: the first insert of a key is new, a repeat changes nothing, no error."""
    with db.transaction() as session:
        assert insert_ignore(session, claims, {"event_id": "e1", "applied_by": "first"}) is True
    with db.transaction() as session:
        # no IntegrityError: the transaction goes on and commits the next claim
        assert insert_ignore(session, claims, {"event_id": "e1", "applied_by": "again"}) is False
        assert insert_ignore(session, claims, {"event_id": "e2", "applied_by": "other"}) is True
    with db.transaction() as session:
        rows = session.execute(select(claims).order_by(claims.c.event_id)).all()
    assert [tuple(row) for row in rows] == [("e1", "first"), ("e2", "other")]


def first_entity_wins(db: Db) -> None:
    """add_unique: a new entity gets its key and stays in the session (later changes are
    saved); a twin on a unique key is refused without spoiling the transaction."""
    with db.transaction() as session:
        ada = Account(email="ada@example.test")
        assert add_unique(session, ada) is True
        assert ada.id is not None and ada in session
        ada.note = "changed after the insert"
        twin = Account(email="ada@example.test", note="twin")
        assert add_unique(session, twin) is False
        assert twin.id is None and twin not in session
        assert add_unique(session, Account(email="bob@example.test")) is True
    with db.transaction() as session:
        rows = session.execute(select(Account.email, Account.note).order_by(Account.id)).all()
    assert [tuple(row) for row in rows] == [
        ("ada@example.test", "changed after the insert"),
        ("bob@example.test", None),
    ]
