"""Licensing rules as plain functions: IDs, passwords, status, seats, throttling, notices."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from services.licensing import domain

NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
GROUP = f"[{domain.ALPHABET}]{{4}}"


def test_activation_passwords_are_readable_random_groups() -> None:
    passwords = {domain.new_activation_password() for _ in range(200)}
    assert len(passwords) == 200
    for password in passwords:
        assert re.fullmatch(f"{GROUP}-{GROUP}-{GROUP}-{GROUP}", password), password
    assert not set("01ILO") & set(domain.ALPHABET)


def test_license_ids_are_opaque_and_unique_enough() -> None:
    ids = {domain.new_license_id() for _ in range(200)}
    assert len(ids) == 200
    assert all(re.fullmatch(f"L-{GROUP}-{GROUP}", value) for value in ids)
    assert domain.normalize_license_id("  l-abcd-efgh ") == "L-ABCD-EFGH"


@pytest.mark.parametrize(
    "typed",
    ["K7QX-M2PD-9TRW-H4NC", "k7qx-m2pd-9trw-h4nc", "K7QX M2PD 9TRW H4NC", " K7QXM2PD9TRWH4NC "],
)
def test_activation_password_comparison_ignores_case_spaces_and_dashes(typed: str) -> None:
    assert domain.activation_password_matches("K7QX-M2PD-9TRW-H4NC", typed)


@pytest.mark.parametrize("typed", ["", "K7QX-M2PD-9TRW-H4N", "K7QX-M2PD-9TRW-H4ND", "ä\udcff"])
def test_activation_password_comparison_refuses_anything_else(typed: str) -> None:
    assert not domain.activation_password_matches("K7QX-M2PD-9TRW-H4NC", typed)


def test_status_from_expiry_and_suspension() -> None:
    later, earlier = NOW + timedelta(days=1), NOW - timedelta(seconds=1)
    assert domain.license_status(None, None, NOW) == "active"
    assert domain.license_status(later, None, NOW) == "active"
    assert domain.license_status(earlier, None, NOW) == "expired"
    assert domain.license_status(NOW, None, NOW) == "expired"
    assert domain.license_status(later, NOW, NOW) == "suspended"
    assert domain.license_status(earlier, NOW, NOW) == "suspended"


def test_another_product_is_named_in_any_case_or_not_at_all() -> None:
    assert not domain.other_product("cadpro", None)  # an older kit names none
    assert not domain.other_product("cadpro", "cadpro")
    assert not domain.other_product("cadpro", " CADPro ")
    assert domain.other_product("cadpro", "femsolver")
    assert domain.other_product("cadpro", "cadpro2")


def test_seat_rule() -> None:
    assert domain.has_free_seat(3, 2)
    assert not domain.has_free_seat(3, 3)
    assert not domain.has_free_seat(1, 5)


def test_throttle_lets_the_free_failures_through_then_doubles_the_wait() -> None:
    free, delay = domain.FREE_FAILURES_PER_LICENSE, domain.FAILURE_DELAY
    assert domain.throttle([NOW] * (free - 1), [NOW] * (free - 1), NOW).allowed
    first = domain.throttle([NOW] * free, [NOW] * free, NOW)
    assert first == domain.ThrottleDecision(False, delay.seconds)
    two_more = [NOW] * (free + 2)
    assert domain.throttle(two_more, two_more, NOW).retry_after == 4 * delay.seconds
    assert domain.throttle(two_more, two_more, NOW + 4 * delay).allowed
    many = [NOW] * (free + 40)
    assert domain.throttle(many, many, NOW).retry_after == domain.FAILURE_DELAY_CAP.seconds
    stale = [NOW - domain.FAILURE_WINDOW - timedelta(seconds=1)] * 50
    assert domain.throttle(stale, stale, NOW).allowed


def test_throttle_counts_the_address_across_licenses_and_answers_the_longer_wait() -> None:
    delay = domain.FAILURE_DELAY.seconds
    spread = [NOW] * domain.FREE_FAILURES_PER_ADDRESS  # a few on each of many license IDs
    decision = domain.throttle([NOW] * 2, spread, NOW)
    assert decision == domain.ThrottleDecision(False, delay)
    assert domain.throttle([], [NOW] * (domain.FREE_FAILURES_PER_ADDRESS - 1), NOW).allowed
    on_key = [NOW] * (domain.FREE_FAILURES_PER_LICENSE + 3)
    assert domain.throttle(on_key, spread, NOW).retry_after == 8 * delay


def test_failures_are_counted_per_ipv4_address_and_ipv6_48() -> None:
    assert domain.IPV6_SUBSCRIBER_PREFIX == 48
    assert domain.address_key(None) == domain.address_key("") == "unknown"
    assert domain.address_key("not an address") == "unknown"
    assert domain.address_key("203.0.113.7") == "203.0.113.7"
    assert domain.address_key("::ffff:203.0.113.7") == "203.0.113.7"
    # hosts of one /64, and other /64s of the same /48 (65,536 of them): one address
    same = {domain.address_key(f"2001:db8:1:2::{n:x}") for n in range(1, 300, 7)}
    same |= {domain.address_key(f"2001:db8:1:{n:x}::1") for n in range(0, 0x10000, 997)}
    same.add(domain.address_key("2001:db8:1:ffff:ffff:ffff:ffff:ffff"))
    assert same == {"2001:db8:1::/48"}
    assert domain.address_key("2001:db8:2::1") == "2001:db8:2::/48"
    assert domain.address_key("2001:db8:0:ffff::1") == "2001:db8::/48"


@pytest.mark.parametrize(
    ("remaining", "threshold"),
    [
        (timedelta(days=40), None),
        (timedelta(days=30, seconds=1), None),
        (timedelta(days=30), 30),
        (timedelta(days=8), 30),
        (timedelta(days=5), 7),
        (timedelta(hours=23), 1),
        (timedelta(seconds=-1), None),
    ],
)
def test_due_expiry_threshold(remaining: timedelta, threshold: int | None) -> None:
    assert domain.due_threshold(NOW + remaining, NOW) == threshold


def test_no_notice_for_perpetual_licenses_and_days_left_round_up() -> None:
    assert domain.due_threshold(None, NOW) is None
    assert domain.days_left(NOW + timedelta(days=29, hours=23), NOW) == 30
    assert domain.days_left(NOW + timedelta(hours=2), NOW) == 1


def test_certificate_claims() -> None:
    common = dict(
        license_id="L-AAAA-BBBB",
        customer_id="C1234567",
        product_code="cadpro",
        product_name="CAD Pro",
        seats=3,
        installation_id="inst-1",
        machine_name="Büro-PC",
        activated_at=NOW,
        now=NOW,
        jti="abc",
    )
    perpetual = domain.certificate_claims(expires_at=None, **common)
    assert "exp" not in perpetual
    assert perpetual["iat"] == int(NOW.timestamp())
    for key in ("license_id", "installation_id", "machine_name", "customer_id", "product"):
        assert perpetual[key]
    dated = domain.certificate_claims(expires_at=NOW + timedelta(days=2), **common)
    assert dated["exp"] == int((NOW + timedelta(days=2)).timestamp())


def test_validation_codes() -> None:
    assert domain.validation_code(True, "active") == "VALID"
    assert domain.validation_code(True, "expired") == "EXPIRED"
    assert domain.validation_code(True, "suspended") == "SUSPENDED"
    assert domain.validation_code(False, "active") == "DEACTIVATED"
    assert domain.validation_code(False, "suspended") == "DEACTIVATED"


def test_a_renewal_only_moves_the_expiry_forward() -> None:
    later = NOW + timedelta(days=30)
    assert domain.renewal_extends(NOW, later)
    assert not domain.renewal_extends(later, NOW)  # never shortens
    assert not domain.renewal_extends(later, later)
    assert not domain.renewal_extends(None, later)  # perpetual stays perpetual


# --- staff guardrails ---------------------------------------------------------------------

LATER, EARLIER = NOW + timedelta(days=30), NOW + timedelta(days=10)


@pytest.mark.parametrize(
    ("expires_at", "refusal"),
    [
        (None, None),  # perpetual
        (NOW + timedelta(seconds=1), None),
        (NOW, domain.EXPIRES_IN_PAST),  # expired the moment it is issued
        (NOW - timedelta(days=365 * 6), domain.EXPIRES_IN_PAST),
    ],
)
def test_issuing_an_already_expired_license_is_a_mistake(expires_at, refusal) -> None:
    assert domain.issue_refusal(expires_at, NOW) == refusal


@pytest.mark.parametrize(
    ("current", "requested", "refusal"),
    [
        (EARLIER, LATER, None),
        (LATER, LATER, None),  # the same date: nothing changes
        (LATER, EARLIER, domain.EXTENSION_SHORTENS),
        (None, LATER, domain.LICENSE_IS_PERPETUAL),
        (None, NOW - timedelta(days=1), domain.LICENSE_IS_PERPETUAL),
        # expired in 2020, "extended" to 2021: later, but already over
        (NOW - timedelta(days=700), NOW - timedelta(days=300), domain.EXPIRES_IN_PAST),
        (NOW - timedelta(days=700), NOW - timedelta(days=700), None),
        # shortening is the first thing to say, even when the date is also past
        (LATER, NOW - timedelta(days=1), domain.EXTENSION_SHORTENS),
    ],
)
def test_extension_refusals(current, requested, refusal) -> None:
    assert domain.extension_refusal(current, requested, NOW) == refusal


@pytest.mark.parametrize(
    ("given", "stored"),
    [(None, None), ("", None), ("   \n", None), ("  Chargeback\n", "Chargeback")],
)
def test_a_suspension_reason_is_stripped_and_blank_is_none(given, stored) -> None:
    assert domain.suspension_reason(given) == stored


@pytest.mark.parametrize(
    ("source", "actor_type"),
    [
        ("product", "product"),
        ("portal", "user"),
        ("staff", "staff"),
        (None, "system"),
        ("x", "system"),
    ],
)
def test_a_source_names_the_actor_who_frees_a_seat_when_the_caller_names_nobody(
    source: str | None, actor_type: str
) -> None:
    assert domain.actor_type_of_source(source) == actor_type


@pytest.mark.parametrize(
    ("reveal", "actor_type", "audited"),
    [
        (True, "user", True),
        (False, "user", False),
        (True, "staff", False),
        (True, "system", False),
        (True, "product", False),
    ],
)
def test_only_a_password_shown_to_a_portal_user_is_audited(
    reveal: bool, actor_type: str, audited: bool
) -> None:
    assert domain.password_view_audited(reveal, actor_type) is audited
