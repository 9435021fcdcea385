"""The per-user data folder and atomic, private JSON files in it.

Where: `$LICENSE_CLIENT_DATA_DIR` if set, else the platform's per-user data folder
(`$XDG_DATA_HOME` or `~/.local/share` on Linux and other Unix, `~/Library/Application Support`
on macOS, `%LOCALAPPDATA%` on Windows), then `license-client/<namespace>`.

How: every write goes to a temporary file in the same folder, is flushed and fsync'ed, then
`os.replace`d over the old file, so a crash or a power cut leaves either the old or the new
file, never half of one. Files are created with mode 0600 and the folder with 0700: the stored
activation holds the license's password. So a reader in another process always sees a whole
document; `locked(name)` makes a read-modify-write of one document exclusive across processes
(an advisory lock on `.<name>.lock`: flock on POSIX, msvcrt on Windows).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import StorageError

DATA_DIR_ENV = "LICENSE_CLIENT_DATA_DIR"
APP_FOLDER = "license-client"


def user_data_root() -> Path:
    """The platform's per-user data folder (not yet specific to this package)."""
    home = Path.home()
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or os.environ.get("APPDATA")
        return Path(base) if base else home / "AppData" / "Local"
    if sys.platform == "darwin":
        return home / "Library" / "Application Support"
    xdg = os.environ.get("XDG_DATA_HOME")
    # the XDG spec: a relative path in the variable is invalid and must be ignored
    return Path(xdg) if xdg and os.path.isabs(xdg) else home / ".local" / "share"


def default_data_dir(namespace: str) -> Path:
    """Where a client for `namespace` keeps its files unless told otherwise."""
    override = os.environ.get(DATA_DIR_ENV)
    if override:
        return Path(override).expanduser()
    return user_data_root() / APP_FOLDER / safe_name(namespace)


def safe_name(text: str) -> str:
    """`text` as one harmless path component."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip(".-")
    return cleaned[:100] or "default"


class Store:
    """JSON documents in one folder, each read whole and replaced atomically."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        # plain strings: validation stats these files every time, and pathlib is slow at it
        self._folder_text = str(self.folder)
        self._paths: dict[str, str] = {}
        self._held = threading.local()  # name -> depth of `locked` in this thread

    def path(self, name: str) -> Path:
        return self.folder / name

    def ensure_folder(self) -> None:
        try:
            self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create the data folder {self.folder}: {exc}") from exc

    def read_json(self, name: str) -> dict[str, Any] | None:
        """The document, or None when it is missing or unreadable as a JSON object."""
        try:
            text = self.path(name).read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StorageError(f"cannot read {self.path(name)}: {exc}") from exc
        try:
            value = json.loads(text)
        except ValueError:
            return None  # a damaged file is as good as none; the next write replaces it
        return value if isinstance(value, dict) else None

    def write_json(self, name: str, document: dict[str, Any]) -> None:
        data = json.dumps(document, indent=2, sort_keys=True).encode("utf-8") + b"\n"
        self.write_bytes(name, data)

    def write_bytes(self, name: str, data: bytes) -> None:
        self.ensure_folder()
        try:
            atomic_write(self.path(name), data)
        except OSError as exc:
            raise StorageError(f"cannot write {self.path(name)}: {exc}") from exc

    def remove(self, name: str) -> None:
        try:
            self.path(name).unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise StorageError(f"cannot remove {self.path(name)}: {exc}") from exc

    @contextlib.contextmanager
    def locked(self, name: str) -> Iterator[None]:
        """Hold the lock of document `name` (re-entrant in one thread): the other processes
        (and the other threads, and other `Store`s of this folder) wait for it. Readers need
        no lock; writers that read first take it. Where the lock file cannot be created (a
        read-only folder) this does nothing: no write can succeed there either."""
        depths: dict[str, int] = self._held.__dict__.setdefault("depths", {})
        if depths.get(name):
            depths[name] += 1
            try:
                yield
            finally:
                depths[name] -= 1
            return
        fd: int | None = None
        try:
            self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self.path(f".{name}.lock"), os.O_RDWR | os.O_CREAT, 0o600)
            _lock(fd)
        except OSError:
            if fd is not None:
                os.close(fd)
            fd = None
        depths[name] = 1
        try:
            yield
        finally:
            depths[name] = 0
            if fd is not None:
                with contextlib.suppress(OSError):
                    _unlock(fd)
                os.close(fd)

    def stamp(self, name: str) -> tuple[int, int, int] | None:
        """(inode, size, mtime) of a file, to notice when another process replaced it."""
        path = self._paths.get(name)
        if path is None:
            path = self._paths[name] = os.path.join(self._folder_text, name)
        try:
            st = os.stat(path)
        except OSError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns)


def atomic_write(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Replace `path` with `data`: temp file in the same folder, fsync, os.replace."""
    # mkstemp creates the file 0600 already, so the secret is never readable by others
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, mode)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    _fsync_folder(path.parent)


if sys.platform == "win32":
    import msvcrt

    def _lock(fd: int) -> None:
        while True:
            try:  # LK_LOCK itself retries for 10 s, then raises: keep waiting
                msvcrt.locking(fd, msvcrt.LK_LOCK, 1)
                return
            except OSError:
                continue

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _lock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX)

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


def _fsync_folder(folder: Path) -> None:
    # makes the rename itself durable on POSIX; Windows cannot open a folder this way
    if os.name != "posix":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
