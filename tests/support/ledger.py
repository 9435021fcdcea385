"""A tiny service database for the request ledger's tests: things, an outbox, a ledger."""

from __future__ import annotations

from sqlalchemy import Column, Integer, String, Table, func, select
from sqlalchemy.orm import DeclarativeBase, Session

from common.idempotency import HandledRequestColumns
from common.outbox import outbox_table
from common.unit_of_work import Outcome


class Base(DeclarativeBase):
    pass


class HandledRequest(HandledRequestColumns, Base):
    pass


things = Table(
    "ledger_things",
    Base.metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(50), nullable=False),
)
event_outbox = outbox_table(Base.metadata)


class Things:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, name: str) -> int:
        return self.session.execute(things.insert().values(name=name)).inserted_primary_key[0]

    def count(self) -> int:
        return self.session.scalar(select(func.count()).select_from(things))


def add_thing(repo: Things, name: str) -> Outcome:
    """A use case that changes something and says so in an event."""
    thing_id = repo.add(name)
    return Outcome({"id": thing_id, "name": name}, [("thing_added", {"name": name})])
