"""A stable, anonymous installation ID for this machine.

The ID is `SHA-256("license-client/v1\\0" + namespace + "\\0" + machine identifier)` in hex
(64 characters). The machine identifier is, in this order:

- Linux and other systemd/dbus systems: `/etc/machine-id`, else `/var/lib/dbus/machine-id`;
- macOS: the `IOPlatformUUID` that `ioreg -rd1 -c IOPlatformExpertDevice` reports;
- Windows: `MachineGuid` under `HKLM\\SOFTWARE\\Microsoft\\Cryptography`;
- anywhere else, or when those are missing: a random 128-bit ID created once and kept in the
  client's data folder (`machine-id`), so the ID still survives restarts.

Only the hash leaves the machine, never the identifier itself, and the namespace (by default the
product code) makes two vendors' or two products' IDs for the same machine unrelated. The
identifiers above survive reboots and software updates; they change when the OS is reinstalled
(or a VM/container image is cloned without regenerating `/etc/machine-id`).

An explicit ID (the `installation_id` argument, or the `LICENSE_CLIENT_INSTALLATION_ID`
environment variable) is used as it is, without hashing.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

try:
    import winreg  # type: ignore[import-not-found,unused-ignore]  # Windows only
except ImportError:
    winreg = None  # type: ignore[assignment]

from .storage import Store, atomic_write

INSTALLATION_ID_ENV = "LICENSE_CLIENT_INSTALLATION_ID"
FALLBACK_FILE = "machine-id"
LINUX_MACHINE_ID_FILES = ("/etc/machine-id", "/var/lib/dbus/machine-id")
_PREFIX = b"license-client/v1\0"
_ALLOWED = re.compile(r"\A[\x21-\x7e]{1,128}\Z")  # printable ASCII, no spaces


def installation_id(
    namespace: str,
    store: Store | None = None,
    override: str | None = None,
) -> str:
    """This machine's installation ID for `namespace` (see the module docstring)."""
    explicit = override or os.environ.get(INSTALLATION_ID_ENV)
    if explicit:
        explicit = explicit.strip()
        if not _ALLOWED.match(explicit):
            raise ValueError("an installation ID is 1-128 printable ASCII characters, no spaces")
        return explicit
    return derive(namespace, machine_identifier(store))


def derive(namespace: str, identifier: str) -> str:
    """The hashed installation ID of a machine identifier within a namespace."""
    digest = hashlib.sha256()
    digest.update(_PREFIX)
    digest.update(namespace.encode("utf-8"))
    digest.update(b"\0")
    digest.update(identifier.strip().lower().encode("utf-8"))
    return digest.hexdigest()


def machine_identifier(store: Store | None = None) -> str:
    """The raw identifier of this machine (never sent anywhere; hash it with `derive`)."""
    found = platform_identifier()
    if found:
        return found
    if store is None:
        raise RuntimeError("no machine identifier on this system and no data folder to keep one")
    return persisted_identifier(store)


def platform_identifier() -> str | None:
    if sys.platform == "win32":
        return _windows_machine_guid()
    if sys.platform == "darwin":
        return _macos_platform_uuid()
    for name in LINUX_MACHINE_ID_FILES:
        value = _read_id_file(Path(name))
        if value:
            return value
    return None


def persisted_identifier(store: Store) -> str:
    """A random identifier kept in the data folder, created on first use."""
    path = store.path(FALLBACK_FILE)
    existing = _read_id_file(path)
    if existing:
        return existing
    store.ensure_folder()
    value = secrets.token_hex(16)
    atomic_write(path, value.encode("ascii") + b"\n")
    # two processes may race on the first run: whichever file won is the one everyone uses
    return _read_id_file(path) or value


def _read_id_file(path: Path) -> str | None:
    try:
        value = path.read_text(encoding="ascii", errors="ignore").strip()
    except OSError:
        return None
    # systemd writes "uninitialized" early in the first boot; an empty file means none
    if not value or value == "uninitialized" or set(value) <= {"0"}:
        return None
    return value


def _macos_platform_uuid() -> str | None:
    try:
        output = subprocess.run(
            ["/usr/sbin/ioreg", "-rd1", "-c", "IOPlatformExpertDevice"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    found = re.search(r'"IOPlatformUUID"\s*=\s*"([^"]+)"', output)
    return found.group(1) if found else None


def _windows_machine_guid() -> str | None:
    if winreg is None:
        return None
    try:
        with winreg.OpenKey(
            winreg.HKEY_LOCAL_MACHINE,
            r"SOFTWARE\Microsoft\Cryptography",
            0,
            winreg.KEY_READ | winreg.KEY_WOW64_64KEY,  # the same value for 32-bit Python
        ) as key:
            value, _ = winreg.QueryValueEx(key, "MachineGuid")
    except OSError:
        return None
    return str(value) if value else None
