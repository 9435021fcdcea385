"""What `validate()` and `status()` return: plain, immutable values that print as JSON."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

# the server's verdicts (POST /api/v1/validations)
VALID = "VALID"
EXPIRED = "EXPIRED"
SUSPENDED = "SUSPENDED"
DEACTIVATED = "DEACTIVATED"
BAD_SIGNATURE = "BAD_SIGNATURE"
LEASE_EXPIRED = "LEASE_EXPIRED"  # a floating license's lease ended (lapsed, revoked, returned)
# the client's own
NOT_ACTIVATED = "NOT_ACTIVATED"
MALFORMED = "MALFORMED"
UNSUPPORTED_ALGORITHM = "UNSUPPORTED_ALGORITHM"
UNKNOWN_KEY = "UNKNOWN_KEY"
WRONG_MACHINE = "WRONG_MACHINE"
WRONG_PRODUCT = "WRONG_PRODUCT"
CLOCK_ROLLBACK = "CLOCK_ROLLBACK"
GRACE_EXPIRED = "GRACE_EXPIRED"


@dataclass(frozen=True)
class Validation:
    """The answer to "may the product run?". Truthy when `valid`.

    `features` are the codes of the modules the license unlocks (from the certificate, or
    from the server's answer when that is newer); empty unless `valid`.

    `code` is `VALID` or why not; `reason` says it in words for a log or a dialog. `online` is
    True when the license server gave the verdict, False when it came from the certificate
    alone; `grace_until` is set when the server was unreachable and the offline verdict holds
    only until then.
    """

    valid: bool
    code: str
    reason: str
    online: bool
    checked_at: datetime
    license_id: str | None = None
    installation_id: str | None = None
    machine_name: str | None = None
    product: str | None = None
    customer_id: str | None = None
    expires_at: datetime | None = None
    grace_until: datetime | None = None
    # the feature codes (modules) the license unlocks; none unless `valid`
    features: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return self.valid

    def to_dict(self) -> dict[str, Any]:
        return _jsonable(asdict(self))


@dataclass(frozen=True)
class Status:
    """What this installation holds: the stored activation (or, for a floating license, the
    stored lease: `lease`) and a validation of it."""

    activated: bool
    installation_id: str
    data_dir: str
    validation: Validation
    server: str | None = None
    license_id: str | None = None
    machine_name: str | None = None
    product: str | None = None
    customer_id: str | None = None
    activated_at: datetime | None = None
    expires_at: datetime | None = None
    last_online_check: datetime | None = None
    grace_until: datetime | None = None
    features: tuple[str, ...] = ()
    # "online" or "offline": how the stored certificate was obtained
    source: str | None = None
    # a floating license's stored lease (`Lease.to_dict()`: no token) instead of an activation
    lease: dict[str, Any] | None = None

    @property
    def valid(self) -> bool:
        return self.validation.valid

    def to_dict(self) -> dict[str, Any]:
        return _jsonable(asdict(self))


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return value
