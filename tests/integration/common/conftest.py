"""Fixtures of the common plumbing's integration tests."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest

from tests.support import infra


@pytest.fixture
def fresh_database() -> Iterator[Callable[[str], str]]:
    """`fresh_database("auth")` → the URL of a new, empty PostgreSQL database (dropped after)."""
    names: list[str] = []

    def make(label: str) -> str:
        name = f"lp_{infra.RUN_ID}_{label}_{uuid.uuid4().hex[:8]}"
        names.append(name)
        return infra.create_database(name)

    yield make
    for name in names:
        infra.drop_database(name)
