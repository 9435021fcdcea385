"""The queries of the mail queue, behind one small class per transaction.

`Store` is what a worker's use cases get: `with store.repository() as repo:` is one
transaction. Inserts are idempotent by (`event_id`, `user_id`) (`common.db.insert_ignore`):
an event's own row, and one row per recipient of a notice. Claims
use `FOR UPDATE SKIP LOCKED` so that several notify instances polling the same table never
wait for each other or claim the same row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, select, update
from sqlalchemy.exc import DataError
from sqlalchemy.orm import Session

from common.db import Db, insert_ignore
from services.notify import domain
from services.notify.exceptions import ValuesRefused
from services.notify.models import Delivery, ParkedEvent

# A few candidates per claim: if another worker wins one between our SELECT and UPDATE
# (possible on SQLite, which has no row locks), the next candidate is tried.
CLAIM_CANDIDATES = 3


class NotifyRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def _insert_new(self, table: Table, values: dict[str, Any]) -> bool:
        """`insert_ignore` (event_id, with user_id, is the only unique key a caller sets);
        True if new.

        `ValuesRefused` when the database (or its driver, for NUL characters) refuses the
        values themselves rather than the connection.
        """
        try:
            return insert_ignore(self.session, table, values)
        except (DataError, ValueError) as exc:
            cause = exc.orig if isinstance(exc, DataError) else exc
            raise ValuesRefused(type(cause).__name__) from exc

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
        """A pending delivery, due now: its id, or None when this event was recorded before."""
        values = {
            "event_id": event_id,
            "source": source,
            "kind": kind,
            "customer_id": customer_id,
            "recipient": recipient,
            "subject": subject,
            "status": domain.PENDING,
            "attempts": 0,
            "payload": payload,
            "next_attempt_at": now,
            "created_at": now,
        }
        if not self._insert_new(Delivery.__table__, values):
            return None
        return self.session.scalar(
            select(Delivery.id).where(Delivery.event_id == event_id, Delivery.user_id == "")
        )

    def add_notice_deliveries(
        self, claim: domain.Claim, recipients: tuple[domain.NoticeRecipient, ...], now: datetime
    ) -> list[int]:
        """One pending delivery per recipient of a split notice, due now: the ids of the new
        ones (a recipient whose row exists already, from an earlier split, is skipped).

        Each row keeps a copy of the event (the email is rendered from it) and whom it goes to.
        """
        added = []
        for recipient in recipients:
            values = {
                "event_id": claim.event_id,
                "user_id": recipient.user_id,
                "source": claim.source,
                "kind": claim.kind,
                "customer_id": claim.customer_id,
                "recipient": recipient.email,
                "subject": claim.subject,
                "status": domain.PENDING,
                "attempts": 0,
                "payload": {**claim.payload, domain.RECIPIENT_KEY: recipient.to_dict()},
                "next_attempt_at": now,
                "created_at": now,
            }
            if self._insert_new(Delivery.__table__, values):
                added.append(
                    self.session.scalar(
                        select(Delivery.id).where(
                            Delivery.event_id == claim.event_id,
                            Delivery.user_id == recipient.user_id,
                        )
                    )
                )
        return added

    def park(self, values: dict[str, Any]) -> None:
        """Keep a `common.parking.parked_row`, once per `event_id` (None never collides)."""
        self._insert_new(ParkedEvent.__table__, values)

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
                    Delivery.source,
                    Delivery.kind,
                    Delivery.subject,
                    Delivery.payload,
                    Delivery.customer_id,
                    Delivery.user_id,
                    Delivery.recipient,
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
                    user_id=claimed.user_id,
                    recipient=claimed.recipient,
                    source=claimed.source,
                )
        return None

    def finish(self, claim: domain.Claim, result: domain.DeliveryResult, now: datetime) -> bool:
        """Record what became of `claim`; False if the claim was lost (lease ran out, retaken).

        `attempts` fences the update: a worker whose lease expired and whose row was claimed
        again must not overwrite the newer attempt's outcome.
        """
        values: dict[str, Any] = {"last_error": result.error} if result.error else {}
        if result.recipient:
            values["recipient"] = result.recipient
        if result.status == domain.SENT:
            # the payload may hold a reset link: it has done its job, so it goes
            values.update(status=domain.SENT, sent_at=now, next_attempt_at=None, payload=None)
        elif result.status == domain.DONE:
            # split: each recipient's row holds its own copy of the event until it is sent
            values.update(status=domain.DONE, next_attempt_at=None, payload=None)
        elif result.status == domain.FAILED:
            values.update(
                status=domain.FAILED, next_attempt_at=None, payload=domain.redact(claim.payload)
            )
        else:
            values.update(status=domain.PENDING, next_attempt_at=result.retry_at)
        updated = self.session.execute(
            update(Delivery)
            .where(
                Delivery.id == claim.id,
                Delivery.status == domain.SENDING,
                Delivery.attempts == claim.attempts,
            )
            .values(**values)
        )
        return updated.rowcount == 1

    # reading
    def deliveries(self, limit: int = 50, recipient: str | None = None) -> list[Delivery]:
        query = select(Delivery).order_by(Delivery.created_at.desc(), Delivery.id.desc())
        if recipient:
            query = query.where(Delivery.recipient == recipient.strip().lower())
        return list(self.session.scalars(query.limit(limit)))

    def parked(self, limit: int = 50) -> list[ParkedEvent]:
        query = select(ParkedEvent).order_by(ParkedEvent.parked_at.desc(), ParkedEvent.id.desc())
        return list(self.session.scalars(query.limit(limit)))


class Store:
    """Transactions as repositories, over the worker's `Db`: what notify's use cases get.

    Recording and delivering take several transactions each (a send never holds one open),
    so the use cases get the store, not one repository. It is not `common.unit_of_work`'s
    `UnitOfWork` because notify publishes no events, and a unit of work needs an outbox table
    that notify has no use for.
    """

    def __init__(self, db: Db) -> None:
        self._db = db

    @contextmanager
    def repository(self) -> Iterator[NotifyRepository]:
        """One transaction: committed when the block ends, rolled back if it raises."""
        with self._db.transaction() as session:
            yield NotifyRepository(session)

    def read(self, query: Callable[..., Any], *args: Any) -> Any:
        """`query(repo, *args)` in a transaction of its own."""
        with self.repository() as repo:
            return query(repo, *args)
