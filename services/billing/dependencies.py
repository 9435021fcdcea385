"""nameko dependencies of the billing service: the payment provider.

An outside system behind a small interface, so that `worker_factory(BillingService,
provider=SandboxProvider(MemoryLedger()))` just works. Billing's clock is
`common.clock.Clock("BILLING_CLOCK_OFFSET_SECONDS")`: integration tests and demos move
billing's time with that setting instead of sleeping.
"""

from __future__ import annotations

from nameko.extensions import DependencyProvider
from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker

from common import settings
from common.db import Db, make_engine
from services.billing.providers import PaymentProvider, SandboxProvider
from services.billing.repository import SqlLedger


def sandbox_provider(url: str | None = None) -> tuple[SandboxProvider, Engine]:
    """The sandbox with its ledger in the billing database; also the engine to dispose of."""
    engine = make_engine(url or settings.database_url("billing"), pool_size=2)
    return SandboxProvider(SqlLedger(Db(sessionmaker(bind=engine)))), engine


class Provider(DependencyProvider):
    """`provider = Provider()`: the `PaymentProvider` named by `PAYMENT_PROVIDER` (sandbox).

    The sandbox's ledger lives in the billing database (its table comes with billing's
    migrations), so every instance sees every charge.
    """

    def __init__(self) -> None:
        self.provider: PaymentProvider | None = None
        self._engine: Engine | None = None

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

    def get_dependency(self, worker_ctx: object) -> PaymentProvider:
        return self.provider
