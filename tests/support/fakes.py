"""Stand-ins shared by the services' worker_factory tests: events, a clock, a migrated SQLite."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
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


def migrated_db_fixtures(service: str, migrations: Path) -> tuple[Any, Any]:
    """The `migrated_template` and `db` fixtures of a service's worker_factory tests.

        migrated_template, db = migrated_db_fixtures("auth", MIGRATIONS)

    `service`'s migrations run once per session into a SQLite file (migrating is the slow
    part); each test's `db` is a `Db` over a private copy of it.
    """

    @pytest.fixture(scope="session")
    def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
        path = tmp_path_factory.mktemp(f"{service}-template") / f"{service}.db"
        engine = make_engine(f"sqlite:///{path}")
        migrate(engine, service, migrations)
        engine.dispose()
        return path

    @pytest.fixture
    def db(migrated_template: Path, tmp_path: Path) -> Iterator[Db]:
        path = tmp_path / migrated_template.name
        shutil.copy(migrated_template, path)
        engine = make_engine(f"sqlite:///{path}")
        try:
            yield Db(sessionmaker(bind=engine, expire_on_commit=False))
        finally:
            engine.dispose()

    return migrated_template, db
