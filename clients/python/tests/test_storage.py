"""The data folder: where it is, private files, and writes that are all-or-nothing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from license_client import StorageError, storage
from license_client.storage import Store


def test_written_files_are_private_and_complete(tmp_path):
    store = Store(tmp_path / "app")
    store.write_json("activation.json", {"certificate": "x.y.z", "password": "secret"})
    path = tmp_path / "app" / "activation.json"
    assert path.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "app").stat().st_mode & 0o777 == 0o700
    assert store.read_json("activation.json") == {"certificate": "x.y.z", "password": "secret"}
    assert sorted(p.name for p in (tmp_path / "app").iterdir()) == ["activation.json"]


def test_a_failed_write_leaves_the_old_file_and_no_temp_file(tmp_path, monkeypatch):
    store = Store(tmp_path)
    store.write_json("state.json", {"version": 1})

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(storage.os, "replace", broken_replace)
    with pytest.raises(StorageError):
        store.write_json("state.json", {"version": 2})
    assert store.read_json("state.json") == {"version": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_a_crash_while_writing_leaves_the_old_file(tmp_path, monkeypatch):
    store = Store(tmp_path)
    store.write_json("state.json", {"version": 1})

    def crash(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(storage.os, "fsync", crash)
    with pytest.raises(KeyboardInterrupt):
        store.write_json("state.json", {"version": 2})
    assert store.read_json("state.json") == {"version": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_every_write_is_fsynced_before_the_rename(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(storage.os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd)))
    monkeypatch.setattr(
        storage.os, "replace", lambda a, b: (events.append("replace"), real_replace(a, b))
    )
    Store(tmp_path).write_json("a.json", {})
    assert events[:2] == ["fsync", "replace"]


def test_damaged_or_missing_documents_read_as_none(tmp_path):
    store = Store(tmp_path)
    assert store.read_json("missing.json") is None
    (tmp_path / "bad.json").write_text("{not json")
    assert store.read_json("bad.json") is None
    (tmp_path / "list.json").write_text("[1, 2]")
    assert store.read_json("list.json") is None


def test_an_unwritable_folder_is_a_storage_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StorageError):
        Store(blocker / "sub").write_json("a.json", {})


def test_default_folder_per_platform(monkeypatch, tmp_path):
    monkeypatch.setattr(storage.Path, "home", lambda: tmp_path / "home")
    monkeypatch.setattr(storage.sys, "platform", "linux")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert storage.default_data_dir("cadpro") == tmp_path / "xdg" / "license-client" / "cadpro"
    monkeypatch.setenv("XDG_DATA_HOME", "relative/path")  # invalid per the spec: ignored
    expected = tmp_path / "home" / ".local" / "share" / "license-client" / "cadpro"
    assert storage.default_data_dir("cadpro") == expected
    monkeypatch.setattr(storage.sys, "platform", "darwin")
    expected = tmp_path / "home" / "Library" / "Application Support" / "license-client" / "cadpro"
    assert storage.default_data_dir("cadpro") == expected
    monkeypatch.setattr(storage.sys, "platform", "win32")
    monkeypatch.setenv("LOCALAPPDATA", str(tmp_path / "local"))
    assert storage.default_data_dir("cadpro") == tmp_path / "local" / "license-client" / "cadpro"
    monkeypatch.setenv("LICENSE_CLIENT_DATA_DIR", str(tmp_path / "override"))
    assert storage.default_data_dir("cadpro") == Path(tmp_path / "override")


def test_namespace_becomes_one_harmless_folder_name():
    assert storage.safe_name("../../etc/passwd") == "etc-passwd"
    assert storage.safe_name("Acme CAD/Pro 2030") == "Acme-CAD-Pro-2030"
    assert storage.safe_name("..") == "default"


def test_a_documents_lock_holds_off_other_processes_and_is_reentrant(tmp_path):
    fcntl = pytest.importorskip("fcntl")  # the POSIX lock, checked as another process would
    store = Store(tmp_path / "app")

    def free() -> bool:  # what another process would get, asked without waiting
        fd = os.open(tmp_path / "app" / ".lease.json.lock", os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        finally:
            os.close(fd)
        return True

    with store.locked("lease.json"):
        with store.locked("lease.json"):  # the same thread again: no deadlock
            assert not free()
        assert not free()  # still held by the outer one
    assert free()
    assert (tmp_path / "app" / ".lease.json.lock").stat().st_mode & 0o777 == 0o600


def test_a_lock_where_nothing_can_be_written_is_no_error(tmp_path):
    (tmp_path / "file").write_text("")
    with Store(tmp_path / "file" / "app").locked("lease.json"):
        pass
