"""Migrations on real PostgreSQL: safe when instances start together, and true to the models."""

from __future__ import annotations

import importlib
from pathlib import Path

import eventlet
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from nameko import config as nameko_config
from nameko.rpc import rpc
from nameko.testing.services import entrypoint_hook
from sqlalchemy import create_engine, inspect

from common.db import Database, alembic_config, migrate
from services.auth.service import MIGRATIONS as AUTH_MIGRATIONS
from services.auth.service import AuthService

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

# (service, models module, declarative base)
MODELS = [
    ("auth", "services.auth.models", "AuthBase"),
    ("licensing", "services.licensing.models", "LicensingBase"),
    ("billing", "services.billing.models", "BillingBase"),
    ("notify", "services.notify.models", "NotifyBase"),
]


class AuthTwin:
    """Another service, on its own database, with a migration history of its own (auth's)."""

    name = "auth_twin"

    db = Database("auth_twin", AUTH_MIGRATIONS)

    @rpc
    def ping(self) -> str:
        self.db.ping()
        return "ok"


def current_revision(url: str, service: str) -> str | None:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"version_table": f"alembic_version_{service}"}
            )
            return context.get_current_revision()
    finally:
        engine.dispose()


def summary(differences: list) -> list[str]:
    """`[('add_table', Table('plans', ...)), ...]` → `["add_table plans", ...]`."""
    lines = []
    for difference in differences:
        if isinstance(difference, list):  # column-level changes come grouped
            lines.extend(summary(difference))
            continue
        operation, *rest = difference
        names = [str(getattr(item, "name", item)) for item in rest if item is not None]
        lines.append(" ".join([operation, *names[:3]]))
    return lines


def test_two_auth_instances_start_at_once_on_a_fresh_database(
    config, fresh_database, container_factory
) -> None:
    url = fresh_database("auth_race")
    with nameko_config.patch({"AUTH_DATABASE_URL": url}):
        containers = [container_factory(AuthService) for _ in range(2)]
        starting = [eventlet.spawn(container.start) for container in containers]
        for thread in starting:
            thread.wait()  # re-raises a failed start
    for container in containers:
        with entrypoint_hook(container, "ping") as ping:
            assert ping() == {"service": "auth", "status": "ok"}

    head = ScriptDirectory.from_config(alembic_config("auth", AUTH_MIGRATIONS)).get_current_head()
    assert current_revision(url, "auth") == head
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            tables = set(inspect(connection).get_table_names())
    finally:
        engine.dispose()
    assert {"companies", "sessions", "password_tokens", "login_failures"} <= tables


def test_two_services_in_one_process_migrate_at_once(
    config, fresh_database, runner_factory
) -> None:
    """Alembic's module globals must not be shared by two upgrades running side by side."""
    urls = {"auth": fresh_database("auth_pair"), "auth_twin": fresh_database("twin_pair")}
    with nameko_config.patch(
        {"AUTH_DATABASE_URL": urls["auth"], "AUTH_TWIN_DATABASE_URL": urls["auth_twin"]}
    ):
        runner = runner_factory(AuthService, AuthTwin)
        runner.start()  # starts both containers in parallel
    head = ScriptDirectory.from_config(alembic_config("auth", AUTH_MIGRATIONS)).get_current_head()
    for service, url in urls.items():
        assert current_revision(url, service) == head
    [twin] = [c for c in runner.containers if c.service_name == "auth_twin"]
    with entrypoint_hook(twin, "ping") as ping:
        assert ping() == "ok"


@pytest.mark.parametrize(("service", "module", "base"), MODELS, ids=[row[0] for row in MODELS])
def test_models_and_migrations_agree(fresh_database, service: str, module: str, base: str) -> None:
    models = importlib.import_module(module)
    metadata = getattr(models, base).metadata
    migrations = Path(models.__file__).parent / "migrations"
    engine = create_engine(fresh_database(service))
    try:
        migrate(engine, service, migrations)
        migrate(engine, service, migrations)  # a second start changes nothing
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection,
                opts={"compare_type": True, "version_table": f"alembic_version_{service}"},
            )
            differences = compare_metadata(context, metadata)
    finally:
        engine.dispose()
    assert differences == [], f"{service}: add a migration for {summary(differences)}"
