"""`common.db.advisory_xact_lock` on PostgreSQL, as licensing's unknown-license throttle uses it.

The lock ID is the one the repositories always took (so instances of the previous and this
release serialise on the same lock), held until the transaction ends, and exclusive.
"""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from common.db import Db, advisory_xact_lock, make_engine

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def lock_id(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big", signed=True)


def test_the_lock_is_held_until_commit_under_its_stable_id(databases) -> None:
    engine = make_engine(databases["licensing"], pool_size=2)
    try:
        db = Db(sessionmaker(bind=engine, expire_on_commit=False))
        held = lock_id("license-portal-activation:L-7KQX-M2PD")
        other = lock_id("license-portal-login:L-7KQX-M2PD")  # another namespace, another lock
        with db.transaction() as session, db.transaction() as elsewhere:
            advisory_xact_lock(session, "activation", "L-7KQX-M2PD")
            assert elsewhere.scalar(select(func.pg_try_advisory_xact_lock(held))) is False
            assert elsewhere.scalar(select(func.pg_try_advisory_xact_lock(other))) is True
        with db.transaction() as elsewhere:
            assert elsewhere.scalar(select(func.pg_try_advisory_xact_lock(held))) is True
    finally:
        engine.dispose()
