"""Review after issue 11: password changes all counted under one "unknown" address. The
gateway's change-password route passed auth no client address, so the wrong current
passwords of every company, from everywhere, fed one per-address counter: enough of them,
from anyone, slowed every company's password change (and every address-less login) down.

Now the route passes the caller's address like the login and reset routes; auth counts a
wrong current password per (company, address) and per address, and callers that name no
address have no shared per-address counter at all (only their per-(company, unknown) one).
The gateway worker with auth recorded, and the auth worker over a real (SQLite) database.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from nameko.testing.services import worker_factory
from sqlalchemy.orm import sessionmaker
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from common.db import Db, make_engine, migrate
from common.errors import PortalError
from common.idempotency import RequestInfo
from gateway.service import GatewayService
from services.auth import domain
from services.auth.service import MIGRATIONS, AuthService
from tests.support.fakes import FixedClock, RecordedEvents
from tests.unit.gateway.support import TOKEN, FakeAuth

PASSWORD, NEW_PASSWORD = "Quiet-Lantern-Harbour-7", "Amber-Tidal-Compass-58"
ATTACKER, OWNER = "203.0.113.66", "198.51.100.7"

# a worker called directly, as by a request without a key: nothing to deduplicate
NO_KEY = RequestInfo(None, "auth.test")


class RecordingAuth(FakeAuth):
    def __init__(self) -> None:
        super().__init__()
        self.payloads: list[dict[str, Any]] = []

    def change_password(self, token: str, body: dict[str, Any]) -> None:
        super().change_password(token, body)
        self.payloads.append(body)


def test_the_gateway_passes_the_caller_address_with_a_password_change() -> None:
    auth = RecordingAuth()
    body = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    request = Request(
        EnvironBuilder(
            method="PUT",
            json=body,
            headers={"Authorization": f"Bearer {TOKEN}"},
            environ_base={"REMOTE_ADDR": OWNER},
        ).get_environ()
    )
    worker_factory(GatewayService, auth=auth).change_password(request, body=body)
    assert auth.payloads == [{**body, "client_address": OWNER}]


@pytest.fixture
def auth(tmp_path) -> Iterator[AuthService]:
    engine = make_engine(f"sqlite:///{tmp_path / 'auth.db'}")
    migrate(engine, "auth", MIGRATIONS)
    db = Db(sessionmaker(bind=engine, expire_on_commit=False))
    yield worker_factory(
        AuthService, db=db, events=RecordedEvents(), clock=FixedClock(), request=NO_KEY
    )
    engine.dispose()


def company_session(auth: AuthService, address: str | None = None) -> tuple[str, str]:
    email = f"changer.{uuid.uuid4().hex[:10]}@example.test"
    auth.create_company(
        {"name": "Changer Ltd", "contact_name": "Ada", "contact_email": email, "password": PASSWORD}
    )
    payload = {"login": email, "password": PASSWORD}
    if address is not None:
        payload["client_address"] = address
    return email, auth.login(payload)["token"]


def code_of(call, *args) -> str:
    with pytest.raises(PortalError) as caught:
        call(*args)
    return caught.value.code


def test_wrong_current_passwords_count_for_the_address_they_came_from(auth) -> None:
    email, token = company_session(auth, OWNER)
    wrong = {"current_password": "not the password", "new_password": NEW_PASSWORD}
    for _ in range(domain.ACCOUNT_FREE_FAILURES):
        attempt = {**wrong, "client_address": ATTACKER}
        assert code_of(auth.change_password, token, attempt) == "invalid_credentials"
    right = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    slowed = {**right, "client_address": ATTACKER}
    assert code_of(auth.change_password, token, slowed) == "too_many_attempts"
    assert auth.change_password(token, {**right, "client_address": OWNER}) is None


def test_address_less_failures_of_many_companies_slow_no_other_company(auth, monkeypatch) -> None:
    monkeypatch.setattr(domain, "ADDRESS_FREE_FAILURES", 4)  # each failure costs an argon2 check
    wrong = {"current_password": "not the password", "new_password": NEW_PASSWORD}
    for _ in range(domain.ADDRESS_FREE_FAILURES + 2):
        _, token = company_session(auth, OWNER)
        assert code_of(auth.change_password, token, wrong) == "invalid_credentials"
    _, token = company_session(auth, OWNER)
    right = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    assert auth.change_password(token, right) is None
