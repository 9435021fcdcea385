"""Alembic environment of the licensing service (see common.migration_env)."""

from common.migration_env import run
from services.licensing.models import LicensingBase

run(LicensingBase.metadata)
