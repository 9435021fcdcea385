"""The auth unit tests' database: a migrated SQLite file, copied for each test."""

from __future__ import annotations

from services.auth.service import MIGRATIONS
from tests.support.fakes import migrated_db_fixtures

migrated_template, db = migrated_db_fixtures("auth", MIGRATIONS)
