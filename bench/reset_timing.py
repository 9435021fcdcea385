"""Password reset requests for known and unknown logins, side by side (issue 11, finding 5).

A reset request used to take about twice as long for a login that names a company (a token,
an event, a publish before the answer) as for one that names nobody: a stopwatch told which
logins exist. Now the request is queued and answered with the same work whatever the login.
This prints the median latency of `POST /api/v1/password-resets` for each kind of login, and
their ratio (aim: about 1). Requests alternate known and unknown, one at a time, so a change
of load on the machine touches both alike; each known company gets at most the reset emails
it may have (3 per 15 minutes), so every known request is a full one.

Run alone: `python -m bench bench.reset_timing`.
"""

from __future__ import annotations

import statistics
import time
import uuid

import requests

from tests.support.suite import Suite

COMPANIES = 12
PER_COMPANY = 3  # auth's RESET_EMAIL_LIMIT: more would be dropped by the resolving timer
WARMUP = 10


def _companies(suite: Suite) -> list[str]:
    return [
        suite.portalctl(
            "company", "create", "--name", "Reset Bench", "--contact-name", "Bea",
            "--email", f"reset-bench.{uuid.uuid4().hex[:10]}@example.test",
            "--password", "Bench-Marks-Reset-2026",
        )["contact_email"]
        for _ in range(COMPANIES)
    ]  # fmt: skip


def _request(session: requests.Session, url: str, login: str, client: int) -> float:
    """Milliseconds for one reset request (always 202) from client address number `client`
    (auth queues at most 20 requests per address and quarter hour: one address per request
    keeps every request a queued one)."""
    address = f"198.51.{100 + client // 250}.{1 + client % 250}"
    started = time.perf_counter()
    response = session.post(
        url, json={"login": login}, headers={"X-Forwarded-For": address}, timeout=15
    )
    elapsed = (time.perf_counter() - started) * 1000
    assert response.status_code == 202, response.text
    return elapsed


def run(suite: Suite) -> list[str]:
    known = [email for email in _companies(suite) for _ in range(PER_COMPANY)]
    url = f"{suite.url}/api/v1/password-resets"
    session = requests.Session()
    clients = iter(range(10_000))
    for _ in range(WARMUP):
        _request(session, url, f"warm-up.{uuid.uuid4().hex[:10]}@example.test", next(clients))
    known_ms, unknown_ms = [], []
    for login in known:
        known_ms.append(_request(session, url, login, next(clients)))
        nobody = f"nobody.{uuid.uuid4().hex[:10]}@example.test"
        unknown_ms.append(_request(session, url, nobody, next(clients)))
    known_median, unknown_median = statistics.median(known_ms), statistics.median(unknown_ms)
    return [
        f"password reset, known login     median {known_median:6.1f} ms   (n={len(known_ms)})",
        f"password reset, unknown login   median {unknown_median:6.1f} ms   (n={len(unknown_ms)})",
        f"known / unknown                 {known_median / unknown_median:6.2f}x   "
        "(aim: about 1; about 2 before issue 11)",
    ]
