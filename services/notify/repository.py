"""The queries the outbox needs, behind one small class per transaction.

`Store` is what a worker gets: `with store.repository() as repo:` is one transaction.
Inserts are idempotent by `event_id` (`ON CONFLICT DO NOTHING` on PostgreSQL and SQLite
alike), and claims use `FOR UPDATE SKIP LOCKED` so that several notify instances polling
the same table never wait for each other or claim the same row.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from common.db import Db
from services.notify import domain
from services.notify.models import Delivery, ParkedEvent

# A few candidates per claim: if another worker wins one between our SELECT and UPDATE
# (possible on SQLite, which has no row locks), the next candidate is tried.
CLAIM_CANDIDATES = 3


class NotifyRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def _insert(self, model: type, **values: Any) -> int | None:
        """Insert a row unless its `event_id` exists; the new row's id, or None if it did."""
        dialect = self.session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        statement = (
            insert(model)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["event_id"])
            .returning(model.id)
        )
        return self.session.execute(statement).scalar()

    # recording
    def add_delivery(
        self,
        *,
        event_id: str,
        source: str,
        kind: str,
        customer_id: str | None,
        recipient: str | None,
        subject: str,
        payload: dict[str, Any],
        now: datetime,
    ) -> int | None:
        """A pending delivery, due now; None when this event was recorded before."""
        return self._insert(
            Delivery,
            event_id=event_id,
            source=source,
            kind=kind,
            customer_id=customer_id,
            recipient=recipient,
            subject=subject,
            status=domain.PENDING,
            attempts=0,
            payload=payload,
            next_attempt_at=now,
            created_at=now,
        )

    def park(
        self,
        *,
        event_id: str | None,
        source: str,
        event_type: str,
        payload: Any,
        error: str,
        now: datetime,
    ) -> int | None:
        return self._insert(
            ParkedEvent,
            event_id=event_id,
            source=source,
            event_type=event_type,
            payload=payload,
            error=error,
            parked_at=now,
        )

    # claiming and finishing
    def claim_next(
        self, now: datetime, lease: timedelta, only_id: int | None = None
    ) -> domain.Claim | None:
        """Claim the most overdue delivery (or only `only_id`): `sending`, leased, attempts + 1."""
        query = (
            select(Delivery.id, Delivery.status, Delivery.attempts)
            # domain.is_due, in SQL
            .where(Delivery.status.in_(domain.CLAIMABLE), Delivery.next_attempt_at <= now)
            .order_by(Delivery.next_attempt_at, Delivery.id)
            .limit(CLAIM_CANDIDATES)
            .with_for_update(skip_locked=True)
        )
        if only_id is not None:
            query = query.where(Delivery.id == only_id)
        for row_id, status, attempts in self.session.execute(query).all():
            # guarded by the state we read, so a row another worker took meanwhile is skipped
            claimed = self.session.execute(
                update(Delivery)
                .where(
                    Delivery.id == row_id,
                    Delivery.status == status,
                    Delivery.attempts == attempts,
                )
                .values(
                    status=domain.SENDING,
                    attempts=attempts + 1,
                    next_attempt_at=domain.lease_until(now, lease),
                )
                .returning(
                    Delivery.event_id,
                    Delivery.kind,
                    Delivery.subject,
                    Delivery.payload,
                    Delivery.customer_id,
                )
            ).first()
            if claimed is not None:
                return domain.Claim(
                    id=row_id,
                    event_id=claimed.event_id,
                    kind=claimed.kind,
                    subject=claimed.subject,
                    attempts=attempts + 1,
                    payload=claimed.payload,
                    customer_id=claimed.customer_id,
                )
        return None

    def finish(self, claim: domain.Claim, outcome: domain.Outcome, now: datetime) -> bool:
        """Record what became of `claim`; False if the claim was lost (lease ran out, retaken).

        `attempts` fences the update: a worker whose lease expired and whose row was claimed
        again must not overwrite the newer attempt's outcome.
        """
        values: dict[str, Any] = {"last_error": outcome.error} if outcome.error else {}
        if outcome.recipient:
            values["recipient"] = outcome.recipient
        if outcome.status == domain.SENT:
            # the payload may hold a reset link: it has done its job, so it goes
            values.update(status=domain.SENT, sent_at=now, next_attempt_at=None, payload=None)
        elif outcome.status == domain.FAILED:
            values.update(
                status=domain.FAILED, next_attempt_at=None, payload=domain.redact(claim.payload)
            )
        else:
            values.update(status=domain.PENDING, next_attempt_at=outcome.retry_at)
        result = self.session.execute(
            update(Delivery)
            .where(
                Delivery.id == claim.id,
                Delivery.status == domain.SENDING,
                Delivery.attempts == claim.attempts,
            )
            .values(**values)
        )
        return result.rowcount == 1

    # reading
    def deliveries(self, limit: int = 50, recipient: str | None = None) -> list[Delivery]:
        query = select(Delivery).order_by(Delivery.created_at.desc(), Delivery.id.desc())
        if recipient:
            query = query.where(Delivery.recipient == recipient.strip().lower())
        return list(self.session.scalars(query.limit(limit)))

    def delivery_by_event(self, event_id: str) -> Delivery | None:
        return self.session.scalar(select(Delivery).where(Delivery.event_id == event_id))

    def parked(self, limit: int = 50) -> list[ParkedEvent]:
        query = select(ParkedEvent).order_by(ParkedEvent.parked_at.desc(), ParkedEvent.id.desc())
        return list(self.session.scalars(query.limit(limit)))

    def count_open(self) -> int:
        return self.session.scalar(
            select(func.count()).select_from(Delivery).where(Delivery.status.in_(domain.CLAIMABLE))
        )


class Store:
    """What a worker gets from the `NotifyDatabase` dependency: transactions as repositories."""

    def __init__(self, db: Db) -> None:
        self._db = db

    @contextmanager
    def repository(self) -> Iterator[NotifyRepository]:
        """One transaction: committed when the block ends, rolled back if it raises."""
        with self._db.transaction() as session:
            yield NotifyRepository(session)

    def ping(self) -> None:
        self._db.ping()
