"""What an online validation answers: one pure function of a license's and an
installation's facts and the time, shared by licensing (its `validate` RPC) and the gateway
(its validation read model, gateway/validation.py), so both answer the same thing.

The facts (`Facts`) are what the database holds; the verdict is computed per request from
them and `now`, so a license that expires needs no event to stop validating.

>>> from datetime import UTC
>>> now = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
>>> facts = Facts(expires_at=now + timedelta(days=1), features=("steel",))
>>> later = now + timedelta(days=2)
>>> answer(facts, "L", "i", now)["code"], answer(facts, "L", "i", later)["code"]
('VALID', 'EXPIRED')
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from common.timeutil import iso

# a license's status
ACTIVE, EXPIRED, SUSPENDED = "active", "expired", "suspended"
# a validation's answer code
VALID, CODE_EXPIRED, CODE_SUSPENDED, CODE_DEACTIVATED, BAD_SIGNATURE = (
    "VALID",
    "EXPIRED",
    "SUSPENDED",
    "DEACTIVATED",
    "BAD_SIGNATURE",
)
# a signed validation answer says what was true at `iat`; an hour is the clock tolerance the
# client kit allows, and no more than a verifier needs
VALIDATION_ANSWER_SECONDS = 3600
# how stale an installation's `last_seen_at` may be before a validation writes it: a machine
# validating every few minutes costs one UPDATE an hour, not one per validation
LAST_SEEN_RESOLUTION = timedelta(hours=1)


def last_seen_cutoff(now: datetime) -> datetime:
    """A `last_seen_at` before this is stale at `now` (older than LAST_SEEN_RESOLUTION)."""
    return now - LAST_SEEN_RESOLUTION


def last_seen_due(last_seen_at: datetime | None, now: datetime) -> bool:
    """Whether a validation at `now` should record the machine as seen.

    >>> at = datetime(2026, 12, 3, 8, 0)
    >>> hour, more = timedelta(minutes=60), timedelta(minutes=61)
    >>> last_seen_due(at, at + hour), last_seen_due(at, at + more)
    (False, True)
    """
    return last_seen_at is None or last_seen_at < last_seen_cutoff(now)


def license_status(
    expires_at: datetime | None, suspended_at: datetime | None, now: datetime
) -> str:
    """`suspended` wins over `expired`; a license without expiry is perpetual."""
    if suspended_at is not None:
        return SUSPENDED
    if expires_at is not None and expires_at <= now:
        return EXPIRED
    return ACTIVE


def validation_code(installation_active: bool, status: str) -> str:
    """What a verified certificate is worth now: deactivation first, then the license status."""
    if not installation_active:
        return CODE_DEACTIVATED
    if status == SUSPENDED:
        return CODE_SUSPENDED
    if status == EXPIRED:
        return CODE_EXPIRED
    return VALID


@dataclass(frozen=True)
class Facts:
    """What validating one installation of one license needs, as the database holds it.

    `active`: the installation is active on the license (else `deactivated_at` and
    `deactivated_by` of its latest deactivation, if any). `suspension_reason` matters only
    while `suspended_at` is set; `deactivated_*` only while not `active` (licensing reads
    them by a second query, only for those answers: `needs_refusal_facts`).
    """

    expires_at: datetime | None = None
    suspended_at: datetime | None = None
    suspension_reason: str | None = None
    features: tuple[str, ...] = ()
    active: bool = True
    deactivated_at: datetime | None = None
    deactivated_by: str | None = None
    last_seen_at: datetime | None = None


def code_of(facts: Facts | None, now: datetime) -> str:
    """The answer code at `now`; no facts (no such license) is DEACTIVATED."""
    if facts is None:
        return CODE_DEACTIVATED
    status = license_status(facts.expires_at, facts.suspended_at, now)
    return validation_code(facts.active, status)


def needs_refusal_facts(facts: Facts) -> bool:
    """Whether an answer from `facts` may show who deactivated, when, or why suspended."""
    return not facts.active or facts.suspended_at is not None


def validation_view(
    code: str,
    license_id: Any = None,
    installation_id: Any = None,
    expires_at: datetime | None = None,
    features: Any = None,
    deactivated: tuple[datetime | None, str | None] = (None, None),
    suspended: tuple[datetime | None, str | None] = (None, None),
) -> dict[str, Any]:
    """`validate`'s answer: `{valid, code, license_id, installation_id, expires_at,
    features, deactivated_at, deactivated_by, suspended_at, suspension_reason}`;
    `features` (the codes the license unlocks now) is `[]` unless VALID; `deactivated`
    (when, by: portal, product, staff, offline) only for DEACTIVATED and `suspended` (since
    when, the reason) only for SUSPENDED, so the product can say who, when and why.

    `validation_view(BAD_SIGNATURE)` is the answer to a certificate we cannot trust.
    """
    if code != CODE_DEACTIVATED:
        deactivated = (None, None)
    if code != CODE_SUSPENDED:
        suspended = (None, None)
    return {
        "valid": code == VALID,
        "code": code,
        "license_id": license_id,
        "installation_id": installation_id,
        "expires_at": iso(expires_at),
        "features": sorted(features or []) if code == VALID else [],
        "deactivated_at": iso(deactivated[0]),
        "deactivated_by": deactivated[1],
        "suspended_at": iso(suspended[0]),
        "suspension_reason": suspended[1],
    }


def answer(
    facts: Facts | None, license_id: Any, installation_id: Any, now: datetime
) -> dict[str, Any]:
    """The answer to a verified (activation) certificate naming `license_id` and
    `installation_id`, from `facts` at `now` (`validation_view`)."""
    code = code_of(facts, now)
    if facts is None:
        return validation_view(code, license_id, installation_id)
    return validation_view(
        code,
        license_id,
        installation_id,
        facts.expires_at,
        facts.features,
        (facts.deactivated_at, facts.deactivated_by),
        (facts.suspended_at, facts.suspension_reason),
    )


def validation_claims(
    answer: dict[str, Any], now: datetime, nonce: str | None = None
) -> dict[str, Any]:
    """The claims of a signed validation answer: the answer's fields, `iat`, a short `exp`,
    and the caller's `nonce` if it sent one (so an old answer cannot be replayed to it).

    `exp` bounds what the answer is worth to a verifier that does not look at its `typ`: it
    carries `license_id` and `installation_id` like a certificate, so without an `exp` a
    careless verifier would take it for a perpetual certificate.
    """
    issued = int(now.timestamp())
    claims = {**answer, "iat": issued, "exp": issued + VALIDATION_ANSWER_SECONDS}
    if nonce is not None:
        claims["nonce"] = nonce
    return claims


# --- facts on the bus (licensing's `validation_facts` RPC) ---------------------------------


def facts_to_wire(facts: Facts | None) -> dict[str, Any] | None:
    """`Facts` as JSON: times as ISO 8601 strings; None (no such license) stays None."""
    if facts is None:
        return None
    return {
        "expires_at": iso(facts.expires_at),
        "suspended_at": iso(facts.suspended_at),
        "suspension_reason": facts.suspension_reason,
        "features": list(facts.features),
        "active": facts.active,
        "deactivated_at": iso(facts.deactivated_at),
        "deactivated_by": facts.deactivated_by,
        "last_seen_at": iso(facts.last_seen_at),
    }


def _time(value: Any) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def facts_from_wire(data: dict[str, Any] | None) -> Facts | None:
    """The inverse of `facts_to_wire`."""
    if data is None:
        return None
    return Facts(
        expires_at=_time(data["expires_at"]),
        suspended_at=_time(data["suspended_at"]),
        suspension_reason=data["suspension_reason"],
        features=tuple(sorted(data["features"])),
        active=bool(data["active"]),
        deactivated_at=_time(data["deactivated_at"]),
        deactivated_by=data["deactivated_by"],
        last_seen_at=_time(data["last_seen_at"]),
    )
