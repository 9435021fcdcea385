"""Licensing rules as plain Python: IDs, activation passwords, status, seats, renewals,
suspensions and disputed payments, expiry notices, validation codes, features, and a
floating license's leases (offline activation's files: offline.py)."""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from common import identifiers
from common.throttle import (  # noqa: F401 - address rules are part of this domain
    IPV6_SUBSCRIBER_PREFIX,
    UNKNOWN_ADDRESS,
    ThrottleDecision,
    address_key,
    growing_delay,
)

# the verdict of a validation is shared with the gateway's read model (common/validation.py)
from common.validation import (  # noqa: F401 - part of this domain
    ACTIVE,
    BAD_SIGNATURE,
    CODE_DEACTIVATED,
    CODE_EXPIRED,
    CODE_SUSPENDED,
    EXPIRED,
    LAST_SEEN_RESOLUTION,
    SUSPENDED,
    VALID,
    VALIDATION_ANSWER_SECONDS,
    last_seen_cutoff,
    last_seen_due,
    license_status,
    validation_claims,
    validation_code,
)

# Crockford-like: no 0/O, 1/I/L, so a password read out on the phone survives.
ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
PASSWORD_GROUPS = 4  # 4 groups of 4 from 31 symbols: about 79 bits
GROUP_SIZE = 4
LICENSE_ID_PREFIX = "L-"

INSTALLATION_ACTIVE, INSTALLATION_DEACTIVATED = "active", "deactivated"
SOURCES = ("product", "portal", "staff")
# the actor type a source implies: who acted on a history row written before rows named
# their actor, and who frees a seat when the caller names nobody (a portal user whose name
# the caller did not pass is still a user)
SOURCE_ACTORS = {"product": "product", "portal": "user", "staff": "staff"}
# an offline activation or deactivation (a file carried to and from the portal)
OFFLINE = "offline"

# History event types
ACTIVATED, REACTIVATED, DEACTIVATED, ACTIVATION_REFUSED = (
    "activated",
    "reactivated",
    "deactivated",
    "activation_refused",
)

# Lengths are counted in Unicode code points; anything in between is stored exactly.
LICENSE_ID_MAX = 64  # as typed (any case, spaces around); canonical IDs are much shorter
INSTALLATION_ID_MAX = 128
MACHINE_NAME_MAX = 200

# Failed activations/deactivations are counted per (license ID, client address) and per
# client address: the first ones within the window are free, each further one doubles the
# wait after the latest (common.throttle.growing_delay). No counter is keyed by the license
# alone, so guesses from one address never slow the product down at another.
FAILURE_WINDOW = timedelta(minutes=15)
FREE_FAILURES_PER_LICENSE = 10  # per (license ID, address)
FREE_FAILURES_PER_ADDRESS = 30  # per address, whatever the license IDs (an office's NAT)
FAILURE_DELAY = timedelta(seconds=5)  # the first wait; then 10, 20, 40 s… at most the cap
FAILURE_DELAY_CAP = FAILURE_WINDOW

EXPIRY_THRESHOLDS = (30, 7, 1)  # days before expiry; one `license_expiring` each
DAY = timedelta(days=1)

HISTORY_PAGE_DEFAULT = 50
HISTORY_PAGE_MAX = 200

# a `payment_succeeded` from billing: applied to a license; not applicable (a well-formed
# payment naming what cannot be delivered: billing is told, and refunds it); or parked
# (malformed: kept for staff)
PAYMENT_APPLIED, PAYMENT_NOT_APPLIED, PAYMENT_PARKED = "applied", "not_applied", "parked"

SUSPENSION_REASON_MAX = 500

# the company's labels of a license (the portal's "which CAD Pro is which")
NICKNAME_MAX = 60
NOTE_MAX = 500


def label(value: str | None) -> str | None:
    """A nickname or note as stored: trimmed, None when nothing is left.

    >>> label("  Design office  "), label("   "), label(None)
    ('Design office', None, None)
    """
    if value is None:
        return None
    return value.strip() or None


