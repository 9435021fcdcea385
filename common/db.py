"""SQLAlchemy 2 for nameko: one engine per container, one session per unit of work.

Writes are committed *inside* the worker (`with db.transaction() as session:`), because
nameko sends an RPC reply before dependencies see `worker_result`: a commit there would let
a caller read a reply whose data is not yet visible, or lost.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from eventlet.semaphore import Semaphore
from nameko.containers import WorkerContext
from nameko.extensions import DependencyProvider
from sqlalchemy import Engine, Table, create_engine, event, func, inspect, make_url, select, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, make_transient_to_detached, sessionmaker

from common import settings
from common.errors import ServiceUnavailable

log = logging.getLogger(__name__)


def make_engine(url: str, pool_size: int = 10) -> Engine:
    """An engine with a pool wide enough for every worker of a container."""
    if url.startswith("sqlite"):
        database = make_url(url).database
        if database and database != ":memory:" and not database.startswith("file:"):
            _create_private_file(Path(database))
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    engine = create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_recycle=1800)
    _ping_when_idle(engine)
    return engine


# a pooled connection unused for longer than this is pinged before a worker gets it
PING_AFTER_IDLE = 2.0


def _ping_when_idle(engine: Engine) -> None:
    """Ping a pooled connection at checkout only when it sat unused for `PING_AFTER_IDLE`.

    `pool_pre_ping` pings at every checkout: one more round trip per transaction, on every
    request of a busy service, for a connection used a few milliseconds ago. A connection
    idle for a while (a failover, a restart, an idle timeout may have closed it) is pinged
    as before, and a dead one is replaced before the worker sees it. One that dies while in
    use fails its statement: `DatabaseUnavailable` (a 503, retried by the caller), and
    SQLAlchemy then replaces every connection of the pool that is older than the failure.
    """

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.pop("idle_since", None)
        if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            # the pool discards this connection and checks out another one
            raise sa_exc.DisconnectionError(str(exc)) from exc


def _create_private_file(path: Path) -> None:
    """Create the SQLite file (and its folder) for the owner alone, or make it private.

    SQLite would create it 0644 under umask 022, and gives its -wal and -shm files the mode of
    the database file: creating it 0600 first keeps all three private. A file an earlier
    release left readable by others (and that this user owns) is narrowed to 0600, with its
    -wal and -shm files.
    """
    path.parent.mkdir(mode=settings.PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, settings.PRIVATE_FILE_MODE))
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            status = file.stat()
        except FileNotFoundError:
            continue
        if status.st_uid == os.getuid() and status.st_mode & 0o077:
            file.chmod(settings.PRIVATE_FILE_MODE)


def alembic_config(service_name: str, migrations_dir: Path) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    config.attributes["version_table"] = f"alembic_version_{service_name}"
    return config


# Alembic keeps the running migration in module globals (`alembic.context`, `alembic.op`):
# two upgrades interleaving in one process (several services in one `nameko run`, or a test
# runner starting containers in parallel) would use each other's connection and script.
_MIGRATING = Semaphore(1)


def migrate(engine: Engine, service_name: str, migrations_dir: Path) -> None:
    """`alembic upgrade head`, safe when several instances of the service start together.

    PostgreSQL: a session-level advisory lock serialises the upgrades. SQLite: a file lock
    beside the database file does the same for processes on this machine. Within one
    process, upgrades run one at a time whatever the service.
    """
    with _MIGRATING:
        _migrate(engine, service_name, migrations_dir)


def _migrate(engine: Engine, service_name: str, migrations_dir: Path) -> None:
    config = alembic_config(service_name, migrations_dir)
    if engine.dialect.name == "postgresql":
        key = zlib.crc32(f"license-portal-migrate-{service_name}".encode())
        with engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
            try:
                connection.commit()
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
                connection.commit()
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
                connection.commit()
        return
    database = engine.url.database or ""
    lock_path = Path(f"{database}.migrate.lock") if database not in ("", ":memory:") else None
    with engine.connect() as connection:
        config.attributes["connection"] = connection
        if lock_path is None:
            command.upgrade(config, "head")
            connection.commit()
            return
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, settings.PRIVATE_FILE_MODE)
        with os.fdopen(fd, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                command.upgrade(config, "head")
                connection.commit()
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


def insert_ignore(session: Session, table: Table, values: dict[str, Any]) -> bool:
    """INSERT … ON CONFLICT DO NOTHING on PostgreSQL and SQLite; True if the row is new.

    The claim that makes a consumer idempotent: whoever inserts first owns the key, and any
    number of concurrent or repeated attempts find it taken without an error.
    """
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = dialect.insert(table).values(**values).on_conflict_do_nothing()
    return session.execute(statement).rowcount == 1


def add_unique(session: Session, entity: object) -> bool:
    """Insert a new mapped `entity` unless one of its unique keys is taken, also by an insert
    running at this moment; True (and `entity` in the session, with its primary key) if new.

    INSERT … ON CONFLICT DO NOTHING RETURNING the key: the loser of a race finds the key
    taken without an IntegrityError that would spoil its transaction. Columns left None are
    left to the database's defaults.
    """
    mapper = inspect(entity).mapper
    table = mapper.local_table
    values = {
        column.key: value
        for column in table.columns
        if (value := getattr(entity, mapper.get_property_by_column(column).key)) is not None
    }
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = (
        dialect.insert(table)
        .values(**values)
        .on_conflict_do_nothing()
        .returning(*table.primary_key.columns)
    )
    row = session.execute(statement).first()
    if row is None:
        return False
    for column, value in zip(table.primary_key.columns, row, strict=True):
        setattr(entity, mapper.get_property_by_column(column).key, value)
    make_transient_to_detached(entity)  # the row exists: the session must not insert it again
    session.add(entity)
    return True


def advisory_xact_lock(session: Session, namespace: str, key: str) -> None:
    """Serialise transactions on `key` of `namespace` until this one ends (PostgreSQL).

    `pg_advisory_xact_lock` on the first 8 bytes of sha256("license-portal-<namespace>:<key>"),
    for work that has no row to lock (throttling a login, an unknown license ID). SQLite,
    the single-process embedded default, has no such lock: there it does nothing.
    """
    if session.get_bind().dialect.name != "postgresql":
        return
    digest = hashlib.sha256(f"license-portal-{namespace}:{key}".encode()).digest()
    lock_id = int.from_bytes(digest[:8], "big", signed=True)
    session.execute(select(func.pg_advisory_xact_lock(lock_id)))


class DatabaseUnavailable(ServiceUnavailable):
    """The service's database cannot be reached, or dropped the connection mid-transaction.

    A `ServiceUnavailable` (503 at the gateway, `Retry-After`), never an internal error: the
    caller retries with the same request key, and the ledger (common/idempotency.py) answers
    the first answer if the change did commit after all. `during_commit` says the outcome of
    this transaction is unknown (the connection dropped while COMMIT was on its way).
    """

    def __init__(self, service: str | None = None, during_commit: bool = False) -> None:
        super().__init__(
            "The service's database is unavailable; try again shortly.",
            details={"service": service} if service else {},
        )
        self.during_commit = during_commit


def is_unavailable(exc: BaseException) -> bool:
    """Whether `exc` says the database is away (connection refused, dropped, terminated by
    an administrator, pool exhausted), rather than that the statement was wrong.

    Deadlocks and serialisation failures are operational errors too: transient, so the same
    answer (503, try again) fits them.
    """
    if isinstance(exc, sa_exc.DBAPIError):
        return exc.connection_invalidated or isinstance(exc, sa_exc.OperationalError)
    return isinstance(exc, sa_exc.TimeoutError | sa_exc.DisconnectionError)


class Db:
    """What a worker gets: transactions on the service's database."""

    def __init__(self, factory: sessionmaker, service: str | None = None) -> None:
        self._factory = factory
        self.service = service

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """Commit on success, roll back on any exception, always close.

        A database that is away raises `DatabaseUnavailable` (a 503 for the caller), never
        SQLAlchemy's error (an internal error): a dropped connection is a fault of the moment.
        """
        session = self._factory()
        committing = False
        try:
            yield session
            committing = True
            session.commit()
        except BaseException as exc:
            _rollback(session)
            if isinstance(exc, Exception) and is_unavailable(exc):
                log.warning(
                    "database unavailable%s: %s",
                    " during commit" if committing else "",
                    str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
                )
                raise DatabaseUnavailable(self.service, during_commit=committing) from exc
            raise
        finally:
            _close(session)

    def ping(self) -> None:
        with self.transaction() as session:
            session.execute(text("SELECT 1"))


