"""common.throttle.growing_delay: free failures, then a doubling wait after the latest one."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from common.throttle import ThrottleDecision, growing_delay

NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
WINDOW = timedelta(hours=1)
BASE = timedelta(seconds=5)
CAP = timedelta(minutes=15)
FREE = 5


def decide(failures: list[datetime], now: datetime = NOW, free: int = FREE) -> ThrottleDecision:
    return growing_delay(failures, now, free, WINDOW, BASE, CAP)


def test_no_failures_and_fewer_than_the_free_ones_cost_nothing() -> None:
    assert decide([]) == ThrottleDecision(True, 0)
    assert decide([NOW] * (FREE - 1)) == ThrottleDecision(True, 0)


def test_the_free_th_failure_starts_a_wait_of_base_after_the_latest() -> None:
    assert decide([NOW] * FREE) == ThrottleDecision(False, 5)
    earlier = [NOW - timedelta(minutes=m) for m in (40, 30, 20, 10)]
    assert decide([*earlier, NOW - timedelta(seconds=2)]) == ThrottleDecision(False, 3)


@pytest.mark.parametrize(("beyond", "wait"), [(0, 5), (1, 10), (2, 20), (3, 40), (7, 640)])
def test_each_failure_beyond_the_free_ones_doubles_the_wait(beyond: int, wait: int) -> None:
    assert decide([NOW] * (FREE + beyond)) == ThrottleDecision(False, wait)


def test_the_wait_stops_at_the_cap_however_many_failures() -> None:
    assert decide([NOW] * (FREE + 8)).retry_after == CAP.total_seconds()
    # no overflow: the exponent is bounded before the multiplication
    assert decide([NOW] * 10_000).retry_after == CAP.total_seconds()


def test_the_attempt_is_allowed_exactly_when_the_wait_has_passed() -> None:
    failures = [NOW] * (FREE + 1)  # 10 s
    assert not decide(failures, NOW + timedelta(seconds=9, milliseconds=999)).allowed
    assert decide(failures, NOW + timedelta(seconds=10)) == ThrottleDecision(True, 0)


def test_retry_after_rounds_up_to_whole_seconds_and_is_at_least_one() -> None:
    failures = [NOW] * FREE
    assert decide(failures, NOW + timedelta(seconds=4, milliseconds=1)).retry_after == 1
    assert decide(failures, NOW + timedelta(seconds=1, milliseconds=500)).retry_after == 4


def test_the_wait_counts_from_the_latest_failure_in_any_order() -> None:
    failures = [NOW - timedelta(minutes=m) for m in (50, 3, 40, 0, 20, 10)]
    shuffled = random.sample(failures, len(failures))
    assert decide(failures) == decide(shuffled) == ThrottleDecision(False, 10)


def test_failures_outside_the_window_do_not_count() -> None:
    old = [NOW - WINDOW - timedelta(seconds=s) for s in range(0, 100, 10)]
    assert decide(old) == ThrottleDecision(True, 0)
    at_the_edge = [NOW - WINDOW] * FREE  # exactly a window ago: already out
    assert decide(at_the_edge).allowed
    assert decide([*old, *[NOW] * (FREE - 1)]).allowed


def test_with_no_free_failures_and_none_yet_the_attempt_is_allowed() -> None:
    assert decide([], free=0).allowed


def test_a_guesser_who_waits_each_time_is_held_to_a_few_guesses_an_hour() -> None:
    """With a window longer than the delays take to reach the cap, the cap holds."""
    moment, failures = NOW, []
    window = timedelta(hours=6)
    while moment < NOW + timedelta(days=1):
        decision = growing_delay(failures, moment, FREE, window, BASE, CAP)
        if decision.allowed:
            failures.append(moment)
        else:
            moment += timedelta(seconds=decision.retry_after)
    last_hours = [at for at in failures if at >= NOW + timedelta(hours=12)]
    assert len(last_hours) <= 12 * 4 + 1
