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
from services.billing.repository import SqlCustomerStore, SqlLedger
from services.billing.stripe_provider import DEFAULT_API_BASE, StripeProvider, make_client

PROVIDERS = ("sandbox", "stripe")


def _engine(url: str | None) -> Engine:
    return make_engine(url or settings.database_url("billing"), pool_size=2)


def sandbox_provider(url: str | None = None) -> tuple[SandboxProvider, Engine]:
    """The sandbox with its ledger in the billing database; also the engine to dispose of."""
    engine = _engine(url)
    return SandboxProvider(SqlLedger(Db(sessionmaker(bind=engine)))), engine


def stripe_provider(url: str | None = None) -> tuple[StripeProvider, Engine]:
    """Stripe, from STRIPE_SECRET_KEY, STRIPE_WEBHOOK_SECRET and STRIPE_API_BASE, with the
    companies' Stripe customers in the billing database; also the engine to dispose of.

    A `RuntimeError` without the keys: billing never starts half-configured.
    """
    secret = settings.get("STRIPE_SECRET_KEY")
    webhook_secret = settings.get("STRIPE_WEBHOOK_SECRET")
    missing = [
        name
        for name, value in (
            ("STRIPE_SECRET_KEY", secret),
            ("STRIPE_WEBHOOK_SECRET", webhook_secret),
        )
        if not value
    ]
    if missing:
        raise RuntimeError(f"PAYMENT_PROVIDER=stripe needs {' and '.join(missing)}")
    client = make_client(str(secret), settings.get("STRIPE_API_BASE") or DEFAULT_API_BASE)
    engine = _engine(url)
    customers = SqlCustomerStore(Db(sessionmaker(bind=engine)))
    return StripeProvider(client, customers, str(webhook_secret)), engine


class Provider(DependencyProvider):
    """`provider = Provider()`: the `PaymentProvider` named by `PAYMENT_PROVIDER` (`sandbox`,
    the default, or `stripe`).

    The sandbox's ledger and Stripe's customers live in the billing database (their tables
    come with billing's migrations), so every instance sees the same.
    """

    def __init__(self) -> None:
        self.provider: PaymentProvider | None = None
        self._engine: Engine | None = None

    def setup(self) -> None:
        name = settings.payment_provider()
        if name == "stripe":
            self.provider, self._engine = stripe_provider()
        elif name == "sandbox":
            self.provider, self._engine = sandbox_provider()
        else:
            raise RuntimeError(
                f"PAYMENT_PROVIDER={name!r} is not available; this build has {PROVIDERS}"
            )

    def stop(self) -> None:
        if self._engine is not None:
            self._engine.dispose()

    def kill(self) -> None:
        self.stop()

    def get_dependency(self, worker_ctx: object) -> PaymentProvider:
        return self.provider
