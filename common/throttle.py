"""The sliding-window rule behind every "too many attempts": pure, so services can unit-test it.

Each service owns its own limits (logins in auth, activations per license in licensing) and
counts its own failures in its own database; only the arithmetic is shared.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

UNKNOWN_ADDRESS = "unknown"  # every caller that names no address counts as this one
# one IPv6 site is commonly given a /48 (65,536 /64s), so a /48 is one address to us;
# counted by /64, one subscriber could start afresh 65,536 times
IPV6_SUBSCRIBER_PREFIX = 48


@dataclass(frozen=True)
class ThrottleDecision:
    allowed: bool
    retry_after: int = 0


def sliding_window(
    failures: list[datetime], now: datetime, limit: int, window: timedelta
) -> ThrottleDecision:
    """Allow an attempt unless `limit` failures fell within `window` before `now`.

    `retry_after` counts whole seconds until the oldest counted failure leaves the window.
    """
    recent = sorted(at for at in failures if at > now - window)
    if len(recent) < limit:
        return ThrottleDecision(True)
    oldest_counted = recent[-limit]
    wait = (oldest_counted + window - now).total_seconds()
    return ThrottleDecision(False, max(1, math.ceil(wait)))


def growing_delay(
    failures: list[datetime],
    now: datetime,
    free: int,
    window: timedelta,
    base: timedelta,
    cap: timedelta,
) -> ThrottleDecision:
    """Slow guessing down without locking anyone out for long.

    The first `free` failures within `window` cost nothing; after that, each further failure
    doubles the wait that must pass after the latest one (`base`, 2×`base`, 4×`base`, … at
    most `cap`). A counter keyed by account *and* client address slows an attacker to a few
    guesses an hour while the account's owner, from another address, is not slowed at all.

    >>> t, quarter, second = datetime(2026, 12, 2), timedelta(minutes=15), timedelta(seconds=1)
    >>> growing_delay([t] * 5, t, 5, quarter, second, quarter)
    ThrottleDecision(allowed=False, retry_after=1)
    >>> growing_delay([t] * 7, t + 3 * second, 5, quarter, second, quarter)
    ThrottleDecision(allowed=False, retry_after=1)
    >>> growing_delay([t] * 4, t, 5, quarter, second, quarter)
    ThrottleDecision(allowed=True, retry_after=0)
    """
    recent = sorted(at for at in failures if at > now - window)
    beyond = len(recent) - free
    if beyond < 0 or not recent:
        return ThrottleDecision(True)
    wait = min(cap, base * (2 ** min(beyond, 30)))
    ready = recent[-1] + wait
    if now >= ready:
        return ThrottleDecision(True)
    return ThrottleDecision(False, max(1, math.ceil((ready - now).total_seconds())))


def address_key(address: str | None) -> str:
    """The client address that failures are counted under, in every service.

    IPv4 as it is; IPv6 by its /48 (IPV6_SUBSCRIBER_PREFIX); an IPv4-mapped IPv6 address as
    its IPv4; no address (or one that is not an IP address) as UNKNOWN_ADDRESS.

    >>> address_key("2001:db8:1:2:aa::1"), address_key("::ffff:192.0.2.7"), address_key(None)
    ('2001:db8:1::/48', '192.0.2.7', 'unknown')
    """
    if not address:
        return UNKNOWN_ADDRESS
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return UNKNOWN_ADDRESS
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        shift = 128 - IPV6_SUBSCRIBER_PREFIX
        return str(ipaddress.IPv6Network(((int(ip) >> shift) << shift, IPV6_SUBSCRIBER_PREFIX)))
    return str(ip)