# how stale an installation's `last_seen_at` may be before a validation writes it: a machine
# validating every few minutes costs one UPDATE an hour, not one per validation
# What a staff guardrail refuses unless forced (the codes of the errors the use cases raise)
EXPIRES_IN_PAST = "expires_in_past"
EXTENSION_SHORTENS = "extension_shortens"
LICENSE_IS_PERPETUAL = "license_is_perpetual"


def _groups(count: int) -> str:
    return "-".join(
        "".join(secrets.choice(ALPHABET) for _ in range(GROUP_SIZE)) for _ in range(count)
    )


def new_license_id() -> str:
    """An opaque license ID such as `L-7KQX-M2PD` (about 40 bits; uniqueness is checked)."""
    return LICENSE_ID_PREFIX + _groups(2)


def normalize_license_id(value: str) -> str:
    """`" l-7kqx-m2pd "` → `"L-7KQX-M2PD"` (common.identifiers' one canonical form)."""
    return identifiers.license_id(value)


def new_activation_password() -> str:
    """A readable random password such as `K7QX-M2PD-9TRW-H4NC`."""
    return _groups(PASSWORD_GROUPS)


def normalize_activation_password(value: str) -> str:
    """Typed passwords compare without case, spaces or dashes (`k7qx m2pd…` works too)."""
    return "".join(value.split()).replace("-", "").upper()


def activation_password_matches(stored: str, given: str) -> bool:
    """Constant-time comparison of the license's password with what the product sent."""
    expected = normalize_activation_password(stored).encode()
    candidate = normalize_activation_password(given).encode("utf-8", "surrogatepass")
    return bool(expected) and hmac.compare_digest(expected, candidate)


def other_product(license_product: str, requested: str | None) -> bool:
    """Whether a product's call names another product than its license's (`requested`, any
    case; None: the product named none, so there is nothing to refuse).

    >>> other_product("cadpro", " CADPro "), other_product("cadpro", "femsolver")
    (False, True)
    """
    return requested is not None and identifiers.code(requested) != license_product


def issue_refusal(expires_at: datetime | None, now: datetime) -> str | None:
    """Why staff should not issue a license ending `expires_at` (None: nothing against it).

    `issue_refusal(yesterday, now)` is EXPIRES_IN_PAST: the customer would be emailed about a
    new license that is already expired. A perpetual license (None) is always fine.
    """
    if expires_at is not None and expires_at <= now:
        return EXPIRES_IN_PAST
    return None


def extension_refusal(current: datetime | None, requested: datetime, now: datetime) -> str | None:
    """Why staff should not move a license's expiry from `current` to `requested`.

    LICENSE_IS_PERPETUAL: it has no end date to move (extending would give it one);
    EXTENSION_SHORTENS: `requested` is earlier than `current`; EXPIRES_IN_PAST: `requested`
    is already over (the customer would be told "extended until" a day gone by). The same
    date again is no refusal: nothing changes.
    """
    if current is None:
        return LICENSE_IS_PERPETUAL
    if requested < current:
        return EXTENSION_SHORTENS
    if requested != current and requested <= now:
        return EXPIRES_IN_PAST
    return None


def suspension_reason(reason: str | None) -> str | None:
    """A suspension's reason as stored and shown: stripped, None when nothing is left."""
    if reason is None:
        return None
    return reason.strip() or None


# why a license is suspended (`License.suspension_cause`): staff's decision, or a payment of
# it disputed at the customer's bank (a chargeback), lifted by itself when the dispute is won
BY_STAFF, PAYMENT_DISPUTED = "staff", "payment_disputed"
SUSPENSION_CAUSES = (BY_STAFF, PAYMENT_DISPUTED)
# a payment dispute's states; billing closes one as won or lost
DISPUTE_OPEN, DISPUTE_WON, DISPUTE_LOST = "open", "won", "lost"
DISPUTE_OUTCOMES = (DISPUTE_WON, DISPUTE_LOST)


