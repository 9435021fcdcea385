"""common.db on PostgreSQL: insert_ignore and add_unique use the dialect's ON CONFLICT DO
NOTHING, so a taken key is refused without an error that would spoil the transaction; the
pool pings a connection only when it sat unused for a while."""

from __future__ import annotations

from urllib.parse import urlparse

import pytest
from sqlalchemy import text
from sqlalchemy.orm import sessionmaker

from common import db as db_module
from common.db import Db, make_engine
from tests.support import claims
from tests.support.blips import terminate_backends

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


@pytest.mark.parametrize("scenario", [claims.first_insert_wins, claims.first_entity_wins])
def test_the_first_claim_wins_and_a_repeat_is_refused(fresh_database, scenario) -> None:
    engine = make_engine(fresh_database(f"claims_{scenario.__name__}"), pool_size=2)
    try:
        claims.metadata.create_all(engine)
        scenario(Db(sessionmaker(bind=engine, expire_on_commit=False)))
    finally:
        engine.dispose()


def test_a_busy_pool_does_not_ping_and_an_idle_connection_is_pinged_and_replaced(
    fresh_database, monkeypatch
) -> None:
    """One round trip less per transaction under load; a connection that sat unused (and
    died meanwhile: a failover, a restart) is still replaced before a worker gets it."""
    engine = make_engine(fresh_database("pings"), pool_size=1)
    pings: list[int] = []
    ping = engine.dialect.do_ping

    def counting(dbapi_connection: object) -> bool:
        pings.append(1)
        return ping(dbapi_connection)

    monkeypatch.setattr(engine.dialect, "do_ping", counting)
    db = Db(sessionmaker(bind=engine, expire_on_commit=False))
    try:
        for _ in range(5):
            with db.transaction() as session:
                pid = session.execute(text("SELECT pg_backend_pid()")).scalar()
        assert pings == []  # used a moment ago: no ping

        terminate_backends(urlparse(str(engine.url)).path.lstrip("/"), pid)
        monkeypatch.setattr(db_module, "PING_AFTER_IDLE", 0.0)
        with db.transaction() as session:  # a change, which no retry would cover
            assert session.execute(text("SELECT pg_backend_pid()")).scalar() != pid
        assert pings == [1]
    finally:
        engine.dispose()
