"""Secrets that are configured, or generated once into `var/` and reused by every process."""

from __future__ import annotations

import base64
import os
import secrets
import tempfile
from collections.abc import Callable
from pathlib import Path

from common import settings


def load_or_create(name: str, env_key: str, make: Callable[[], bytes] | None = None) -> bytes:
    """Return the secret from `env_key`, else from `var/<name>`, creating that file once.

    The value is written in full to a private temporary file, then hard-linked to its real
    name: the link fails when another process got there first (the loser reads what the
    winner wrote), and nobody ever sees an empty or half-written file, even after a crash.
    """
    configured = settings.get(env_key)
    if configured:
        return configured.encode()
    path = Path(settings.var_dir()) / name
    if path.exists():
        return _read_complete(path)
    # stored exactly as returned: a reader strips, so the first process must see the same
    value = (make or _random_secret)().strip()
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{name}.")  # mode 0600
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(value)
            handle.flush()
            os.fsync(handle.fileno())
        os.link(temporary, path)
    except FileExistsError:
        return _read_complete(path)
    finally:
        os.unlink(temporary)
    return value


def _read_complete(path: Path) -> bytes:
    # the file only ever appears complete (linked after the write): empty means damaged
    data = path.read_bytes().strip()
    if not data:
        raise RuntimeError(f"secret file {path} is empty")
    return data


def _random_secret() -> bytes:
    return base64.urlsafe_b64encode(secrets.token_bytes(32))


def secret_key() -> bytes:
    """`SECRET_KEY`: encryption of secrets at rest and signing of internal tokens."""
    return load_or_create("secret_key", "SECRET_KEY")