def dispute_reason(receipt_number: str) -> str:
    """The suspension reason a disputed payment gives its license, in the customer's words
    (the portal and the `license_suspended` email show it).

    >>> dispute_reason("R-1")
    'The payment R-1 is disputed with the bank; suspended until the dispute is resolved.'
    """
    return (
        f"The payment {receipt_number} is disputed with the bank; suspended until the dispute"
        " is resolved."
    )


def dispute_suspends(status: str) -> bool:
    """A payment disputed suspends its license only while the license is active: one
    suspended already stays as it is (staff's suspension stays staff's), and an expired one
    has nothing left to stop."""
    return status == ACTIVE


def dispute_resumes(outcome: str, cause: str | None, open_disputes: int) -> bool:
    """A dispute closed lifts the suspension that disputes caused, once the last one is won.

    >>> dispute_resumes("won", PAYMENT_DISPUTED, 0), dispute_resumes("lost", PAYMENT_DISPUTED, 0)
    (True, False)
    >>> dispute_resumes("won", BY_STAFF, 0), dispute_resumes("won", PAYMENT_DISPUTED, 1)
    (False, False)
    """
    return outcome == DISPUTE_WON and cause == PAYMENT_DISPUTED and open_disputes == 0


def has_free_seat(seats: int, in_use: int) -> bool:
    return in_use < seats


def renewal_extends(expires_at: datetime | None, period_end: datetime) -> bool:
    """A paid renewal moves the expiry only forward, and a perpetual license stays perpetual.

    `renewal_extends(None, end)` is False; `renewal_extends(end, end)` is False too.
    """
    return expires_at is not None and expires_at < period_end


def throttle(
    license_failures: list[datetime], address_failures: list[datetime], now: datetime
) -> ThrottleDecision:
    """Allow an attempt unless the license's failures from this address or all the
    address's failures ask for a wait; refused: the longer of the two waits.

    `license_failures`: of this license ID from this address; `address_failures`: of this
    address on any license ID (both within FAILURE_WINDOW, older ones are ignored).
    """
    decisions = [
        growing_delay(failures, now, free, FAILURE_WINDOW, FAILURE_DELAY, FAILURE_DELAY_CAP)
        for failures, free in (
            (license_failures, FREE_FAILURES_PER_LICENSE),
            (address_failures, FREE_FAILURES_PER_ADDRESS),
        )
    ]
    refused = [decision for decision in decisions if not decision.allowed]
    if not refused:
        return ThrottleDecision(True)
    return max(refused, key=lambda decision: decision.retry_after)


def days_left(expires_at: datetime, now: datetime) -> int:
    """Whole days until expiry, rounded up: 29.9 days left is "30 days"."""
    return max(0, math.ceil((expires_at - now) / DAY))


def due_threshold(expires_at: datetime | None, now: datetime) -> int | None:
    """The expiry notice due now: the smallest threshold the remaining time is within.

    A license issued 5 days before its end gets the 7-day notice, not the 30-day one too.
    """
    if expires_at is None or expires_at <= now:
        return None
    remaining = expires_at - now
    due = [days for days in EXPIRY_THRESHOLDS if remaining <= days * DAY]
    return min(due) if due else None


def certificate_claims(
    *,
    license_id: str,
    customer_id: str,
    product_code: str,
    product_name: str,
    seats: int,
    expires_at: datetime | None,
    installation_id: str,
    machine_name: str,
    activated_at: datetime,
    now: datetime,
    jti: str,
    features: Iterable[str] = (),
    offline_nonce: str | None = None,
) -> dict[str, Any]:
    """The claims of an activation certificate; `exp` only when the license expires;
    `features`: the codes the license unlocks, sorted. An offline activation's
    (`offline_nonce`: its request's nonce) adds `source: "offline"` and that `nonce`, so
    the kit reads both from the signed certificate, not from a file anyone could edit."""
    claims: dict[str, Any] = {
        "iss": "license-portal",
        "sub": license_id,
        "jti": jti,
        "license_id": license_id,
        "customer_id": customer_id,
        "product": product_code,
        "product_name": product_name,
        "seats": seats,
        "installation_id": installation_id,
        "machine_name": machine_name,
        "activated_at": int(activated_at.timestamp()),
        "features": sorted(features),
        "iat": int(now.timestamp()),
    }
    if expires_at is not None:
        claims["exp"] = int(expires_at.timestamp())
    if offline_nonce is not None:
        claims["source"] = OFFLINE
        claims["nonce"] = offline_nonce
    return claims


