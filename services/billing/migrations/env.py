"""Alembic environment of the billing service (see common.migration_env)."""

from common.migration_env import run
from services.billing.models import BillingBase

run(BillingBase.metadata)
