"""nameko dependencies of the billing service: the clock and the payment provider.

Both are outside systems behind a small interface, so that `worker_factory(BillingService,
clock=FixedClock(...), provider=SandboxProvider(MemoryLedger()))` just works, and
integration tests move time by setting `BILLING_CLOCK_OFFSET_SECONDS` instead of sleeping.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from nameko.extensions import DependencyProvider

from common import settings
from common.db import Db, make_engine
from common.timeutil import utcnow
from services.billing.providers import PaymentProvider, SandboxProvider
from services.billing.repository import SqlLedger


class SystemClock:
    """UTC now, plus an offset (only ever set by tests and demos: it moves billing's time)."""

    def __init__(self, offset: timedelta = timedelta()) -> None:
        self.offset = offset

    def now(self) -> datetime:
        return utcnow() + self.offset


class FixedClock:
    """A clock for tests: `clock.now()` is `at` until the test moves it."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at

    def advance(self, delta: timedelta) -> None:
        self.at += delta


class Clock(DependencyProvider):
    """`clock = Clock()`: a `SystemClock`, shifted by `BILLING_CLOCK_OFFSET_SECONDS` (0)."""

    def get_dependency(self, worker_ctx) -> SystemClock:
        # read per worker, so a test can move time while the container runs
        offset = settings.get_float("BILLING_CLOCK_OFFSET_SECONDS", 0.0)
        return SystemClock(timedelta(seconds=offset))


def sandbox_provider(url: str | None = None) -> tuple[SandboxProvider, object]:
    """The sandbox with its ledger in the billing database; also the engine to dispose of."""
    from sqlalchemy.orm import sessionmaker

    engine = make_engine(url or settings.database_url("billing"), pool_size=2)
    return SandboxProvider(SqlLedger(Db(sessionmaker(bind=engine)))), engine


class Provider(DependencyProvider):
    """`provider = Provider()`: the `PaymentProvider` named by `PAYMENT_PROVIDER` (sandbox).

    The sandbox's ledger lives in the billing database (its table comes with billing's
    migrations), so every instance sees every charge.
    """

    def __init__(self) -> None:
        self.provider: PaymentProvider | None = None
        self._engine = None

    def setup(self) -> None:
        name = settings.get("PAYMENT_PROVIDER", "sandbox")
        if name != "sandbox":
            raise RuntimeError(
                f"PAYMENT_PROVIDER={name!r} is not available; this build has 'sandbox'"
            )
        self.provider, self._engine = sandbox_provider()

    def stop(self) -> None:
        if self._engine is not None:
            self._engine.dispose()

    def kill(self) -> None:
        self.stop()

    def get_dependency(self, worker_ctx) -> PaymentProvider:
        return self.provider
