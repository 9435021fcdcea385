"""Account rules as plain Python: logins, passwords, tokens, throttling, password requests,
and the users of a company (roles, statuses, notices, the last owner)."""

from __future__ import annotations

import hashlib
import secrets
import string
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path

from common.throttle import (  # noqa: F401 - address rules are part of this domain
    IPV6_SUBSCRIBER_PREFIX,
    UNKNOWN_ADDRESS,
    ThrottleDecision,
    address_key,
    growing_delay,
)

SESSION_LIFETIME = timedelta(hours=12)
RESET_LIFETIME = timedelta(minutes=30)
SETUP_LIFETIME = timedelta(days=7)

# Failed password checks (logins, current passwords, the company password tried at an
# activation) count per (account, client address) and per client address, each with
# growing delays (`common.throttle.growing_delay`): a guesser is slowed to about four
# guesses an hour from each address, while the owner, from another address, is not slowed
# at all. No counter of the account alone refuses anyone, so nobody can lock a company out
# by failing on purpose.
ACCOUNT_FREE_FAILURES = 5  # per (account, address), before the first delay
ACCOUNT_BASE_DELAY = timedelta(seconds=5)
# longer than the delays take to reach MAX_DELAY, so that they stay there
ACCOUNT_FAILURE_WINDOW = timedelta(hours=6)
# Against one address trying a few passwords on many accounts. Generous, and short: an
# office behind one NAT shares it, and a success does not clear it.
ADDRESS_FREE_FAILURES = 100
ADDRESS_BASE_DELAY = timedelta(seconds=1)
ADDRESS_FAILURE_WINDOW = timedelta(hours=1)
MAX_DELAY = timedelta(minutes=15)
FAILURE_KEEP = max(ACCOUNT_FAILURE_WINDOW, ADDRESS_FAILURE_WINDOW)  # then pruned
# Reset requests queued per client address and window: more are answered the same way but
# not queued, so nobody floods the queue (or the resolving timer) from one address. The
# decision looks only at the address, never at the login, so it tells nothing about logins.
RESET_QUEUE_LIMIT = 20
# every caller that names no address shares one count: more room, not unlimited
RESET_QUEUE_LIMIT_UNKNOWN = 200
RESET_QUEUE_WINDOW = timedelta(minutes=15)
# Reset emails: at most this many per account and window; more requests are answered
# the same way but send nothing, so nobody can flood a mailbox and no account is locked.
RESET_EMAIL_LIMIT = 3
RESET_EMAIL_WINDOW = timedelta(minutes=15)
# how long an expired password request and its tokens are kept (to answer "my link did not
# work"), before the prune timer forgets them
REQUEST_KEEP = timedelta(days=1)

PASSWORD_MIN_LENGTH = 10
PASSWORD_MAX_LENGTH = 128
CUSTOMER_ID_PREFIX = "C"


def normalize_login(login: str) -> str:
    """Logins compare without case and surrounding spaces (emails and customer IDs alike)."""
    return login.strip().lower()


def normalize_email(email: str) -> str:
    return email.strip().lower()


def looks_like_email(login: str) -> bool:
    return "@" in login


def new_customer_id() -> str:
    """An opaque, easy-to-read customer ID such as `C4829113`."""
    return CUSTOMER_ID_PREFIX + "".join(secrets.choice(string.digits) for _ in range(7))


def new_request_id() -> str:
    """The opaque ID of a password request (events carry it; alone it opens nothing)."""
    return secrets.token_hex(16)


def new_token() -> tuple[str, str]:
    """A 256-bit URL-safe token and the SHA-256 hash that is all we store of it."""
    raw = secrets.token_urlsafe(32)
    return raw, hash_token(raw)


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()


# why a password link no longer works (`check_password_token`'s `details.reason`)
TOKEN_USED, TOKEN_EXPIRED, TOKEN_UNKNOWN = "used", "expired", "unknown"


def token_problem(used_at: datetime | None, expires_at: datetime, now: datetime) -> str | None:
    """Why a stored password token is not usable at `now`, or None when it is. A token voided
    by a newer link or a password set (`used_at` set without being used) is used too; used
    wins over expired, as using it was what ended it.

    >>> at = datetime(2026, 12, 3, 8, 0)
    >>> token_problem(None, at, at - timedelta(minutes=1)), token_problem(None, at, at)
    (None, 'expired')
    >>> token_problem(at - timedelta(hours=1), at, at + timedelta(days=1))
    'used'
    """
    if used_at is not None:
        return TOKEN_USED
    if expires_at <= now:
        return TOKEN_EXPIRED
    return None


