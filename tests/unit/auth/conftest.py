"""The auth unit tests' database (a migrated SQLite file, copied for each test), and the
worker's request as the `@rpc` entrypoint hands it over."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from nameko.testing.services import worker_factory

from common.audit import ActorInfo
from common.context import ACTOR
from common.db import Db
from common.idempotency import Once, RequestInfo
from services.auth.service import MIGRATIONS, AuthService
from tests.support.fakes import FixedClock, RecordedEvents, migrated_db_fixtures

migrated_template, db = migrated_db_fixtures("auth", MIGRATIONS)


class FakeRequest:
    """`Requests()` of a worker: a fresh request key per call, as the gateway gives every
    HTTP request one; a test that sets `key` (and `operation`) plays a redelivery."""

    def __init__(self) -> None:
        self.key: str | None = None
        self.operation = "auth.test"

    def once(self, scope: str | None, *body: Any) -> Once | None:
        return RequestInfo(self.key or uuid.uuid4().hex, self.operation).once(scope, *body)


@pytest.fixture
def request_info() -> FakeRequest:
    return FakeRequest()


PORTAL_URL = "https://portal.example.test"


class FakeActor(ActorInfo):
    """`AuditActor()` of a worker: nobody by default (the system); `act_as(user)` plays the
    gateway's user, `act_as(None)` the system again."""

    def __init__(self) -> None:
        super().__init__({})

    def act_as(self, user: dict[str, Any] | None) -> None:
        self._context = {} if user is None else {ACTOR: {"type": "user", **user}}


@pytest.fixture
def actor() -> FakeActor:
    return FakeActor()


@pytest.fixture
def service(
    db: Db,
    events: RecordedEvents,
    clock: FixedClock,
    request_info: FakeRequest,
    actor: FakeActor,
    monkeypatch,
) -> AuthService:
    """An auth worker over the test's database, recording events, at the test's time."""
    monkeypatch.setenv("PORTAL_URL", PORTAL_URL + "/")
    return worker_factory(
        AuthService, db=db, events=events, clock=clock, request=request_info, actor=actor
    )