def _rollback(session: Session) -> None:
    """Roll back; on a connection already gone this fails too, and the pool discards it."""
    try:
        session.rollback()
    except Exception as exc:
        if not is_unavailable(exc):
            raise


def _close(session: Session) -> None:
    try:
        session.close()
    except Exception as exc:
        if not is_unavailable(exc):
            raise


class Database(DependencyProvider):
    """Dependency: `db = Database("auth", migrations_dir)`; migrates when the container starts."""

    def __init__(self, service_name: str, migrations_dir: Path | str) -> None:
        self.service_name = service_name
        self.migrations_dir = Path(migrations_dir)
        self.engine: Engine | None = None
        self.factory: sessionmaker | None = None

    def setup(self) -> None:
        workers = int(getattr(self.container, "max_workers", 10) or 10)
        self.engine = make_engine(settings.database_url(self.service_name), pool_size=workers + 2)
        migrate(self.engine, self.service_name, self.migrations_dir)
        self.factory = sessionmaker(bind=self.engine, expire_on_commit=False)

    def stop(self) -> None:
        if self.engine is not None:
            self.engine.dispose()

    def kill(self) -> None:
        self.stop()

    def get_dependency(self, worker_ctx: WorkerContext) -> Db:
        return Db(self.factory, self.service_name)
