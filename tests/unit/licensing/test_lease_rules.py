"""A floating license's rules as plain functions: terms, lease IDs and tokens, expiry and its
caps, borrowing limits, live or not, validation codes, the daily notice and usage."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pytest

from services.licensing import domain

NOW = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
GROUP = f"[{domain.ALPHABET}]{{4}}"


def test_floating_terms_get_defaults_and_node_locked_ones_none() -> None:
    assert domain.lease_terms("floating") == domain.LeaseTerms("floating", 900, 7)
    assert domain.lease_terms("floating", 60, 0) == domain.LeaseTerms("floating", 60, 0)
    assert domain.lease_terms("node_locked", 900, 7) == domain.LeaseTerms("node_locked")
    assert domain.lease_terms(None) == domain.LeaseTerms("node_locked")


def test_lease_ids_are_opaque_and_tokens_kept_only_as_hashes() -> None:
    ids = {domain.new_lease_id() for _ in range(200)}
    assert len(ids) == 200
    assert all(re.fullmatch(f"LS-{GROUP}-{GROUP}", value) for value in ids)
    token = domain.new_lease_token()
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", token)
    stored = domain.lease_token_hash(token)
    assert re.fullmatch(r"[0-9a-f]{64}", stored) and token not in stored
    assert domain.lease_token_matches(stored, token)
    assert not domain.lease_token_matches(stored, token[:-1] + ("A" if token[-1] != "A" else "B"))
    assert not domain.lease_token_matches(stored, "")


def test_a_lease_lives_until_its_expiry_and_not_an_instant_longer() -> None:
    assert domain.lease_is_live("live", NOW + timedelta(seconds=1), NOW)
    assert not domain.lease_is_live("live", NOW, NOW)
    assert not domain.lease_is_live("checked_in", NOW + timedelta(hours=1), NOW)
    assert domain.lease_status("live", NOW, NOW) == "expired"
    assert domain.lease_status("live", NOW + timedelta(seconds=1), NOW) == "live"
    assert domain.lease_status("revoked", NOW + timedelta(hours=1), NOW) == "revoked"
    # a lapsed lease ended at its expiry, whether or not anything marked it
    assert domain.lease_ended_at("live", NOW - timedelta(minutes=5), None, NOW) == (
        NOW - timedelta(minutes=5)
    )
    assert domain.lease_ended_at("live", NOW + timedelta(minutes=5), None, NOW) is None
    assert domain.lease_ended_at("checked_in", NOW + timedelta(minutes=5), NOW, NOW) == NOW


def test_a_check_out_lasts_one_period_or_the_borrowing_never_past_the_license() -> None:
    assert domain.lease_expiry(NOW, 900, None) == NOW + timedelta(minutes=15)
    assert domain.lease_expiry(NOW, 900, NOW + timedelta(minutes=5)) == NOW + timedelta(minutes=5)
    borrow = NOW + timedelta(days=3)
    assert domain.lease_expiry(NOW, 900, None, borrow) == borrow
    assert domain.lease_expiry(NOW, 900, NOW + timedelta(days=1), borrow) == NOW + timedelta(days=1)


def test_a_heartbeat_extends_by_one_period_never_shortens_nor_passes_the_license() -> None:
    soon = NOW + timedelta(minutes=2)
    assert domain.heartbeat_expiry(soon, NOW, 900, None) == NOW + timedelta(minutes=15)
    borrowed = NOW + timedelta(days=2)
    assert domain.heartbeat_expiry(borrowed, NOW, 900, None) == borrowed
    license_end = NOW + timedelta(minutes=10)
    assert domain.heartbeat_expiry(soon, NOW, 900, license_end) == license_end


@pytest.mark.parametrize(
    ("days", "until", "allowed"),
    [
        (7, NOW + timedelta(days=7), True),
        (7, NOW + timedelta(days=7, seconds=1), False),
        (7, NOW + timedelta(minutes=1), True),
        (0, NOW + timedelta(minutes=1), False),
        (90, NOW + timedelta(days=90), True),
    ],
)
def test_borrowing_limits(days: int, until: datetime, allowed: bool) -> None:
    assert domain.borrow_allowed(until, NOW, days) is allowed


def test_the_latest_borrowing_end() -> None:
    assert domain.latest_borrow(NOW, 7) == NOW + timedelta(days=7)
    assert domain.latest_borrow(NOW, 0) is None


def test_all_seats_in_use_is_told_once_a_day() -> None:
    assert domain.seats_exhausted_due(None, NOW)
    assert not domain.seats_exhausted_due(NOW - timedelta(hours=23, minutes=59), NOW)
    assert domain.seats_exhausted_due(NOW - timedelta(hours=24), NOW)


@pytest.mark.parametrize(
    ("live", "status", "code"),
    [
        (True, "active", "VALID"),
        (False, "active", "LEASE_EXPIRED"),
        (True, "suspended", "SUSPENDED"),
        (False, "suspended", "SUSPENDED"),
        (False, "expired", "EXPIRED"),
    ],
)
def test_lease_validation_codes(live: bool, status: str, code: str) -> None:
    assert domain.lease_validation_code(live, status) == code


def test_lease_claims_expire_with_the_lease() -> None:
    base = domain.certificate_claims(
        license_id="L-AAAA-BBBB",
        customer_id="C1111111",
        product_code="cadpro",
        product_name="CAD Pro",
        seats=5,
        expires_at=NOW + timedelta(days=300),
        installation_id="inst-1",
        machine_name="PC-1",
        activated_at=NOW,
        now=NOW,
        jti="abc",
    )
    lease_end = NOW + timedelta(minutes=15)
    claims = domain.lease_claims(base, "LS-AAAA-BBBB", lease_end, False)
    assert claims["exp"] == int(lease_end.timestamp())
    assert (claims["lease_id"], claims["model"], claims["borrowed"]) == (
        "LS-AAAA-BBBB",
        "floating",
        False,
    )
    assert claims["license_id"] == "L-AAAA-BBBB" and claims["installation_id"] == "inst-1"


def test_usage_of_the_last_thirty_days() -> None:
    today = date(2026, 12, 2)
    days = [(date(2026, 11, 3), 9), (date(2026, 11, 2), 12), (today, 4), (date(2026, 11, 20), 7)]
    assert domain.usage_summary(days, today) == {
        "peak_30d": 9,
        "days": [
            {"date": "2026-11-03", "peak": 9},
            {"date": "2026-11-20", "peak": 7},
            {"date": "2026-12-02", "peak": 4},
        ],
    }
    assert domain.usage_summary([], today) == {"peak_30d": 0, "days": []}
