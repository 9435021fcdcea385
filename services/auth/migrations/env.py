"""Alembic environment of the auth service (see common.migration_env)."""

from common.migration_env import run
from services.auth.models import AuthBase

run(AuthBase.metadata)