def password_problems(password: str, *, customer_id: str = "", email: str = "") -> list[str]:
    """Why `password` is not acceptable as a company password; empty when it is."""
    problems = []
    if len(password) < PASSWORD_MIN_LENGTH:
        problems.append(f"Use at least {PASSWORD_MIN_LENGTH} characters.")
    if len(password) > PASSWORD_MAX_LENGTH:
        problems.append(f"Use at most {PASSWORD_MAX_LENGTH} characters.")
    if password.strip() != password or not password.strip():
        problems.append("Do not start or end with spaces.")
    lowered = password.lower()
    for identity in (customer_id, email):
        if identity and identity.lower() in lowered:
            problems.append("Do not include your customer ID or email address.")
            break
    if len(set(password)) < 4:
        problems.append("Use more than three different characters.")
    if is_common_password(password):
        problems.append("Choose a less common password: this one is among the first guessed.")
    return problems


COMMON_PASSWORDS = Path(__file__).with_name("common_passwords.txt")


@cache
def common_passwords() -> frozenset[str]:
    """The lower-cased entries of `common_passwords.txt` (see `common_passwords.py`)."""
    lines = COMMON_PASSWORDS.read_text(encoding="utf-8").splitlines()
    return frozenset(line.lower() for line in lines if line and not line.startswith("#"))


def is_common_password(password: str) -> bool:
    """Whether `password` is on the shipped list of passwords guessed first, ignoring case."""
    return password.lower() in common_passwords()


def counts_per_address(address: str) -> bool:
    """Whether failures from `address` (an `address_key`) are also counted per address.

    Not for UNKNOWN_ADDRESS: it is every caller that names no address, and one counter for
    them all would let anyone's failures slow everyone else's attempts down.
    """
    return address != UNKNOWN_ADDRESS


def throttle(
    account_failures: list[datetime], address_failures: list[datetime], now: datetime
) -> ThrottleDecision:
    """Whether a password may be checked now, given the failures of this (account, address)
    and of this address (none for an address that `counts_per_address` excludes); when not,
    the longer of the two waits."""
    decisions = [
        growing_delay(
            account_failures,
            now,
            ACCOUNT_FREE_FAILURES,
            ACCOUNT_FAILURE_WINDOW,
            ACCOUNT_BASE_DELAY,
            MAX_DELAY,
        ),
        growing_delay(
            address_failures,
            now,
            ADDRESS_FREE_FAILURES,
            ADDRESS_FAILURE_WINDOW,
            ADDRESS_BASE_DELAY,
            MAX_DELAY,
        ),
    ]
    refused = [decision for decision in decisions if not decision.allowed]
    if not refused:
        return ThrottleDecision(True)
    return max(refused, key=lambda decision: decision.retry_after)


def may_queue_reset(address: str, queued_recently: int) -> bool:
    """Whether a reset request from `address` (an `address_key`) is queued, given how many
    from it were queued within RESET_QUEUE_WINDOW; the answer is the same either way.

    >>> may_queue_reset("203.0.113.7", RESET_QUEUE_LIMIT - 1), may_queue_reset("203.0.113.7", 20)
    (True, False)
    """
    limit = RESET_QUEUE_LIMIT_UNKNOWN if address == UNKNOWN_ADDRESS else RESET_QUEUE_LIMIT
    return queued_recently < limit


def may_send_reset_email(recent_requests: list[datetime], now: datetime) -> bool:
    recent = [at for at in recent_requests if at > now - RESET_EMAIL_WINDOW]
    return len(recent) < RESET_EMAIL_LIMIT


def reset_url(portal_url: str, raw_token: str) -> str:
    return f"{portal_url}/reset-password#token={raw_token}"


def accept_url(portal_url: str, raw_token: str) -> str:
    """The link of an invitation: the token rides the fragment, which no server logs."""
    return f"{portal_url}/accept-invitation#token={raw_token}"


# --- users of a company ----------------------------------------------------------------------

