"""A transactional outbox: an event is stored with the change that made it true.

Publishing after commit loses the event if the process dies (or the broker is away) between
the commit and the publish: the customer paid, and no license is ever issued. So a service
stages its events in its own `event_outbox` table inside the same transaction, publishes
them right after the commit, and a relay timer publishes whatever a crash left behind.
Consumers deduplicate by `event_id`, so the rare second publish changes nothing.

Services do not call this module directly: `common.unit_of_work.UnitOfWork` stages a use
case's events with its change, flushes them after the commit, and offers `relay()` and
`prune()` for the service's timers. An event nobody needs before the answer (`Outcome.later`)
is handed to `Later` instead, which publishes it after the answer (`PublishLater`).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any

import eventlet
import eventlet.queue
from nameko.extensions import DependencyProvider
from sqlalchemy import Column, Index, Integer, MetaData, String, Table, Text, select, update
from sqlalchemy.orm import Session

from common import metrics
from common.db import Db
from common.events import new_event
from common.timeutil import UTCDateTime, utcnow

log = logging.getLogger(__name__)

Publish = Callable[[str, dict[str, Any]], Any]
# the relay leaves younger rows to the request that staged them
RELAY_AFTER = timedelta(seconds=10)
RELAY_BATCH = 200


def outbox_table(metadata: MetaData) -> Table:
    """The `event_outbox` table in a service's own metadata (add it to its migrations)."""
    return Table(
        "event_outbox",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("event_id", String(64), nullable=False, unique=True),
        Column("event_type", String(100), nullable=False),
        Column("payload", Text, nullable=False),
        Column("created_at", UTCDateTime(), nullable=False),
        Column("published_at", UTCDateTime(), nullable=True),
        Index("ix_event_outbox_created_at", "created_at"),
    )


def stage(
    session: Session, table: Table, events: Iterable[tuple[str, dict[str, Any]]]
) -> list[tuple[str, dict[str, Any]]]:
    """Stamp `events` and insert them in the caller's transaction; returns what to flush."""
    staged = [(event_type, new_event(payload)) for event_type, payload in events]
    if staged:
        now = utcnow()
        session.execute(
            table.insert(),
            [
                {
                    "event_id": event["event_id"],
                    "event_type": event_type,
                    "payload": json.dumps(event, ensure_ascii=False),
                    "created_at": now,
                }
                for event_type, event in staged
            ],
        )
    return staged


def flush(db: Db, table: Table, publish: Publish, staged: list[tuple[str, dict[str, Any]]]) -> None:
    """Publish events staged by a committed transaction and mark them published.

    Nothing here raises: the change is committed, so its caller must hear of its success. A
    publish that fails leaves the rest to the relay; a mark that fails (the database dropped
    the connection after the commit) leaves published rows unmarked, and the relay publishes
    them once more, which consumers deduplicate by `event_id`.
    """
    if staged:
        _publish_and_mark(db, table, [(publish, event_type, event) for event_type, event in staged])


