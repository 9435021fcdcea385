"""The auth unit tests' database: a migrated SQLite file, copied for each test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from common.db import Db
from services.auth.service import MIGRATIONS
from tests.support.fakes import copied_db, migrated_sqlite


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory) -> Path:
    """One migrated SQLite file; each test gets a copy (migrating is the slow part)."""
    return migrated_sqlite(tmp_path_factory.mktemp("auth-template"), "auth", MIGRATIONS)


@pytest.fixture
def db(migrated_template: Path, tmp_path) -> Iterator[Db]:
    with copied_db(migrated_template, tmp_path) as db:
        yield db
