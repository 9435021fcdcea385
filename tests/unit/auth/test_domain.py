"""The account rules of services.auth.domain: pure functions, no database, no bus."""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import UTC, datetime, timedelta

import pytest

from services.auth import domain

NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
GOOD = "correct horse battery"


# --- logins -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  Ada@Acme.TEST ", "ada@acme.test"),
        ("c1234567", "c1234567"),
        ("\tC1234567\n", "c1234567"),
    ],
)
def test_normalize_login_ignores_case_and_surrounding_space(raw: str, expected: str) -> None:
    assert domain.normalize_login(raw) == expected


def test_normalize_email_lowercases_and_strips() -> None:
    assert domain.normalize_email(" Ada.Lovelace@ACME.Test  ") == "ada.lovelace@acme.test"


def test_looks_like_email_tells_the_two_login_forms_apart() -> None:
    assert domain.looks_like_email("ada@acme.test")
    assert not domain.looks_like_email("C1234567")


# --- customer IDs -------------------------------------------------------------------------


def test_customer_id_is_c_and_seven_digits() -> None:
    ids = {domain.new_customer_id() for _ in range(200)}
    assert all(re.fullmatch(r"C\d{7}", customer_id) for customer_id in ids)
    assert len(ids) > 190  # random, not a counter or a constant


# --- tokens -------------------------------------------------------------------------------


def _token_bytes(raw: str) -> bytes:
    return base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))


def test_token_has_at_least_128_random_bits_and_is_url_safe() -> None:
    raws = [domain.new_token()[0] for _ in range(50)]
    for raw in raws:
        assert re.fullmatch(r"[A-Za-z0-9_-]+", raw)
        assert len(_token_bytes(raw)) * 8 >= 128
    assert len(set(raws)) == len(raws)


def test_token_hash_is_sha256_hex_of_the_raw_token() -> None:
    raw, token_hash = domain.new_token()
    assert token_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert re.fullmatch(r"[0-9a-f]{64}", token_hash)
    assert raw != token_hash
    assert domain.hash_token(raw) == token_hash


def test_hash_token_is_deterministic_and_distinguishes_tokens() -> None:
    assert domain.hash_token("abc") == domain.hash_token("abc")
    assert domain.hash_token("abc") != domain.hash_token("abd")


def test_hash_token_accepts_lone_surrogates_instead_of_crashing() -> None:
    # a token from a client is untrusted text; hashing must not raise UnicodeEncodeError
    assert re.fullmatch(r"[0-9a-f]{64}", domain.hash_token("\ud800"))


# --- password rules -----------------------------------------------------------------------


def test_a_good_password_has_no_problems() -> None:
    assert domain.password_problems(GOOD, customer_id="C1234567", email="ada@acme.test") == []


def test_password_shorter_than_the_minimum_is_refused() -> None:
    short = "Abcdefgh1"[: domain.PASSWORD_MIN_LENGTH - 1]
    problems = domain.password_problems(short)
    assert any(str(domain.PASSWORD_MIN_LENGTH) in problem for problem in problems)
    assert domain.password_problems("Abcdefgh12"[: domain.PASSWORD_MIN_LENGTH]) == []


def test_password_longer_than_the_maximum_is_refused() -> None:
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    at_limit = (alphabet * 10)[: domain.PASSWORD_MAX_LENGTH]
    assert domain.password_problems(at_limit) == []
    problems = domain.password_problems(at_limit + "x")
    assert any(str(domain.PASSWORD_MAX_LENGTH) in problem for problem in problems)


@pytest.mark.parametrize("password", [" " + GOOD, GOOD + " ", GOOD + "\t", " " * 12])
def test_password_starting_or_ending_with_space_is_refused(password: str) -> None:
    assert any("space" in problem for problem in domain.password_problems(password))


@pytest.mark.parametrize(
    "password", ["myC1234567pass", "myc1234567pass", "xxADA@acme.testxx", "ada@acme.test"]
)
def test_password_containing_the_customer_id_or_email_is_refused(password: str) -> None:
    problems = domain.password_problems(password, customer_id="C1234567", email="ada@acme.test")
    assert problems == ["Do not include your customer ID or email address."]


def test_identity_rule_needs_an_identity() -> None:
    assert domain.password_problems("myC1234567pass") == []


