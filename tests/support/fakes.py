"""Stand-ins shared by the services' worker_factory tests: events, a clock, a migrated SQLite."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.orm import sessionmaker

from common.db import Db, make_engine, migrate


class RecordedEvents(list):
    """Stands in for `EventBus`: remembers `(event_type, payload)` in publishing order."""

    def __call__(self, event_type: str, payload: dict[str, Any]) -> dict[str, Any]:
        self.append((event_type, payload))
        return payload

    def of(self, event_type: str) -> list[dict[str, Any]]:
        return [payload for kind, payload in self if kind == event_type]


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime | None = None) -> None:
        self.now = now or datetime(2026, 11, 28, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def migrated_sqlite(directory: Path, service: str, migrations: Path) -> Path:
    """A SQLite file with `service`'s migrations applied: migrate once, copy per test."""
    path = directory / f"{service}.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine, service, migrations)
    engine.dispose()
    return path


@contextmanager
def copied_db(template: Path | str, directory: Path) -> Iterator[Db]:
    """A `Db` over a private copy of a migrated template."""
    path = directory / Path(template).name
    shutil.copy(template, path)
    engine = make_engine(f"sqlite:///{path}")
    try:
        yield Db(sessionmaker(bind=engine, expire_on_commit=False))
    finally:
        engine.dispose()