# a lease certificate whose lease ended (checked in, revoked, or lapsed)
CODE_LEASE_EXPIRED = "LEASE_EXPIRED"


def actor_type_of_source(source: str | None) -> str:
    """The actor type a `source` implies: product, user (the portal), staff, else system
    (common/audit.py ACTOR_TYPES).

    >>> actor_type_of_source("portal"), actor_type_of_source(None)
    ('user', 'system')
    """
    return SOURCE_ACTORS.get(source or "", "system")


def password_view_audited(reveal_password: bool, actor_type: str) -> bool:
    """Whether showing the activation password is a fact of the audit trail: when it is
    shown to a person, a portal user; staff, billing and the system read without a trace.

    >>> password_view_audited(True, "user"), password_view_audited(True, "staff")
    (True, False)
    """
    return reveal_password and actor_type == "user"


# --- features ------------------------------------------------------------------------------


def feature_codes(codes: Iterable[str]) -> list[str]:
    """Codes in their canonical form (lower case, like product codes), once each, sorted.

    >>> feature_codes([" Steel", "dynamic", "STEEL"])
    ['dynamic', 'steel']
    """
    return sorted({identifiers.code(code) for code in codes})


def unknown_features(codes: Iterable[str], known: Iterable[str]) -> list[str]:
    """The codes that are no feature of the product (`known`), sorted.

    >>> unknown_features(["steel", "bim"], ["steel", "dynamic"])
    ['bim']
    """
    return sorted(set(feature_codes(codes)) - set(known))


@dataclass(frozen=True)
class FeatureChange:
    """A license's features after a change, and what the change added and removed."""

    features: list[str]
    added: list[str]
    removed: list[str]

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed)


def change_features(
    current: Iterable[str], add: Iterable[str] = (), remove: Iterable[str] = ()
) -> FeatureChange:
    """Add then remove (a code in both ends up removed); only real differences count.

    >>> change_features(["steel"], add=["steel", "dynamic"], remove=["bim"])
    FeatureChange(features=['dynamic', 'steel'], added=['dynamic'], removed=[])
    """
    before = set(current)
    after = (before | set(feature_codes(add))) - set(feature_codes(remove))
    return FeatureChange(sorted(after), sorted(after - before), sorted(before - after))


# --- floating licenses: leases ----------------------------------------------------------------

# a node-locked license holds a seat per activated machine; a floating one a seat per live
# lease, which its machine keeps by heartbeats (or borrows for days)
NODE_LOCKED, FLOATING = "node_locked", "floating"
MODELS = (NODE_LOCKED, FLOATING)
LEASE_SECONDS_MIN, LEASE_SECONDS_MAX, LEASE_SECONDS_DEFAULT = 60, 86_400, 900
MAX_BORROW_DAYS_MAX, MAX_BORROW_DAYS_DEFAULT = 90, 7  # 0: borrowing not allowed

LEASE_ID_PREFIX = "LS-"
LEASE_TOKEN_BYTES = 32
LEASE_LIVE, LEASE_CHECKED_IN, LEASE_REVOKED, LEASE_EXPIRED = (
    "live",
    "checked_in",
    "revoked",
    "expired",
)

# History event types of leases (heartbeats and an installation's re-check-out write none)
LEASE_CHECKED_OUT, LEASE_CHECKED_IN_EVENT, LEASE_REVOKED_EVENT, LEASE_EXPIRED_EVENT = (
    "lease_checked_out",
    "lease_checked_in",
    "lease_revoked",
    "lease_expired",
)
LEASE_REFUSED = "lease_refused"
# who marks a lapsed lease expired (a check-out or the scan): the system, at its expiry
SYSTEM_SOURCE = "system"

