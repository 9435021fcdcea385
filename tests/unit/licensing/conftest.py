"""LicensingService workers over a real (SQLite) database; auth, the bus and the clock faked.

`worker_factory` hands the service a real `common.db.Db` over a migrated SQLite file, real
keys, a fake auth (a dict of company passwords), a list that records what would be
published and a `FixedClock` that tests move.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from nameko.testing.services import worker_factory

from common.db import Db
from services.licensing.crypto import Keyring, PasswordBox
from services.licensing.dependencies import Keys
from services.licensing.service import MIGRATIONS, LicensingService
from tests.support.fakes import FixedClock, RecordedEvents, copied_db, migrated_sqlite
from tests.unit.licensing.support import FakeAuth


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file; each test gets a copy (migrating is the slow part)."""
    return migrated_sqlite(tmp_path_factory.mktemp("licensing-template"), "licensing", MIGRATIONS)


@pytest.fixture
def db(migrated_template: Path, tmp_path: Path) -> Iterator[Db]:
    with copied_db(migrated_template, tmp_path) as db:
        yield db


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def events() -> RecordedEvents:
    return RecordedEvents()


@pytest.fixture
def auth() -> FakeAuth:
    return FakeAuth()


@pytest.fixture
def service(db, events, clock, auth) -> LicensingService:
    """A worker with the product `cadpro` in its catalogue."""
    keys = Keys(Keyring.build(Ed25519PrivateKey.generate()), PasswordBox(b"unit-test-secret"))
    service = worker_factory(
        LicensingService, db=db, events=events, auth=auth, keys=keys, clock=clock
    )
    service.create_product({"code": "cadpro", "name": "CAD Pro"})
    return service