@pytest.mark.parametrize("password", ["aaaaaaaaaaaa", "abababababab", "abcabcabcabc"])
def test_password_with_fewer_than_four_distinct_characters_is_refused(password: str) -> None:
    problems = domain.password_problems(password)
    assert problems == ["Use more than three different characters."]
    assert domain.password_problems("abcdabcdabcd") == []


def test_every_problem_is_reported_at_once() -> None:
    assert len(domain.password_problems(" aa")) == 3  # short, space, too few characters


# --- throttling ---------------------------------------------------------------------------

FREE = domain.ACCOUNT_FREE_FAILURES
BASE = domain.ACCOUNT_BASE_DELAY


def test_throttle_allows_attempts_within_the_free_failures() -> None:
    failures = [NOW - timedelta(seconds=i) for i in range(FREE - 1)]
    assert domain.throttle(failures, failures, NOW) == domain.ThrottleDecision(True, 0)
    assert domain.throttle([], [], NOW).allowed


def test_throttle_delays_grow_after_the_free_failures_and_stop_at_the_cap() -> None:
    waits = []
    for extra in range(12):
        failures = [NOW] * (FREE + extra)
        waits.append(domain.throttle(failures, failures, NOW).retry_after)
    base = int(BASE.total_seconds())
    cap = int(domain.MAX_DELAY.total_seconds())
    assert waits[:4] == [base, 2 * base, 4 * base, 8 * base]
    assert waits[-1] == cap and max(waits) == cap


def test_throttle_allows_the_next_attempt_once_the_delay_has_passed() -> None:
    failures = [NOW] * FREE
    assert not domain.throttle(failures, failures, NOW + BASE - timedelta(seconds=1)).allowed
    assert domain.throttle(failures, failures, NOW + BASE).allowed


def test_the_address_counter_allows_more_failures_then_slows_the_address_down() -> None:
    many = [NOW] * (domain.ADDRESS_FREE_FAILURES - 1)
    assert domain.throttle([], many, NOW).allowed
    decision = domain.throttle([], [*many, NOW], NOW)
    assert decision == domain.ThrottleDecision(False, int(domain.ADDRESS_BASE_DELAY.seconds))


def test_throttle_answers_the_longer_of_the_two_waits() -> None:
    account = [NOW] * (FREE + 3)  # 8 x base
    address = [NOW] * (domain.ADDRESS_FREE_FAILURES + 2)  # 4 x the address base
    expected = max(8 * BASE, 4 * domain.ADDRESS_BASE_DELAY).total_seconds()
    assert domain.throttle(account, address, NOW).retry_after == expected


def test_failures_outside_the_windows_do_not_count() -> None:
    old = [NOW - domain.ACCOUNT_FAILURE_WINDOW - timedelta(seconds=s) for s in range(0, 50, 5)]
    recent = [NOW - timedelta(minutes=1)] * (FREE - 1)
    assert domain.throttle(old + recent, [], NOW).allowed
    assert not domain.throttle(old + recent + [NOW], [], NOW).allowed
    limit = domain.ADDRESS_FREE_FAILURES
    old = [NOW - domain.ADDRESS_FAILURE_WINDOW - timedelta(seconds=1)] * limit
    assert domain.throttle([], old, NOW).allowed


def test_an_attacker_settles_at_about_four_guesses_an_hour_per_address() -> None:
    """Play a guesser who tries whenever allowed, for two days, against one account."""
    moment, failures = NOW, []
    while moment < NOW + timedelta(days=2):
        decision = domain.throttle(failures, failures, moment)
        if decision.allowed:
            failures.append(moment)
        else:
            moment += timedelta(seconds=decision.retry_after)
    first_hour = [at for at in failures if at < NOW + timedelta(hours=1)]
    second_day = [at for at in failures if at >= NOW + timedelta(days=1)]
    assert len(first_hour) < 20
    assert len(second_day) <= 4 * 24 + 1


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("203.0.113.7", "203.0.113.7"),
        (" 203.0.113.7 ", "203.0.113.7"),
        ("2001:DB8:1:2:3:4:5:6", "2001:db8:1::/48"),
        ("2001:db8:1:ffff::ffff", "2001:db8:1::/48"),
        ("::ffff:198.51.100.9", "198.51.100.9"),
        (None, "unknown"),
        ("", "unknown"),
        ("not an address", "unknown"),
    ],
)
def test_address_key_counts_ipv6_by_its_48_and_names_unknown_callers(address, key) -> None:
    assert domain.address_key(address) == key


