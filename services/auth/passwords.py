"""argon2id hashing (OWASP: m = 19 MiB, t = 2, p = 1), off the eventlet hub.

argon2 is CPU-bound C code that releases the GIL: running it in eventlet's thread pool keeps
one slow hash from stalling every other request of the process.
"""

from __future__ import annotations

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError
from eventlet import tpool

HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1, type=Type.ID)
# Verified against when the login is unknown, so both answers take the same time.
_DUMMY_HASH = HASHER.hash("not-a-real-password-0")


def hash_password(password: str) -> str:
    return tpool.execute(HASHER.hash, password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    try:
        return tpool.execute(HASHER.verify, stored_hash or _DUMMY_HASH, password) and bool(
            stored_hash
        )
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    return HASHER.check_needs_rehash(stored_hash)
