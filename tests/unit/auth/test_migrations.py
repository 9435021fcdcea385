"""auth's migration of issue 11 on SQLite: links in published events are dropped."""

from __future__ import annotations

import json
import re

from alembic import command
from sqlalchemy import create_engine, text

from common.db import alembic_config
from services.auth.service import MIGRATIONS

BEFORE_ISSUE_11 = "3c1c53cce5e4"
LINK = "http://portal.test/reset-password#token=raw-token-at-rest"


def _upgrade(url: str, revision: str) -> None:
    engine = create_engine(url)
    config = alembic_config("auth", MIGRATIONS)
    with engine.connect() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
        connection.commit()
    engine.dispose()


def test_links_leave_published_events_and_stay_in_unpublished_ones(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'auth.db'}"
    _upgrade(url, BEFORE_ISSUE_11)
    rows = [
        ("e1", "password_reset_requested", {"reset_url": LINK, "x": 1}, "2026-12-01 10:00:00"),
        ("e2", "company_created", {"set_password_url": LINK}, "2026-12-01 10:00:00"),
        ("e3", "company_created", {"set_password_url": None}, "2026-12-01 10:00:00"),
        # not published yet: notify still needs its link (it accepts the old shape)
        ("e4", "password_reset_requested", {"reset_url": LINK}, None),
        ("e5", "password_changed", {"how": "reset"}, "2026-12-01 10:00:00"),
    ]
    engine = create_engine(url)
    with engine.begin() as connection:
        for event_id, event_type, payload, published_at in rows:
            connection.execute(
                text(
                    "INSERT INTO event_outbox (event_id, event_type, payload, created_at,"
                    " published_at) VALUES (:id, :type, :payload, '2026-12-01 09:59:59', :at)"
                ),
                {
                    "id": event_id,
                    "type": event_type,
                    "payload": json.dumps(payload),
                    "at": published_at,
                },
            )
    _upgrade(url, "head")
    with engine.connect() as connection:
        stored = dict(connection.execute(text("SELECT event_id, payload FROM event_outbox")).all())
    engine.dispose()
    assert json.loads(stored["e1"]) == {"x": 1}
    assert json.loads(stored["e2"]) == {}
    assert json.loads(stored["e3"]) == {"set_password_url": None}
    assert json.loads(stored["e4"]) == {"reset_url": LINK}
    assert json.loads(stored["e5"]) == {"how": "reset"}


BEFORE_ISSUE_13 = "2f6c0d9e4a71"


def test_every_company_gets_its_contact_user_and_its_sessions_and_links(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'auth.db'}"
    _upgrade(url, BEFORE_ISSUE_13)
    engine = create_engine(url)
    with engine.begin() as connection:
        for pk, email, password_hash in (
            (1, "ada@acme.test", "$argon2id$x"),
            (2, "eve@b.test", None),
        ):
            connection.execute(
                text(
                    "INSERT INTO companies (id, customer_id, name, contact_name, contact_email,"
                    " password_hash, created_at) VALUES (:id, :cid, 'Acme', 'Ada', :email,"
                    " :hash, '2026-11-01 10:00:00')"
                ),
                {"id": pk, "cid": f"C000000{pk}", "email": email, "hash": password_hash},
            )
        connection.execute(
            text(
                "INSERT INTO sessions (company_id, token_hash, created_at, expires_at)"
                " VALUES (1, 'h1', '2026-12-01 10:00:00', '2026-12-01 22:00:00')"
            )
        )
        connection.execute(
            text(
                "INSERT INTO password_requests (id, request_id, purpose, status, login,"
                " company_id, created_at, expires_at) VALUES"
                " (1, 'r1', 'setup', 'open', NULL, 2, '2026-12-01 10:00:00',"
                " '2026-12-08 10:00:00'),"
                " (2, 'r2', 'reset', 'queued', 'x@y.z', NULL, '2026-12-01 10:00:00',"
                " '2026-12-01 10:30:00')"
            )
        )
        connection.execute(
            text(
                "INSERT INTO password_tokens (company_id, request_pk, token_hash, purpose,"
                " created_at, expires_at) VALUES (2, 1, 't1', 'setup', '2026-12-01 10:00:00',"
                " '2026-12-08 10:00:00')"
            )
        )
    _upgrade(url, "head")
    with engine.connect() as connection:
        users = connection.execute(
            text(
                "SELECT id, company_id, user_id, email, name, role, status, is_contact,"
                " password_hash, notify_receipts FROM users ORDER BY company_id"
            )
        ).all()
        sessions = connection.execute(text("SELECT user_pk FROM sessions")).scalars().all()
        requests = dict(
            connection.execute(text("SELECT request_id, user_pk FROM password_requests")).all()
        )
        tokens = connection.execute(text("SELECT user_pk FROM password_tokens")).scalars().all()
    engine.dispose()
    assert [(row.company_id, row.email, row.role, row.status) for row in users] == [
        (1, "ada@acme.test", "owner", "active"),
        (2, "eve@b.test", "owner", "invited"),
    ]
    assert all(
        row.is_contact and row.password_hash is None and row.notify_receipts for row in users
    )
    assert all(re.fullmatch(r"U-[2-9A-Z]{4}-[2-9A-Z]{4}", row.user_id) for row in users)
    assert users[0].user_id != users[1].user_id
    assert sessions == [users[0].id]
    assert requests == {"r1": users[1].id, "r2": None}
    assert tokens == [users[1].id]


BEFORE_SEATS_NOTICE = "6d2b8e51c3a9"


def test_owners_hear_of_seats_all_in_use_and_nobody_else_until_they_turn_it_on(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'auth.db'}"
    _upgrade(url, BEFORE_SEATS_NOTICE)
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO companies (id, customer_id, name, contact_name, contact_email,"
                " created_at) VALUES (1, 'C0000001', 'Acme', 'Ada', 'ada@acme.test',"
                " '2026-11-01 10:00:00')"
            )
        )
        for pk, role in enumerate(("owner", "license_admin", "billing", "viewer", "owner"), 1):
            connection.execute(
                text(
                    "INSERT INTO users (id, user_id, company_id, email, name, role, status,"
                    " created_at, is_contact, notify_installation_activated,"
                    " notify_license_expiring, notify_receipts, notify_payment_failed)"
                    " VALUES (:id, :uid, 1, :email, 'U', :role, 'active',"
                    " '2026-11-01 10:00:00', :contact, 1, 1, 1, 1)"
                ),
                {
                    "id": pk,
                    "uid": f"U-AAAA-AAA{pk + 1}",
                    "email": f"u{pk}@acme.test",
                    "role": role,
                    "contact": pk == 1,
                },
            )
    _upgrade(url, "head")
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT role, notify_seats_exhausted FROM users ORDER BY id")
        ).all()
    engine.dispose()
    assert [(role, bool(on)) for role, on in rows] == [
        ("owner", True),
        ("license_admin", False),
        ("billing", False),
        ("viewer", False),
        ("owner", True),
    ]
