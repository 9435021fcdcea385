"""common.db on PostgreSQL: insert_ignore and add_unique use the dialect's ON CONFLICT DO
NOTHING, so a taken key is refused without an error that would spoil the transaction."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import sessionmaker

from common.db import Db, make_engine
from tests.support import claims

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


@pytest.mark.parametrize("scenario", [claims.first_insert_wins, claims.first_entity_wins])
def test_the_first_claim_wins_and_a_repeat_is_refused(fresh_database, scenario) -> None:
    engine = make_engine(fresh_database(f"claims_{scenario.__name__}"), pool_size=2)
    try:
        claims.metadata.create_all(engine)
        scenario(Db(sessionmaker(bind=engine, expire_on_commit=False)))
    finally:
        engine.dispose()
