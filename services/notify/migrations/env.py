"""Alembic environment of the notify service (see common.migration_env)."""

from common.migration_env import run
from services.notify.models import NotifyBase

run(NotifyBase.metadata)
