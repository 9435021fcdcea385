"""LicensingService workers over a real (SQLite) database; auth, the bus and the clock faked.

`worker_factory` hands the service a real `common.db.Db` over a migrated SQLite file, real
keys, a fake auth (a dict of company passwords), a list that records what would be
published (an activation's event too: a `Later` not started publishes it at once), a
`FixedClock` that tests move, and the worker's context data (`actor_context`: set
`actor_context["actor"]` to act as a portal user, as the gateway does).
"""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from nameko.testing.services import worker_factory

from common.audit import ActorInfo
from common.outbox import Later
from services.licensing.crypto import Keyring, OfflineSecrets, PasswordBox
from services.licensing.dependencies import Keys
from services.licensing.service import MIGRATIONS, LicensingService
from tests.support.fakes import migrated_db_fixtures
from tests.unit.licensing.support import FakeAuth, FakeRequest

migrated_template, db = migrated_db_fixtures("licensing", MIGRATIONS)


@pytest.fixture
def auth() -> FakeAuth:
    return FakeAuth()


@pytest.fixture
def request_key() -> FakeRequest:
    """The worker's request: set `.key` to make its next calls one redeliverable request."""
    return FakeRequest()


@pytest.fixture
def actor_context() -> dict[str, Any]:
    """The worker's context data as `AuditActor` reads it; empty: no actor (the default)."""
    return {}


@pytest.fixture
def service(db, events, clock, auth, request_key, actor_context) -> LicensingService:
    """A worker with the product `cadpro` in its catalogue."""
    keys = Keys(
        Keyring.build(Ed25519PrivateKey.generate()),
        PasswordBox(b"unit-test-secret"),
        OfflineSecrets(b"unit-test-secret"),
    )
    service = worker_factory(
        LicensingService,
        db=db,
        events=events,
        auth=auth,
        keys=keys,
        clock=clock,
        request=request_key,
        actor=ActorInfo(actor_context),
        later=Later(),  # not started: what may go after the answer is published at once
    )
    service.create_product({"code": "cadpro", "name": "CAD Pro"})
    return service
