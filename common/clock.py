"""One clock for every service: a dependency, so tests move time instead of patching it.

`clock = Clock()` in a service, `self.clock.now()` in an entrypoint; use cases take `now` as
an argument. `worker_factory(Service, clock=FixedClock(...))` and nameko's
`replace_dependencies(container, clock=...)` swap it for the fake in `tests/support`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol

from nameko.extensions import DependencyProvider

from common import settings
from common.timeutil import utcnow


class Now(Protocol):
    """What a use case that reads the time itself needs: `SystemClock` or a test's fake."""

    def now(self) -> datetime: ...


class SystemClock:
    """UTC now, plus an offset (set only by tests and demos to move a service's time)."""

    def __init__(self, offset: timedelta = timedelta()) -> None:
        self.offset = offset

    def now(self) -> datetime:
        return utcnow() + self.offset


class Clock(DependencyProvider):
    """`clock = Clock()`, or `Clock("BILLING_CLOCK_OFFSET_SECONDS")` for a movable clock.

    The offset setting is read per worker, so a test can move time while the container runs.
    """

    def __init__(self, offset_setting: str | None = None) -> None:
        self.offset_setting = offset_setting

    def get_dependency(self, worker_ctx: object) -> SystemClock:
        if self.offset_setting is None:
            return SystemClock()
        offset = settings.get_float(self.offset_setting, 0.0)
        return SystemClock(timedelta(seconds=offset))
