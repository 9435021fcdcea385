"""The gateway's validation read model, its pure half: the facts cache and its rules.

`POST /api/v1/validations` is answered by the gateway itself (gateway/read_model.py) from
the facts of each (license_id, installation_id) it has seen, kept here: fetched from
licensing on a miss (`validation_facts`), dropped when licensing publishes an event about
the license (an `installation_*` event: about that installation), all dropped when the
event consumer (re)connects, bypassed while it is disconnected. The verdict is computed
per request from the facts and `now` (common/validation.py), so expiry needs no event.

Nothing here does I/O: under eventlet every method runs without yielding, so no lock is
needed, and the unit tests drive it with a fake clock.

Staleness guards:
- a fetch takes a `Ticket` before its RPC; `store` refuses its facts when the license was
  invalidated, or the cache flushed, after the ticket was taken (the facts may predate the
  change: its event has already come and gone);
- a cached "not active" is a miss for a certificate issued at or after its deactivation
  time T minus REACTIVATION_MARGIN (`iat` + margin > T), and for any certificate when the
  facts hold no deactivation time: the certificate may come from a re-activation, whose
  `installation_activated` licensing publishes after its answer (it may not have come yet);
- an entry older than `max_age` seconds is a miss (a safety net: events do the work);
- no inbound frame (event or broker heartbeat) for SILENCE_SECONDS: the cache is bypassed
  (a silent partition: the broker may have dropped our queue, and events with it).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from common.validation import Facts, last_seen_due

Key = tuple[str, str]  # (license_id, installation_id)

DEFAULT_SIZE = 20_000  # about 0.9 kB each: some 18 MB (docs/operations.md)
# a safety net only (licensing's events invalidate at once), so longer than the hour between
# a kit's online checks: facts younger than the interval between two validations of one
# installation are what makes the second one a hit (docs/performance.md)
DEFAULT_MAX_AGE = 7200.0
# licenses whose invalidation is remembered for the tickets in flight; older ones raise the
# floor instead (refusing more stores than needed, never fewer)
REMEMBERED_INVALIDATIONS = 10_000
MAX_PENDING_SEEN = 10_000
SEEN_ROUNDS = 5  # a mark that failed this many flushes is dropped (the next hour's comes)

# A re-activation's certificate is issued (`iat`, one licensing host's clock, whole seconds)
# after the deactivation it follows (`deactivated_at`, maybe another host's clock). 30 s
# absorbs clock differences between licensing hosts; a wrong miss costs one fetch only.
REACTIVATION_MARGIN = 30.0
# the broker sends a heartbeat every HEARTBEAT/2 s (gateway/read_model.py: 1 s): silence
# this long means the connection is dead or starved, and events may be lost
SILENCE_SECONDS = 3.0

HIT, MISS, BYPASS = "hit", "miss", "bypass"


def license_of(event: Any) -> str | None:
    """The license a licensing event is about: its `license_id`, or its `license`'s (the
    installation events carry the license as an object), else None.

    >>> license_of({"license_id": "L-1"}), license_of({"license": {"license_id": "L-2"}})
    ('L-1', 'L-2')
    >>> license_of({"receipt_number": "R-1"}) is None
    True
    """
    if not isinstance(event, dict):
        return None
    license_id = event.get("license_id")
    if not isinstance(license_id, str):
        nested = event.get("license")
        license_id = nested.get("license_id") if isinstance(nested, dict) else None
    return license_id if isinstance(license_id, str) else None


def installation_of(event_type: Any, event: Any) -> str | None:
    """The one installation an `installation_*` event is about (its license's other
    installations keep their verdicts: only that key is dropped); None for every other
    event, which may change the verdict of each installation of its license.

    >>> installation_of("installation_deactivated", {"installation": {"installation_id": "i"}})
    'i'
    >>> installation_of("license_suspended", {"installation": {"installation_id": "i"}}) is None
    True
    """
    if not (isinstance(event_type, str) and event_type.startswith("installation_")):
        return None
    installation = event.get("installation") if isinstance(event, dict) else None
    found = installation.get("installation_id") if isinstance(installation, dict) else None
    return found if isinstance(found, str) else None


def superseded(facts: Facts | None, issued_at: Any) -> bool:
    """Whether a certificate issued at `issued_at` (its `iat`, Unix seconds) may come from a
    re-activation after the "not active" `facts` hold: then the facts may be stale (the
    activation's event is published after its answer). Within REACTIVATION_MARGIN of the
    deactivation, or with no deactivation time at all, it may.

    >>> from datetime import UTC
    >>> gone = Facts(active=False, deactivated_at=datetime(2026, 12, 3, 8, 0, 10, tzinfo=UTC))
    >>> t = gone.deactivated_at.timestamp()
    >>> superseded(gone, t - 31), superseded(gone, t - 29), superseded(gone, t + 60)
    (False, True, True)
    >>> superseded(Facts(active=False), t - 3600), superseded(Facts(), t)
    (True, False)
    """
    if facts is None or facts.active:
        return False
    if facts.deactivated_at is None:
        return True
    if not isinstance(issued_at, int | float) or isinstance(issued_at, bool):
        return True
    return issued_at + REACTIVATION_MARGIN > facts.deactivated_at.timestamp()


@dataclass(frozen=True)
class Ticket:
    """Taken before a fetch: the cache's epoch and invalidation count at that moment."""

    epoch: int
    seq: int


@dataclass
class Entry:
    facts: Facts | None  # None: no such license
    stored_at: float


class FactsCache:
    """Facts by (license_id, installation_id), at most `size` entries (least recently used
    go first), none older than `max_age` seconds; `size` 0 keeps nothing."""

    def __init__(
        self,
        size: int = DEFAULT_SIZE,
        max_age: float = DEFAULT_MAX_AGE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.size = size
        self.max_age = max_age
        self.clock = clock
        self.entries: OrderedDict[Key, Entry] = OrderedDict()
        self.by_license: dict[str, set[Key]] = {}
        self.epoch = 0  # bumped by every flush
        self.seq = 0  # bumped by every invalidation
        # a license, or one (license, installation), → the seq of its last invalidation
        self.invalidated: OrderedDict[str | Key, int] = OrderedDict()
        self.floor = 0  # tickets older than this are refused (forgotten invalidations)
        self.connected = False  # the event consumer is consuming: the cache may answer
        self.heard_at = float("-inf")  # the last inbound frame (clock)

    def __len__(self) -> int:
        return len(self.entries)

    def heard(self) -> None:
        """An inbound frame (an event or a heartbeat) arrived: the connection is alive."""
        self.heard_at = self.clock()

    @property
    def usable(self) -> bool:
        return self.size > 0 and self.connected and self.clock() - self.heard_at <= SILENCE_SECONDS

    # --- reading ---------------------------------------------------------------------

    def lookup(self, key: Key, issued_at: Any = None) -> tuple[str, Facts | None]:
        """(HIT, facts) or (MISS, None); (BYPASS, None) while the cache may not answer."""
        if not self.usable:
            return BYPASS, None
        entry = self.entries.get(key)
        if entry is None:
            return MISS, None
        if self.clock() - entry.stored_at > self.max_age or superseded(entry.facts, issued_at):
            self._drop(key)
            return MISS, None
        self.entries.move_to_end(key)
        return HIT, entry.facts

    def ticket(self) -> Ticket:
        return Ticket(self.epoch, self.seq)

    def store(self, key: Key, facts: Facts | None, ticket: Ticket) -> bool:
        """Keep `facts` fetched under `ticket`, unless an invalidation of the license or a
        flush came since (→ False: the facts may predate that change)."""
        if not self.usable or ticket.epoch != self.epoch or ticket.seq < self.floor:
            return False
        invalidated = self.invalidated
        if max(invalidated.get(key[0], -1), invalidated.get(key, -1)) >= ticket.seq:
            return False
        self.entries[key] = Entry(facts, self.clock())
        self.entries.move_to_end(key)
        self.by_license.setdefault(key[0], set()).add(key)
        while len(self.entries) > self.size:
            self._drop(next(iter(self.entries)))
        return True

    # --- changes -----------------------------------------------------------------------

    def invalidate(self, license_id: str, installation_id: str | None = None) -> int:
        """Drop every entry of `license_id` (or only its `installation_id`'s), and refuse
        what was fetched for them before now; → how many entries were dropped."""
        target: str | Key = license_id if installation_id is None else (license_id, installation_id)
        self.invalidated[target] = self.seq
        self.invalidated.move_to_end(target)
        self.seq += 1
        while len(self.invalidated) > REMEMBERED_INVALIDATIONS:
            _, forgotten = self.invalidated.popitem(last=False)
            self.floor = max(self.floor, forgotten + 1)
        if installation_id is not None:
            keys = {target} & self.by_license.get(license_id, set())
            for key in keys:
                self._drop(key)
            return len(keys)
        keys = self.by_license.pop(license_id, set())
        for key in keys:
            self.entries.pop(key, None)
        return len(keys)

    def flush(self) -> None:
        """Forget everything (the consumer reconnected: events may have been missed)."""
        self.entries.clear()
        self.by_license.clear()
        self.invalidated.clear()
        self.epoch += 1
        self.floor = self.seq

    def mark_seen(self, key: Key, now: datetime) -> None:
        """The entry's installation was just recorded as seen (its `last_seen_at` is now)."""
        entry = self.entries.get(key)
        if entry is not None and entry.facts is not None:
            entry.facts = replace(entry.facts, last_seen_at=now)

    def _drop(self, key: Key) -> None:
        self.entries.pop(key, None)
        keys = self.by_license.get(key[0])
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self.by_license[key[0]]


class SeenMarks:
    """Installations answered from the cache whose `last_seen_at` is due (older than
    licensing's resolution), sent to licensing in batches (`mark_seen`, idempotent); a batch
    that fails goes back for the next round, at most SEEN_ROUNDS times, and no more than
    `limit` marks wait (the oldest go first: the next validation brings them back)."""

    def __init__(self, limit: int = MAX_PENDING_SEEN) -> None:
        self.limit = limit
        self.pending: OrderedDict[Key, int] = OrderedDict()  # key → failed rounds

    def due(self, facts: Facts | None, now: datetime) -> bool:
        return facts is not None and facts.active and last_seen_due(facts.last_seen_at, now)

    def add(self, key: Key) -> None:
        self.pending.setdefault(key, 0)
        while len(self.pending) > self.limit:
            self.pending.popitem(last=False)

    def take(self, batch: int) -> list[tuple[Key, int]]:
        taken = []
        while self.pending and len(taken) < batch:
            taken.append(self.pending.popitem(last=False))
        return taken

    def failed(self, taken: list[tuple[Key, int]]) -> None:
        for key, rounds in taken:
            if rounds + 1 < SEEN_ROUNDS and key not in self.pending:
                self.pending[key] = rounds + 1
        while len(self.pending) > self.limit:
            self.pending.popitem(last=False)
