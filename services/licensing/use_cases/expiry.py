"""Housekeeping on a timer: `license_expiring` notices, and forgetting stale failed attempts."""

from __future__ import annotations

from datetime import datetime

from common.unit_of_work import Event, Outcome
from services.licensing import domain, views
from services.licensing.repository import LicensingRepository


def expiry_notices(repo: LicensingRepository, now: datetime) -> Outcome:
    """`license_expiring` for each license a threshold newly applies to; each only once.

    The notice row is claimed with INSERT … ON CONFLICT DO NOTHING, so any number of
    instances scanning at once send each (license, expiry, threshold) exactly once.
    Result: `{"sent": 2}`.
    """
    horizon = now + max(domain.EXPIRY_THRESHOLDS) * domain.DAY
    events: list[Event] = []
    for license in repo.expiring(now, horizon):
        threshold = domain.due_threshold(license.expires_at, now)
        if threshold is None:
            continue
        if repo.claim_expiry_notice(license.id, license.expires_at, threshold, now):
            days_left = domain.days_left(license.expires_at, now)
            payload = views.license_expiring(license, days_left, threshold, now)
            events.append(("license_expiring", payload))
    return Outcome({"sent": len(events)}, events)


def scan(repo: LicensingRepository, now: datetime) -> Outcome:
    """The timer's pass: the due expiry notices, then forget failures past the window."""
    outcome = expiry_notices(repo, now)
    repo.prune_failures(now - domain.FAILURE_WINDOW)
    return outcome
