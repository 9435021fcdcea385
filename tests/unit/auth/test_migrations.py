"""auth's migration of issue 11 on SQLite: links in published events are dropped."""

from __future__ import annotations

import json

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
