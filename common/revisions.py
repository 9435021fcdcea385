"""Developer helper: `python -m common.revisions auth "add things"` autogenerates a migration.

It upgrades a scratch SQLite database to head, then compares it with the models.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from alembic import command
from sqlalchemy import create_engine

from common.db import alembic_config, migrate


def main(service: str, message: str) -> None:
    migrations = Path("services") / service / "migrations"
    with tempfile.TemporaryDirectory() as scratch:
        engine = create_engine(f"sqlite:///{scratch}/scratch.db")
        migrate(engine, service, migrations)
        config = alembic_config(service, migrations)
        with engine.connect() as connection:
            config.attributes["connection"] = connection
            command.revision(config, message=message, autogenerate=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
