"""The body of every service's Alembic `env.py`: online migrations on a given connection.

`common.db.migrate` hands the connection in through `config.attributes`; run by hand
(`alembic -x url=...`), a connection is made from the `url` argument.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, MetaData, create_engine


def run(target_metadata: MetaData) -> None:
    config = context.config
    version_table = config.attributes.get("version_table", "alembic_version")
    connection = config.attributes.get("connection")
    if connection is None:
        url = context.get_x_argument(as_dictionary=True).get("url")
        if not url:
            raise SystemExit("pass -x url=<database url>")
        with create_engine(url).connect() as fresh:
            _run(fresh, target_metadata, version_table)
            fresh.commit()
        return
    _run(connection, target_metadata, version_table)


def _run(connection: Connection, target_metadata: MetaData, version_table: str) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        version_table=version_table,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
