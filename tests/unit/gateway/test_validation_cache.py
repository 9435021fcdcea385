"""The gateway's validation read model, its pure half (gateway/validation.py) and the shared
verdict (common/validation.py): LRU, max age, the generation race, the `iat` rule, seen
marks; and the answer equal to licensing's for the same facts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from common.validation import Facts, answer, facts_from_wire, facts_to_wire
from gateway.validation import (
    BYPASS,
    HIT,
    MISS,
    REACTIVATION_MARGIN,
    SEEN_ROUNDS,
    SILENCE_SECONDS,
    FactsCache,
    SeenMarks,
    installation_of,
    license_of,
    superseded,
)

NOW = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
VALID = Facts(expires_at=NOW + timedelta(days=30), features=("steel",), last_seen_at=NOW)


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def cache(size: int = 3, max_age: float = 60.0) -> tuple[FactsCache, Clock]:
    clock = Clock()
    facts_cache = FactsCache(size, max_age, clock)
    facts_cache.connected = True
    facts_cache.heard()
    return facts_cache, clock


def test_a_miss_is_stored_and_then_hits() -> None:
    facts_cache, _ = cache()
    key = ("L-1", "i-1")
    assert facts_cache.lookup(key) == (MISS, None)
    assert facts_cache.store(key, VALID, facts_cache.ticket())
    assert facts_cache.lookup(key) == (HIT, VALID)


def test_no_license_is_cached_as_none() -> None:
    facts_cache, _ = cache()
    assert facts_cache.store(("L-gone", "i"), None, facts_cache.ticket())
    assert facts_cache.lookup(("L-gone", "i")) == (HIT, None)


def test_least_recently_used_entries_go_first() -> None:
    facts_cache, _ = cache(size=2)
    for name in ("a", "b"):
        facts_cache.store((name, "i"), VALID, facts_cache.ticket())
    facts_cache.lookup(("a", "i"))  # a is used: b is now the oldest
    facts_cache.store(("c", "i"), VALID, facts_cache.ticket())
    assert len(facts_cache) == 2
    assert facts_cache.lookup(("b", "i"))[0] == MISS
    assert facts_cache.lookup(("a", "i"))[0] == HIT
    assert "b" not in facts_cache.by_license


def test_an_entry_older_than_max_age_is_a_miss() -> None:
    facts_cache, clock = cache(max_age=60)
    facts_cache.store(("a", "i"), VALID, facts_cache.ticket())
    clock.t += 59
    facts_cache.heard()
    assert facts_cache.lookup(("a", "i"))[0] == HIT
    clock.t += 2
    facts_cache.heard()
    assert facts_cache.lookup(("a", "i"))[0] == MISS


def test_an_invalidation_drops_every_installation_of_the_license() -> None:
    facts_cache, _ = cache(size=10)
    for key in (("a", "1"), ("a", "2"), ("b", "1")):
        facts_cache.store(key, VALID, facts_cache.ticket())
    assert facts_cache.invalidate("a") == 2
    assert facts_cache.lookup(("a", "1"))[0] == MISS
    assert facts_cache.lookup(("a", "2"))[0] == MISS
    assert facts_cache.lookup(("b", "1"))[0] == HIT


def test_a_fetch_that_started_before_an_invalidation_stores_nothing() -> None:
    facts_cache, _ = cache()
    ticket = facts_cache.ticket()  # the fetch starts: licensing reads the old facts
    facts_cache.invalidate("a")  # the change's event comes before the fetch's answer
    assert not facts_cache.store(("a", "i"), VALID, ticket)
    assert facts_cache.lookup(("a", "i"))[0] == MISS
    # another license's invalidation does not refuse it; a fetch started after does store
    other = facts_cache.ticket()
    facts_cache.invalidate("b")
    assert facts_cache.store(("a", "i"), VALID, other)


def test_a_fetch_that_started_before_a_flush_stores_nothing() -> None:
    facts_cache, _ = cache()
    ticket = facts_cache.ticket()
    facts_cache.flush()
    assert not facts_cache.store(("a", "i"), VALID, ticket)
    assert facts_cache.store(("a", "i"), VALID, facts_cache.ticket())


def test_forgotten_invalidations_refuse_older_fetches() -> None:
    facts_cache, _ = cache()
    ticket = facts_cache.ticket()
    facts_cache.invalidate("a")
    for number in range(10_001):  # "a" is forgotten: the floor refuses the ticket instead
        facts_cache.invalidate(f"x{number}")
    assert "a" not in facts_cache.invalidated
    assert not facts_cache.store(("a", "i"), VALID, ticket)


def test_while_disconnected_the_cache_is_bypassed_and_stores_nothing() -> None:
    facts_cache, _ = cache()
    facts_cache.store(("a", "i"), VALID, facts_cache.ticket())
    facts_cache.connected = False
    assert facts_cache.lookup(("a", "i")) == (BYPASS, None)
    assert not facts_cache.store(("b", "i"), VALID, facts_cache.ticket())
    off = FactsCache(0)
    off.connected = True
    off.heard()
    assert off.lookup(("a", "i")) == (BYPASS, None)


def test_a_silent_connection_bypasses_the_cache() -> None:
    facts_cache, clock = cache()
    facts_cache.store(("a", "i"), VALID, facts_cache.ticket())
    clock.t += SILENCE_SECONDS - 0.5
    assert facts_cache.lookup(("a", "i"))[0] == HIT
    clock.t += 1  # no event, no heartbeat: the broker may have dropped our queue
    assert facts_cache.lookup(("a", "i")) == (BYPASS, None)
    assert not facts_cache.store(("b", "i"), VALID, facts_cache.ticket())
    facts_cache.heard()
    assert facts_cache.lookup(("a", "i"))[0] == HIT


def test_a_deactivation_is_a_miss_for_a_certificate_issued_after_it() -> None:
    facts_cache, _ = cache()
    at = NOW
    gone = Facts(active=False, deactivated_at=at, deactivated_by="portal")
    facts_cache.store(("a", "i"), gone, facts_cache.ticket())
    before = int(at.timestamp() - REACTIVATION_MARGIN) - 1
    assert facts_cache.lookup(("a", "i"), before)[0] == HIT
    # a re-activation's certificate, from a licensing host whose clock is up to the margin
    # behind the one that deactivated: it may be VALID now (its event comes after its answer)
    assert facts_cache.lookup(("a", "i"), int(at.timestamp()) - 20)[0] == MISS
    assert superseded(gone, at.timestamp() + 3600)
    assert not superseded(VALID, at.timestamp() + 3600)
    assert superseded(gone, "soon") and superseded(gone, True)  # no usable iat: ask


def test_not_active_with_no_deactivation_time_is_always_a_miss() -> None:
    facts_cache, _ = cache()
    never = Facts(active=False)
    facts_cache.store(("a", "i"), never, facts_cache.ticket())
    assert facts_cache.lookup(("a", "i"), int(NOW.timestamp()) - 86_400)[0] == MISS
    assert superseded(never, None)
    assert not superseded(None, 0)


def test_events_name_their_license_at_the_top_or_in_the_license() -> None:
    assert license_of({"license_id": "L-1", "customer_id": "C1"}) == "L-1"
    assert license_of({"license": {"license_id": "L-2"}, "installation": {}}) == "L-2"
    assert license_of({"receipt_number": "R-1"}) is None
    assert license_of(["not", "an", "event"]) is None


def test_seen_marks_are_due_hourly_retried_and_bounded() -> None:
    seen = SeenMarks(limit=2)
    assert seen.due(Facts(last_seen_at=NOW - timedelta(minutes=61)), NOW)
    assert not seen.due(Facts(last_seen_at=NOW - timedelta(minutes=59)), NOW)
    assert not seen.due(Facts(active=False, last_seen_at=None), NOW)
    assert not seen.due(None, NOW)
    for name in ("a", "b", "c"):
        seen.add((name, "i"))
    assert list(seen.pending) == [("b", "i"), ("c", "i")]  # the oldest dropped
    for _ in range(SEEN_ROUNDS - 1):
        seen.failed(seen.take(10))
        assert len(seen.pending) == 2
    seen.failed(seen.take(10))  # the last round: given up
    assert not seen.pending


def test_a_seen_mark_updates_the_cached_entry() -> None:
    facts_cache, _ = cache()
    stale = Facts(last_seen_at=NOW - timedelta(hours=2))
    facts_cache.store(("a", "i"), stale, facts_cache.ticket())
    facts_cache.mark_seen(("a", "i"), NOW)
    assert facts_cache.lookup(("a", "i"))[1].last_seen_at == NOW


def test_the_answer_is_computed_at_now_from_the_facts() -> None:
    suspended = Facts(
        expires_at=NOW + timedelta(days=1),
        suspended_at=NOW - timedelta(days=1),
        suspension_reason="chargeback",
        features=("steel",),
    )
    assert answer(VALID, "L-1", "i", NOW)["features"] == ["steel"]
    assert answer(VALID, "L-1", "i", NOW + timedelta(days=31))["code"] == "EXPIRED"
    held = answer(suspended, "L-1", "i", NOW)
    assert (held["code"], held["suspension_reason"], held["features"]) == (
        "SUSPENDED",
        "chargeback",
        [],
    )
    gone = answer(Facts(active=False, deactivated_at=NOW, deactivated_by="staff"), "L", "i", NOW)
    assert (gone["code"], gone["deactivated_by"]) == ("DEACTIVATED", "staff")
    assert answer(None, "L-x", "i", NOW)["code"] == "DEACTIVATED"


def test_facts_survive_the_wire() -> None:
    facts = Facts(
        expires_at=NOW,
        suspended_at=None,
        features=("a", "b"),
        active=False,
        deactivated_at=NOW - timedelta(seconds=1),
        deactivated_by="offline",
        last_seen_at=NOW,
    )
    assert facts_from_wire(facts_to_wire(facts)) == facts
    assert facts_from_wire(facts_to_wire(None)) is None


def test_an_installation_event_drops_only_that_installation() -> None:
    facts_cache, _ = cache(size=10)
    for key in (("a", "1"), ("a", "2")):
        facts_cache.store(key, VALID, facts_cache.ticket())
    ticket = facts_cache.ticket()  # a fetch of ("a", "1") in flight
    assert facts_cache.invalidate("a", "1") == 1
    assert facts_cache.lookup(("a", "1"))[0] == MISS
    assert facts_cache.lookup(("a", "2"))[0] == HIT
    assert not facts_cache.store(("a", "1"), VALID, ticket)
    assert facts_cache.store(("a", "2"), VALID, ticket)  # another installation's fetch
    assert installation_of("installation_activated", {"installation": {"installation_id": "1"}})
    assert installation_of("license_extended", {"installation": {"installation_id": "1"}}) is None
