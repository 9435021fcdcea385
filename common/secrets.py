"""Secrets that are configured, or generated once into `var/` and reused by every process."""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path

from common import settings


def load_or_create(name: str, env_key: str, make: callable = None) -> bytes:
    """Return the secret from `env_key`, else from `var/<name>`, creating that file once.

    Creation uses O_EXCL so that several processes starting together agree on one value:
    the loser of the race reads what the winner wrote.
    """
    configured = settings.get(env_key)
    if configured:
        return configured.encode()
    path = Path(settings.var_dir()) / name
    value = (make or _random_secret)()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_complete(path)
    with os.fdopen(fd, "wb") as handle:
        handle.write(value)
    return value


def _read_complete(path: Path) -> bytes:
    # The winner may still be writing: wait (briefly) for a non-empty file.
    import time

    for _ in range(100):
        data = path.read_bytes().strip()
        if data:
            return data
        time.sleep(0.02)
    raise RuntimeError(f"secret file {path} stayed empty")


def _random_secret() -> bytes:
    return base64.urlsafe_b64encode(secrets.token_bytes(32))


def secret_key() -> bytes:
    """`SECRET_KEY`: encryption of secrets at rest and signing of internal tokens."""
    return load_or_create("secret_key", "SECRET_KEY")