OWNER, LICENSE_ADMIN, BILLING, VIEWER = "owner", "license_admin", "billing", "viewer"
ROLES = (OWNER, LICENSE_ADMIN, BILLING, VIEWER)
INVITED, ACTIVE, DISABLED = "invited", "active", "disabled"
STATUSES = (INVITED, ACTIVE, DISABLED)

USER_ID_PREFIX = "U-"
# the alphabet of license IDs (services/licensing/domain.py): no 0/O, 1/I/L to misread
USER_ID_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
USER_ID_GROUP = 4

# The notices a user may choose (security notices are no preference: they always go).
INSTALLATION_ACTIVATED = "installation_activated"
LICENSE_EXPIRING = "license_expiring"
RECEIPTS = "receipts"
PAYMENT_FAILED = "payment_failed"
# every seat of a floating license was in use when one more was asked for (DESIGN §13)
SEATS_EXHAUSTED = "seats_exhausted"
NOTICES = (INSTALLATION_ACTIVATED, LICENSE_EXPIRING, RECEIPTS, PAYMENT_FAILED, SEATS_EXHAUSTED)
LICENSE_NOTICES = (INSTALLATION_ACTIVATED, LICENSE_EXPIRING)
BILLING_NOTICES = (RECEIPTS, PAYMENT_FAILED)

# which notices a role may receive: what its work is about. Seats all in use is for those
# who can act on it: free a seat (revoke a lease) or buy more
ROLE_NOTICES: dict[str, tuple[str, ...]] = {
    OWNER: NOTICES,
    LICENSE_ADMIN: (*LICENSE_NOTICES, SEATS_EXHAUSTED),
    BILLING: BILLING_NOTICES,
    VIEWER: LICENSE_NOTICES,
}
# which are on for a new user of the role: a viewer reads, and chooses what to hear of; of
# seats in use only owners hear by default (a license admin may turn it on)
ROLE_DEFAULT_NOTICES: dict[str, tuple[str, ...]] = {
    OWNER: NOTICES,
    LICENSE_ADMIN: LICENSE_NOTICES,
    BILLING: BILLING_NOTICES,
    VIEWER: (),
}


def new_user_id() -> str:
    """An opaque user ID such as `U-7KQX-M2PD` (about 40 bits; uniqueness is checked)."""
    groups = (
        "".join(secrets.choice(USER_ID_ALPHABET) for _ in range(USER_ID_GROUP)) for _ in range(2)
    )
    return USER_ID_PREFIX + "-".join(groups)


def notices_of(role: str) -> tuple[str, ...]:
    """The notices `role` may receive.

    >>> notices_of("billing")
    ('receipts', 'payment_failed')
    """
    return ROLE_NOTICES[role]


def default_preferences(role: str) -> dict[str, bool]:
    """The preferences of a new user of `role`: each notice on or off.

    >>> default_preferences("viewer")["license_expiring"]
    False
    """
    return {notice: notice in ROLE_DEFAULT_NOTICES[role] for notice in NOTICES}


def preferences_for_role(preferences: dict[str, bool], role: str) -> dict[str, bool]:
    """`preferences` with the notices `role` may not receive turned off (a new role keeps
    what it may still have, and hears nothing that its work is not about)."""
    allowed = ROLE_NOTICES[role]
    return {notice: bool(preferences.get(notice)) and notice in allowed for notice in NOTICES}


def refused_notices(changes: dict[str, bool], role: str) -> list[str]:
    """The notices of `changes` turned on that `role` may not receive (sorted)."""
    return sorted(n for n, on in changes.items() if on and n not in ROLE_NOTICES[role])


def leaves_no_active_owner(active_owners: set[str], user_id: str, active_owner_after: bool) -> bool:
    """Whether a change to `user_id` (a new role, disabled, removed) leaves the company
    without an active owner: `active_owners` are the user IDs of its active owners now.

    A change to anyone who is not an active owner now takes no owner away (a company
    whose contact has not set a password yet may have none at all).

    >>> leaves_no_active_owner({"U-A"}, "U-A", False)
    True
    >>> leaves_no_active_owner({"U-A", "U-B"}, "U-A", False)
    False
    """
    if user_id not in active_owners or active_owner_after:
        return False
    return not (active_owners - {user_id})