class Later:
    """Publishes events staged by committed transactions after the entrypoint answered.

    For an event that nobody needs before the answer (an activation's `installation_activated`
    only makes notify send an email): the request answers without waiting for the broker's
    confirm and the mark's transaction, and one green thread publishes what the requests
    handed over, marking each batch published in one UPDATE. The rows were committed with
    their change, so an event this process never got to (it stopped, crashed, or the broker
    was away) is published by the relay (`RELAY_AFTER`): nothing is lost, it only comes
    later. An event that changes what another reader answers (a deactivation, a suspension:
    the gateway's validation cache) must not come later: stage it as usual, and the request
    publishes it before it answers (`flush`).
    """

    def __init__(self, batch: int = RELAY_BATCH) -> None:
        self.batch = batch
        self._queue: eventlet.queue.LightQueue = eventlet.queue.LightQueue()
        self._thread: eventlet.greenthread.GreenThread | None = None

    def submit(
        self, db: Db, table: Table, publish: Publish, staged: list[tuple[str, dict[str, Any]]]
    ) -> None:
        """Hand over events of a committed transaction; publishes them in place when the
        green thread does not run (a test without a container)."""
        if self._thread is None:
            flush(db, table, publish, staged)
            return
        for event_type, event in staged:
            self._queue.put((db, table, publish, event_type, event))

    def start(self) -> None:
        if self._thread is None:
            self._thread = eventlet.spawn(self._run)

    def stop(self, timeout: float = 10.0) -> None:
        """Publish what was handed over (at most `timeout` seconds; the relay takes the rest)."""
        if self._thread is None:
            return
        self._queue.put(None)
        with eventlet.Timeout(timeout, False):
            self._thread.wait()
        self._thread.kill()
        self._thread = None

    def _run(self) -> None:
        stopping = False
        while not stopping:
            items = [self._queue.get()]
            while len(items) < self.batch and not self._queue.empty():
                items.append(self._queue.get_nowait())
            if None in items:
                stopping = True
                items = [item for item in items if item is not None]
            # one container's workers each get a `Db` of their own, all on one engine: one
            # outbox table is one database, whichever worker's `Db` marks the batch
            groups: dict[int, list] = {}
            for item in items:
                groups.setdefault(id(item[1]), []).append(item)
            for group in groups.values():
                db, table = group[0][0], group[0][1]
                try:
                    _publish_and_mark(db, table, [item[2:] for item in group])
                except Exception:  # the relay publishes what is left; the thread goes on
                    log.exception("publishing events after the answer failed")


class PublishLater(DependencyProvider):
    """Dependency: `later = PublishLater()`, then `UnitOfWork(..., later=self.later)`: the
    outcomes' `later` events are published after the answer by one green thread of the
    container (`Later`), started and stopped with it (a stop publishes what is left)."""

    def setup(self) -> None:
        self.later = Later()

    def start(self) -> None:
        self.later.start()

    def stop(self) -> None:
        self.later.stop()

    def kill(self) -> None:
        self.later.stop(timeout=0)

    def get_dependency(self, worker_ctx: Any) -> Later:
        return self.later


def _publish_and_mark(db: Db, table: Table, items: list[tuple[Publish, str, dict]]) -> None:
    """Publish `(publish, event_type, event)` in order until one fails (the relay publishes
    that one and the rest), then mark the published ones in one UPDATE."""
    published = []
    started = time.perf_counter()
    for publish, event_type, event in items:
        try:
            publish(event_type, event)
        except Exception:
            log.warning("publishing %s deferred to the outbox relay", event_type, exc_info=True)
            break
        published.append(event["event_id"])
    metrics.observe_outbox_publish(time.perf_counter() - started)
    _mark(db, table, published)


def _mark(db: Db, table: Table, published: list[str]) -> None:
    if not published:
        return
    try:
        with db.transaction() as session:
            session.execute(
                update(table).where(table.c.event_id.in_(published)).values(published_at=utcnow())
            )
    except Exception as exc:
        log.warning(
            "%d published event(s) not marked (%s); the outbox relay publishes them again",
            len(published),
            exc,
        )


def relay(db: Db, table: Table, publish: Publish, older_than: timedelta = RELAY_AFTER) -> int:
    """Publish unpublished events older than `older_than`; safe with several instances."""
    cutoff = utcnow() - older_than
    count = 0
    with db.transaction() as session:
        rows = session.execute(
            select(table.c.id, table.c.event_type, table.c.payload)
            .where(table.c.published_at.is_(None), table.c.created_at < cutoff)
            .order_by(table.c.id)
            .limit(RELAY_BATCH)
            .with_for_update(skip_locked=True)
        ).all()
        for row in rows:
            publish(row.event_type, json.loads(row.payload))
            session.execute(update(table).where(table.c.id == row.id).values(published_at=utcnow()))
            count += 1
    return count


def prune(db: Db, table: Table, older_than: timedelta = timedelta(days=7)) -> None:
    """Forget published events after a week (they stay long enough to investigate)."""
    with db.transaction() as session:
        session.execute(
            table.delete().where(
                table.c.published_at.is_not(None), table.c.published_at < utcnow() - older_than
            )
        )