def test_every_64_of_one_ipv6_48_shares_a_key_and_the_next_48_does_not() -> None:
    assert domain.IPV6_SUBSCRIBER_PREFIX == 48
    one = domain.address_key("2001:db8:7::1")
    # the first and last /64 of the /48, and one in between: 65,536 /64s, one address to us
    for address in ("2001:db8:7:0:ffff::1", "2001:db8:7:1::1", "2001:db8:7:ffff:ffff::ffff"):
        assert domain.address_key(address) == one
    assert one != domain.address_key("2001:db8:8::1")
    assert one != domain.address_key("2001:db8:6:ffff::1")


def test_the_unknown_address_has_no_counter_of_its_own() -> None:
    assert not domain.counts_per_address(domain.address_key(None))
    assert domain.counts_per_address(domain.address_key("203.0.113.7"))
    assert domain.counts_per_address(domain.address_key("2001:db8::1"))


# --- common passwords -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "password",
    [
        "password123",
        "Password123",
        "QWERTY12345",
        "qwertyuiop",
        "letmein2024!",
        "1q2w3e4r5t",
        "1234567890",
        "iloveyou123",
        "Welcome2026!",
        "passwordpassword",
        "licenseportal1",
    ],
)
def test_common_passwords_are_refused_whatever_their_case(password: str) -> None:
    assert domain.is_common_password(password)
    assert any("common" in problem for problem in domain.password_problems(password))


@pytest.mark.parametrize("password", [GOOD, "Winter-Orchard-42", "staple gun 4 ever!"])
def test_uncommon_passwords_pass(password: str) -> None:
    assert not domain.is_common_password(password)
    assert domain.password_problems(password) == []


def test_the_shipped_list_holds_thousands_of_entries_the_other_rules_let_through() -> None:
    entries = domain.common_passwords()
    assert len(entries) > 5000
    assert all(len(entry) >= domain.PASSWORD_MIN_LENGTH for entry in entries)
    assert all(entry == entry.lower() for entry in entries)


# --- reset emails ---------------------------------------------------------------------------


def test_reset_emails_are_limited_per_window() -> None:
    limit = domain.RESET_EMAIL_LIMIT
    recent = [NOW - timedelta(minutes=1)] * (limit - 1)
    assert domain.may_send_reset_email(recent, NOW)
    assert not domain.may_send_reset_email(recent + [NOW - timedelta(seconds=1)], NOW)


def test_reset_requests_outside_the_window_do_not_count() -> None:
    old = [NOW - domain.RESET_EMAIL_WINDOW - timedelta(seconds=1)] * 10
    assert domain.may_send_reset_email(old, NOW)
    assert domain.may_send_reset_email([], NOW)


def test_reset_requests_are_queued_up_to_a_share_per_address() -> None:
    limit = domain.RESET_QUEUE_LIMIT
    assert domain.may_queue_reset("203.0.113.7", limit - 1)
    assert not domain.may_queue_reset("203.0.113.7", limit)
    assert not domain.may_queue_reset("2001:db8:1::/48", limit + 5)


def test_callers_without_an_address_share_a_larger_reset_queue_share() -> None:
    assert domain.RESET_QUEUE_LIMIT_UNKNOWN > domain.RESET_QUEUE_LIMIT
    assert domain.may_queue_reset(domain.UNKNOWN_ADDRESS, domain.RESET_QUEUE_LIMIT)
    assert not domain.may_queue_reset(domain.UNKNOWN_ADDRESS, domain.RESET_QUEUE_LIMIT_UNKNOWN)


# --- reset links --------------------------------------------------------------------------


def test_reset_url_is_built_from_the_portal_url_with_the_token_in_the_fragment() -> None:
    raw, _ = domain.new_token()
    url = domain.reset_url("https://portal.example.com", raw)
    assert url.startswith("https://portal.example.com/")
    base, fragment = url.split("#", 1)
    # the token never reaches a server log or a Referer: it lives in the fragment only
    assert raw not in base
    assert fragment == f"token={raw}"
