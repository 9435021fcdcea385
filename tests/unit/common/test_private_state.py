"""`var/` and SQLite files are created for the owner alone, whatever the umask; what exists
already is left as its owner set it; in-memory databases create no file."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from common import settings
from common.db import make_engine


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(params=[0o000, 0o022, 0o002])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    previous = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(previous)


def test_var_dir_is_created_0700(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, umask: int):
    monkeypatch.setenv("VAR_DIR", str(tmp_path / "deep" / "var"))
    assert settings.var_dir() == tmp_path / "deep" / "var"
    assert mode(tmp_path / "deep" / "var") == 0o700
    assert settings.var_dir() == tmp_path / "deep" / "var"  # a second call is fine


def test_an_existing_var_dir_is_left_as_it_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    tmp_path.chmod(0o750)
    monkeypatch.setenv("VAR_DIR", str(tmp_path))
    assert settings.var_dir() == tmp_path
    assert mode(tmp_path) == 0o750


def test_a_new_sqlite_file_is_0600_with_its_folder_0700(tmp_path: Path, umask: int) -> None:
    path = tmp_path / "new" / "service.db"
    engine = make_engine(f"sqlite:///{path}")
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("CREATE TABLE t (x TEXT)")
        assert (mode(path.parent), mode(path)) == (0o700, 0o600)
        assert mode(path.with_name("service.db-wal")) == 0o600
    finally:
        engine.dispose()


def test_an_existing_sqlite_file_keeps_its_data_and_becomes_private(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    first = make_engine(f"sqlite:///{path}")
    with first.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE t (x TEXT)")
        connection.exec_driver_sql("INSERT INTO t VALUES ('kept')")
    first.dispose()
    path.chmod(0o644)  # as an earlier release left it under umask 022
    wal = path.with_name("old.db-wal")
    wal.touch(mode=0o644)
    wal.chmod(0o644)
    again = make_engine(f"sqlite:///{path}")
    try:
        with again.connect() as connection:
            assert connection.exec_driver_sql("SELECT x FROM t").scalar() == "kept"
        assert mode(path) == 0o600 and mode(wal) == 0o600
    finally:
        again.dispose()


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
def test_in_memory_sqlite_creates_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    monkeypatch.chdir(tmp_path)
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("SELECT 1").scalar() == 1
    finally:
        engine.dispose()
    assert list(tmp_path.iterdir()) == []


def test_a_relative_sqlite_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    engine = make_engine("sqlite:///var/relative.db")
    engine.dispose()
    assert mode(tmp_path / "var") == 0o700
    assert mode(tmp_path / "var" / "relative.db") == 0o600
