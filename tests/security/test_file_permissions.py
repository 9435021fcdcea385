"""Finding 8: state on disk is for the services' own user alone, whatever the umask.

Under umask 022 (the usual default, which makes new files world-readable) the things that
create state run as a fresh embedded install does: a service's Database dependency (the
folder `var/`, the SQLite file, its -wal and -shm and the migration lock), the generated
keys and the `.eml` mailer. Every folder they leave must be 0700 and every file 0600.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from types import SimpleNamespace

import pytest
from nameko import config as nameko_config

from common import secrets
from common.db import Database, make_engine
from services.auth.service import MIGRATIONS as AUTH_MIGRATIONS
from services.licensing.crypto import generate_private_key_text
from services.licensing.dependencies import SIGNING_KEY_FILE
from services.notify.mailers import FileMailer, mailer_from_settings

# everything these tests read through common.settings: unset, so the embedded defaults apply
UNSET = ("AUTH_DATABASE_URL", "SECRET_KEY", "LICENSE_SIGNING_KEY", "SMTP_HOST")


@pytest.fixture
def var_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A `VAR_DIR` that does not exist yet, under umask 022."""
    path = tmp_path / "state" / "var"
    for key in UNSET:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("VAR_DIR", str(path))
    previous = os.umask(0o022)
    try:
        with nameko_config.patch(dict.fromkeys(UNSET, "")):
            yield path
    finally:
        os.umask(previous)


def modes(root: Path) -> dict[str, str]:
    """`{relative path: octal mode}` of `root` and everything below it."""
    found = {".": oct(stat.S_IMODE(root.stat().st_mode))}
    for path in root.rglob("*"):
        found[str(path.relative_to(root))] = oct(stat.S_IMODE(path.lstat().st_mode))
    return found


def not_private(root: Path) -> dict[str, str]:
    return {
        name: mode
        for name, mode in modes(root).items()
        if mode != oct(0o700 if (root / name).is_dir() else 0o600)
    }


def test_a_service_database_keys_and_mail_are_private_under_umask_022(var_dir: Path) -> None:
    database = Database("auth", AUTH_MIGRATIONS)
    database.container = SimpleNamespace(max_workers=2)
    database.setup()
    try:
        with database.get_dependency(None).transaction() as session:
            session.connection().exec_driver_sql("SELECT 1")
        # while the service runs, SQLite keeps its write-ahead log and shared memory beside it
        created = set(modes(var_dir))
        assert {"auth.db", "auth.db-wal", "auth.db-shm", "auth.db.migrate.lock"} <= created
        secrets.secret_key()
        secrets.load_or_create(SIGNING_KEY_FILE, "LICENSE_SIGNING_KEY", generate_private_key_text)
        mailer = mailer_from_settings()
        assert isinstance(mailer, FileMailer)
        message = EmailMessage()
        message["Subject"] = "Reset your password"
        message.set_content("https://portal.example/reset-password#token=secret")
        mailer.send(message)
        assert len(list((var_dir / "mail").glob("*.eml"))) == 1
        assert not_private(var_dir) == {}, modes(var_dir)
    finally:
        database.stop()


def test_an_sqlite_file_in_a_new_folder_is_private_with_its_wal(
    tmp_path: Path, var_dir: Path
) -> None:
    path = tmp_path / "elsewhere" / "db" / "service.db"
    engine = make_engine(f"sqlite:///{path}")
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("CREATE TABLE t (x TEXT)")
            connection.exec_driver_sql("INSERT INTO t VALUES ('x')")
        assert {"service.db", "service.db-wal", "service.db-shm"} <= set(modes(path.parent))
        assert not_private(path.parent) == {}, modes(path.parent)
    finally:
        engine.dispose()
