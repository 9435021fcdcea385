"""nameko dependencies of the licensing service: its certificate keys, password box and
offline deactivation secrets."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from nameko.extensions import DependencyProvider

from common import settings
from common.secrets import load_or_create, secret_key
from services.licensing.crypto import (
    Keyring,
    OfflineSecrets,
    PasswordBox,
    generate_private_key_text,
    load_key_list,
    load_private_key,
)

SIGNING_KEY_FILE = "license_signing_key"


@dataclass(frozen=True)
class Keys:
    """What a worker gets: the certificate keyring, the activation-password box and the
    deriver of offline deactivation secrets (each with its own key from `SECRET_KEY`)."""

    keyring: Keyring
    box: PasswordBox
    offline: OfflineSecrets


@lru_cache(maxsize=8)
def _keys(signing: bytes, retired: bytes, secret: bytes) -> Keys:
    # parsed once per process and configuration: the hot paths only sign, verify, decrypt
    keyring = Keyring.build(load_private_key(signing), load_key_list(retired))
    return Keys(keyring, PasswordBox(secret), OfflineSecrets(secret))


def load_keys() -> Keys:
    """`LICENSE_SIGNING_KEY` (else `var/license_signing_key`, generated once),
    `LICENSE_SIGNING_KEYS_RETIRED` and `SECRET_KEY` (else `var/secret_key`)."""
    signing = load_or_create(SIGNING_KEY_FILE, "LICENSE_SIGNING_KEY", generate_private_key_text)
    retired = (settings.get("LICENSE_SIGNING_KEYS_RETIRED") or "").encode()
    return _keys(signing, retired, secret_key())


class LicensingKeys(DependencyProvider):
    """Dependency: `keys = LicensingKeys()`; loads (or generates) the keys at start-up."""

    def setup(self) -> None:
        self.keys = load_keys()

    def get_dependency(self, worker_ctx: object) -> Keys:
        return self.keys
