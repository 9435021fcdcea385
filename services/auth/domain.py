"""Account rules as plain Python: logins, passwords, tokens and throttling."""

from __future__ import annotations

import hashlib
import secrets
import string
from datetime import datetime, timedelta

from common.throttle import ThrottleDecision, sliding_window

SESSION_LIFETIME = timedelta(hours=12)
RESET_LIFETIME = timedelta(minutes=30)
SETUP_LIFETIME = timedelta(days=7)

# Failed logins: at most LOGIN_FAILURE_LIMIT within LOGIN_FAILURE_WINDOW per login.
LOGIN_FAILURE_LIMIT = 5
LOGIN_FAILURE_WINDOW = timedelta(minutes=15)
# Reset emails: at most this many per account and window; more requests are answered
# the same way but send nothing, so nobody can flood a mailbox and no account is locked.
RESET_EMAIL_LIMIT = 3
RESET_EMAIL_WINDOW = timedelta(minutes=15)

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


def new_token() -> tuple[str, str]:
    """A 256-bit URL-safe token and the SHA-256 hash that is all we store of it."""
    raw = secrets.token_urlsafe(32)
    return raw, hash_token(raw)


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()


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
    return problems


def throttle(failures: list[datetime], now: datetime) -> ThrottleDecision:
    """Allow a login unless LOGIN_FAILURE_LIMIT failures fell within LOGIN_FAILURE_WINDOW."""
    return sliding_window(failures, now, LOGIN_FAILURE_LIMIT, LOGIN_FAILURE_WINDOW)


def may_send_reset_email(recent_requests: list[datetime], now: datetime) -> bool:
    recent = [at for at in recent_requests if at > now - RESET_EMAIL_WINDOW]
    return len(recent) < RESET_EMAIL_LIMIT


def reset_url(portal_url: str, raw_token: str) -> str:
    return f"{portal_url}/reset-password#token={raw_token}"