# "all seats in use" is told at most this often per license
SEATS_EXHAUSTED_EVERY = timedelta(hours=24)
USAGE_DAYS = 30  # the portal's "peak use, last 30 days"


@dataclass(frozen=True)
class LeaseTerms:
    """A license's model and, when floating, its lease period and longest borrowing."""

    model: str
    lease_seconds: int | None = None
    max_borrow_days: int | None = None


def lease_terms(
    model: str | None, lease_seconds: int | None = None, max_borrow_days: int | None = None
) -> LeaseTerms:
    """The terms a license is issued with: a floating one gets the defaults for what is not
    given, a node-locked one none at all (whatever was given: callers refuse that first).

    >>> lease_terms("floating", max_borrow_days=0)
    LeaseTerms(model='floating', lease_seconds=900, max_borrow_days=0)
    >>> lease_terms(None, 600)
    LeaseTerms(model='node_locked', lease_seconds=None, max_borrow_days=None)
    """
    if model != FLOATING:
        return LeaseTerms(NODE_LOCKED)
    return LeaseTerms(
        FLOATING,
        LEASE_SECONDS_DEFAULT if lease_seconds is None else lease_seconds,
        MAX_BORROW_DAYS_DEFAULT if max_borrow_days is None else max_borrow_days,
    )


def new_lease_id() -> str:
    """An opaque lease ID such as `LS-7KQX-M2PD` (uniqueness is checked on insert)."""
    return LEASE_ID_PREFIX + _groups(2)


def new_lease_token() -> str:
    """The bearer token of a lease: 32 random bytes, URL-safe base64 (43 characters)."""
    return secrets.token_urlsafe(LEASE_TOKEN_BYTES)


def lease_token_hash(token: str) -> str:
    """What is stored of a lease token: its SHA-256, hex (a 256-bit random token needs no
    slow hash: nobody can guess it from its hash)."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def lease_token_matches(stored_hash: str, token: str) -> bool:
    """Constant-time comparison of a lease's stored hash with the hash of `token`."""
    return hmac.compare_digest(stored_hash.encode(), lease_token_hash(token).encode())


def lease_is_live(status: str, expires_at: datetime, now: datetime) -> bool:
    """A lease holds its seat while it is live and not past its expiry: a lapsed lease frees
    its seat at `expires_at`, whether or not anything has marked it expired yet."""
    return status == LEASE_LIVE and expires_at > now


def lease_status(status: str, expires_at: datetime, now: datetime) -> str:
    """The status a lease is shown with: a live one past its expiry is `expired`.

    >>> at = datetime(2026, 12, 2, 10, 0)
    >>> lease_status("live", at, at), lease_status("revoked", at, at - DAY)
    ('expired', 'revoked')
    """
    if status == LEASE_LIVE and expires_at <= now:
        return LEASE_EXPIRED
    return status


def lease_ended_at(
    status: str, expires_at: datetime, ended_at: datetime | None, now: datetime
) -> datetime | None:
    """When a lease ended (None while live): a lapsed one at its expiry."""
    if status == LEASE_LIVE:
        return expires_at if expires_at <= now else None
    return ended_at


def capped(moment: datetime, license_expires_at: datetime | None) -> datetime:
    """A lease never outlives its license: `moment`, or the license's expiry if earlier."""
    if license_expires_at is not None and license_expires_at < moment:
        return license_expires_at
    return moment


def lease_expiry(
    now: datetime,
    lease_seconds: int,
    license_expires_at: datetime | None,
    borrow_until: datetime | None = None,
) -> datetime:
    """A check-out's expiry: one lease period from now, or the end of the borrowing; never
    past the license's expiry.

    >>> now = datetime(2026, 12, 2, 10, 0)
    >>> lease_expiry(now, 900, None).time(), lease_expiry(now, 900, now + DAY, now + 3 * DAY)
    (datetime.time(10, 15), datetime.datetime(2026, 12, 3, 10, 0))
    """
    end = borrow_until if borrow_until is not None else now + timedelta(seconds=lease_seconds)
    return capped(end, license_expires_at)


