"""Fixtures every service's worker_factory tests share: the fake clock and the event bus.

A service's own conftest overrides `clock` where its tests need another start (notify's
payloads are built from real time, billing's tests start at their own T0).
"""

from __future__ import annotations

import pytest

from tests.support.fakes import FixedClock, RecordedEvents


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def events() -> RecordedEvents:
    return RecordedEvents()
