"""One unit of work for every service: a use case, its transaction, its events.

A use case takes a repository and plain data and returns an `Outcome`: its result, the
events that its change makes true, and optionally a refusal to raise *after* the commit (a
refusal that the use case recorded, such as an activation refused for lack of seats, must
be committed before the caller hears of it). `UnitOfWork.run` opens the transaction, stages
the events in the service's outbox with the change, writes its audit events
(common/audit.py) in the same transaction, commits, publishes, then answers:

    uow = UnitOfWork(self.db, LicensingRepository, EventOutbox, self.events)
    license = uow.run(licenses.issue_license, self.keys.box, data, self.clock.now())

Use cases never touch the session; reads that change nothing use `uow.read`. A
state-changing entrypoint passes its request's `Once` (common/idempotency.py), so that a
redelivered request answers the first answer instead of changing anything twice:

    uow.run(licenses.suspend, data, now, once=self.request.once(None, license_id, reason))
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from sqlalchemy import Table
from sqlalchemy.orm import Session

from common import audit, idempotency, outbox
from common.db import DatabaseUnavailable, Db
from common.errors import PortalError

Event = tuple[str, dict[str, Any]]
Repo = TypeVar("Repo")


@dataclass
class Outcome:
    """What a use case returns: its result and the events to publish once committed."""

    result: Any = None
    events: list[Event] = field(default_factory=list)
    # an answer to give *after* the transaction commits (a refusal that the change records)
    error: PortalError | None = None
    # the audit trail's facts of this change, written in its transaction (common/audit.py)
    audit: list[audit.AuditEntry] = field(default_factory=list)
    # events that may be published after the answer (staged with the change all the same):
    # none that changes what another reader answers (outbox.Later)
    later: list[Event] = field(default_factory=list)


@dataclass
class Staging(Generic[Repo]):
    """An open unit of work: the repository, and the events staged so far."""

    repo: Repo
    session: Session
    table: Table
    staged: list[Event] = field(default_factory=list)
    audit_table: Any = None
    # staged too, published after the answer (`Outcome.later`)
    staged_later: list[Event] = field(default_factory=list)

    def stage(self, events: list[Event], later: list[Event] | None = None) -> None:
        """Store `events` (and `later`) in the outbox in this transaction; `events` are
        published after the commit, before the answer, `later` after the answer."""
        staged = outbox.stage(self.session, self.table, [*events, *(later or [])])
        self.staged.extend(staged[: len(events)])
        self.staged_later.extend(staged[len(events) :])

    def stage_outcome(self, outcome: Outcome) -> None:
        """Stage an outcome's events and write its audit facts, in this transaction."""
        self.stage(outcome.events, outcome.later)
        if outcome.audit:
            if self.audit_table is None:
                raise TypeError("this unit of work has no audit table for Outcome.audit")
            audit.record(self.session, self.audit_table, outcome.audit)


class UnitOfWork(Generic[Repo]):
    """Runs use cases of one service: `repository(session)` in a transaction, with outbox."""

    def __init__(
        self,
        db: Db,
        repository: Callable[[Session], Repo],
        outbox_table: Table,
        publish: outbox.Publish,
        ledger: Any = None,
        audit_table: Any = None,
        later: outbox.Later | None = None,
    ) -> None:
        self.db = db
        self.repository = repository
        self.outbox_table = outbox_table
        self.publish = publish
        # the service's `handled_requests` table (mapped class or Table), for `once=`
        self.ledger = ledger
        # the service's `audit_events` table (mapped class or Table), for `Outcome.audit`
        self.audit_table = audit_table
        # publishes `Outcome.later` after the answer (`outbox.PublishLater`); None: before
        self.later = later

    @contextmanager
    def begin(self) -> Iterator[Staging[Repo]]:
        """A transaction of several steps: `with uow.begin() as work: ... work.stage(events)`.

        The staged events are published once the block commits (not if it raised); those
        staged as `later` are handed to `self.later` to publish after the answer.
        """
        with self.db.transaction() as session:
            work = Staging(
                self.repository(session), session, self.outbox_table, audit_table=self.audit_table
            )
            yield work
        self.flush(work.staged)
        if not work.staged_later:
            return
        if self.later is None:
            self.flush(work.staged_later)
        else:
            self.later.submit(self.db, self.outbox_table, self.publish, work.staged_later)

    def flush(self, staged: list[Event]) -> None:
        """Publish events staged by a committed transaction (the relay retries failures)."""
        outbox.flush(self.db, self.outbox_table, self.publish, staged)

    def run_outcome(
        self,
        use_case: Callable[..., Outcome],
        *args: Any,
        once: idempotency.Once | None = None,
    ) -> Outcome:
        """Run `use_case(repo, *args)`; commit with its events; publish; return the outcome.

        With `once`, a request already handled answers its stored answer (or refusal) and
        runs nothing; a new one stores its answer with its change.
        """
        if once is not None and self.ledger is None:
            raise TypeError("this unit of work has no ledger for once=")
        with self.begin() as work:
            if once is not None:
                replay = idempotency.claim(work.session, self.ledger, once)
                if replay is not None:
                    return Outcome(replay["result"])
            outcome = use_case(work.repo, *args)
            work.stage_outcome(outcome)
            if once is not None:
                idempotency.record(work.session, self.ledger, once, outcome.result, outcome.error)
        if outcome.error is not None:
            raise outcome.error
        return outcome

    def run(
        self,
        use_case: Callable[..., Outcome],
        *args: Any,
        once: idempotency.Once | None = None,
    ) -> Any:
        """`run_outcome(...).result`: what the entrypoint answers."""
        return self.run_outcome(use_case, *args, once=once).result

    def read(self, use_case: Callable[..., Any], *args: Any) -> Any:
        """Run `use_case(repo, *args)` in a transaction that publishes nothing.

        A read changes nothing, so a dropped database connection is retried once on a fresh
        one (a backend terminated while idle in the pool fails only the first statement).
        """
        try:
            return self._read(use_case, *args)
        except DatabaseUnavailable:
            return self._read(use_case, *args)

    def _read(self, use_case: Callable[..., Any], *args: Any) -> Any:
        with self.db.transaction() as session:
            return use_case(self.repository(session), *args)

    def relay(self) -> int:
        """Publish what a crash or a broker outage left in the outbox (for a timer)."""
        return outbox.relay(self.db, self.outbox_table, self.publish)

    def prune(self) -> None:
        """Forget events published, and requests handled, long ago (for a timer)."""
        outbox.prune(self.db, self.outbox_table)
        if self.ledger is not None:
            with self.db.transaction() as session:
                idempotency.prune(session, self.ledger)