def heartbeat_expiry(
    current: datetime, now: datetime, lease_seconds: int, license_expires_at: datetime | None
) -> datetime:
    """A heartbeat's expiry: one lease period from now, never earlier than the lease's
    current expiry (a borrowed lease keeps its end) nor later than the license's.

    >>> now = datetime(2026, 12, 2, 10, 0)
    >>> heartbeat_expiry(now + DAY, now, 900, None) == now + DAY
    True
    """
    return max(current, capped(now + timedelta(seconds=lease_seconds), license_expires_at))


def latest_borrow(now: datetime, max_borrow_days: int) -> datetime | None:
    """The latest end a borrowing may have now; None when the license allows none."""
    if max_borrow_days <= 0:
        return None
    return now + max_borrow_days * DAY


def borrow_allowed(borrow_until: datetime, now: datetime, max_borrow_days: int) -> bool:
    """Whether a machine may borrow a seat until `borrow_until` (at most `max_borrow_days`
    from now; 0 days: never).

    >>> now = datetime(2026, 12, 2, 10, 0)
    >>> borrow_allowed(now + 7 * DAY, now, 7), borrow_allowed(now + DAY, now, 0)
    (True, False)
    """
    latest = latest_borrow(now, max_borrow_days)
    return latest is not None and borrow_until <= latest


def seats_exhausted_due(notified_at: datetime | None, now: datetime) -> bool:
    """Whether a refused check-out should tell the customer that every seat is in use: at
    most once per SEATS_EXHAUSTED_EVERY per license."""
    return notified_at is None or now - notified_at >= SEATS_EXHAUSTED_EVERY


def lease_validation_code(lease_live: bool, status: str) -> str:
    """What a verified lease certificate is worth now. The license's state comes first (a
    lease lapses with its license, and "expired" or "suspended" is what the customer must
    act on), then the lease's: ended or lapsed is LEASE_EXPIRED (check out again)."""
    if status == SUSPENDED:
        return CODE_SUSPENDED
    if status == EXPIRED:
        return CODE_EXPIRED
    if not lease_live:
        return CODE_LEASE_EXPIRED
    return VALID


def lease_claims(
    base: dict[str, Any], lease_id: str, expires_at: datetime, borrowed: bool
) -> dict[str, Any]:
    """A lease certificate's claims: an activation certificate's (`certificate_claims`,
    the lease's machine and start as its installation), with `lease_id`, `model: floating`,
    `borrowed`, and `exp` the lease's expiry: the certificate lapses with the lease."""
    return {
        **base,
        "lease_id": lease_id,
        "model": FLOATING,
        "borrowed": borrowed,
        "exp": int(expires_at.timestamp()),
    }


def usage_window(today: date) -> date:
    """The first day of the usage the portal shows (`USAGE_DAYS` days, today included)."""
    return today - timedelta(days=USAGE_DAYS - 1)


def usage_summary(days: Iterable[tuple[date, int]], today: date) -> dict[str, Any]:
    """`{"peak_30d": 7, "days": [{"date": "2026-12-02", "peak": 7}, ...]}`: the days with a
    record in the window, oldest first, and the highest peak among them (0: none).

    >>> usage_summary([(date(2026, 12, 2), 3), (date(2026, 10, 1), 9)], date(2026, 12, 2))
    {'peak_30d': 3, 'days': [{'date': '2026-12-02', 'peak': 3}]}
    """
    first = usage_window(today)
    kept = sorted((day, peak) for day, peak in days if first <= day <= today)
    return {
        "peak_30d": max((peak for _, peak in kept), default=0),
        "days": [{"date": day.isoformat(), "peak": peak} for day, peak in kept],
    }
