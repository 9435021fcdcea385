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


class FixedClock:
    """The one fake of `common.clock.Clock`: `clock.now()` is `at` until the test moves it.

    `worker_factory(Service, clock=FixedClock())`, or
    `replace_dependencies(container, clock=FixedClock(...))` for a running container.
    """

    def __init__(self, at: datetime | None = None) -> None:
        self.at = at or datetime(2026, 11, 28, 9, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.at

    def advance(self, delta: timedelta | None = None, **parts: float) -> datetime:
        """Move time forward by `delta` or by `timedelta(**parts)`; returns the new now."""
        self.at += (delta or timedelta()) + timedelta(**parts)
        return self.at


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
