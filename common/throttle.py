"""The sliding-window rule behind every "too many attempts": pure, so services can unit-test it.

Each service owns its own limits (logins in auth, activations per license in licensing) and
counts its own failures in its own database; only the arithmetic is shared.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta


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
