"""The queries the licensing rules need, behind one small class per unit of work."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    bindparam,
    case,
    delete,
    func,
    insert,
    literal_column,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, joinedload, selectinload

from common import audit
from common.db import add_unique, advisory_xact_lock, insert_ignore
from common.parking import ERROR_MAX
from common.timeutil import UTCDateTime
from services.licensing import domain
from services.licensing.models import (
    ActivationFailure,
    AuditEvent,
    ExpiryNotice,
    HistoryEvent,
    Installation,
    Lease,
    LeaseUsage,
    License,
    LicenseFeature,
    LicensingBase,
    PaymentDispute,
    PaymentEvent,
    Product,
)

_FEATURE_CODES = (
    select(func.aggregate_strings(LicenseFeature.code, ","))
    .where(LicenseFeature.license_pk == License.id)
    .scalar_subquery()
)

# built once: the statement of the hottest query, with its parameters bound per call. The
# installation is joined when it is active on the license (the partial unique index
# `uq_installations_active` makes that one row at most), with when it was last seen
_VALIDATION_FACTS = (
    select(
        License.expires_at,
        License.suspended_at,
        Installation.id,
        Installation.last_seen_at,
        # the feature codes in the same round trip (codes hold no comma: common.schemas.Code)
        _FEATURE_CODES,
    )
    .outerjoin(
        Installation,
        (Installation.license_pk == License.id)
        & (Installation.installation_id == bindparam("installation_id"))
        & (Installation.status == domain.INSTALLATION_ACTIVE),
    )
    .where(License.license_id == bindparam("license_id"))
)

# what a heartbeat's certificate needs of a lease's license, in `LeaseFacts`' order (read
# after the lease by `_LEASE_FACTS`, returned after it by `_BEAT`)
_LICENSE_FACTS = (
    License.license_id,
    License.customer_id,
    License.seats,
    License.expires_at,
    License.suspended_at,
    License.lease_seconds,
    Product.code,
    Product.name,
    _FEATURE_CODES,
)

# a lease with what its heartbeat's certificate needs of its license, in one round trip
_LEASE_FACTS = (
    select(Lease, *_LICENSE_FACTS)
    .join(License, License.id == Lease.license_pk)
    .join(Product, Product.id == License.product_id)
    .where(Lease.lease_id == bindparam("lease_id"))
)

# what validating a lease certificate needs: the lease and its license's state
_LEASE_VALIDATION_FACTS = (
    select(
        Lease.status,
        Lease.expires_at,
        Lease.installation_id,
        License.license_id,
        License.expires_at,
        License.suspended_at,
        _FEATURE_CODES,
    )
    .join(License, License.id == Lease.license_pk)
    .where(Lease.lease_id == bindparam("lease_id"))
)


_LEASES = Lease.__table__
_NOW = bindparam("now", type_=UTCDateTime())
# A heartbeat's transaction does not wait for its commit to reach the disk: a heartbeat lost
# in a crash is harmless (the lease lapses at its earlier expiry, and the kit checks out
# again), and the seat rule never rests on one being durable (a check-out counts what it
# reads under its license row lock). `set_config(…, true)` is `SET LOCAL`: this transaction
# only, and in the heartbeat's own statement, so it costs no round trip of its own.
NOT_DURABLE = func.set_config("synchronous_commit", "off", True).label("not_durable")

# a validation saw an installation whose `last_seen_at` was stale (domain.last_seen_due): it
# becomes now, unless a concurrent validation wrote it since (the guard, read again after
# any wait for the row: nothing is written twice; the column is NOT NULL, so no `IS NULL`).
# No lock but the row's, and like a heartbeat its commit does not wait for the disk
# (`NOT_DURABLE`: a time lost in a crash is written by the next validation). On PostgreSQL
# only (`_MARK_SEEN_PG`): SQLite has no set_config.
_INSTALLATIONS = Installation.__table__
_MARK_SEEN = (
    update(_INSTALLATIONS)
    .where(
        _INSTALLATIONS.c.id == bindparam("m_pk"),
        _INSTALLATIONS.c.last_seen_at < bindparam("m_cutoff", type_=UTCDateTime()),
    )
    .values(last_seen_at=_NOW)
)
_MARK_SEEN_PG = _MARK_SEEN.returning(NOT_DURABLE)

# a heartbeat in one statement on PostgreSQL: domain.heartbeat_expiry in SQL (LEAST ignores
# a NULL license expiry: a perpetual license caps nothing), conditional on the token, on the
# lease being live and on its license being neither suspended nor expired; it answers what
# the certificate needs (and, matched, makes its transaction `NOT_DURABLE`). Unmatched, the
# caller asks `lease_facts` why.
_BEAT = (
    update(_LEASES)
    .where(
        _LEASES.c.lease_id == bindparam("b_lease_id"),
        _LEASES.c.token_hash == bindparam("b_token_hash"),
        _LEASES.c.status == domain.LEASE_LIVE,
        _LEASES.c.expires_at > _NOW,
        License.id == _LEASES.c.license_pk,
        Product.id == License.product_id,
        License.suspended_at.is_(None),
        or_(License.expires_at.is_(None), License.expires_at > _NOW),
    )
    .values(
        expires_at=func.greatest(
            _LEASES.c.expires_at,
            func.least(
                _NOW + License.lease_seconds * literal_column("interval '1 second'"),
                License.expires_at,
            ),
        ),
        last_heartbeat_at=_NOW,
    )
    .returning(*_LEASES.c, *_LICENSE_FACTS, NOT_DURABLE)
)


# a check-out's sweep and seat count in one round trip (PostgreSQL): the license's lapsed
# live leases marked expired, and what the statement's snapshot holds of its live ones. The
# snapshot predates any wait of the UPDATE: a lease that it saw lapsed but a heartbeat
# extended meanwhile is not swept (the UPDATE re-reads the row it waited for) and is not
# counted either. `lapsed` (seen) against the swept rows tells that apart: unequal, the
# caller counts again in a statement of its own (`lease_seats`).
_SWEPT = (
    update(_LEASES)
    .where(
        _LEASES.c.license_pk == bindparam("s_license_pk"),
        _LEASES.c.status == domain.LEASE_LIVE,
        _LEASES.c.expires_at <= _NOW,
    )
    .values(status=domain.LEASE_EXPIRED, ended_at=_LEASES.c.expires_at)
    .returning(*_LEASES.c)
    .cte("swept")
)
_SEEN = (
    select(
        func.count().filter(_LEASES.c.expires_at > _NOW).label("live"),
        func.count().filter(_LEASES.c.expires_at <= _NOW).label("lapsed"),
        func.max(_LEASES.c.id)
        .filter(
            _LEASES.c.expires_at > _NOW,
            _LEASES.c.installation_id == bindparam("s_installation_id"),
        )
        .label("current"),
    )
    .where(
        _LEASES.c.license_pk == bindparam("s_license_pk"),
        _LEASES.c.status == domain.LEASE_LIVE,
    )
    .subquery("seen")
)
_SWEEP_AND_COUNT = select(_SEEN, _SWEPT).select_from(_SEEN.outerjoin(_SWEPT, true()))


def _peak_upsert(dialect: Any) -> Any:
    """`record_peak`'s upsert, built once per dialect: the day's peak rises, or nothing is
    written (not even a new row version) when it does not."""
    table = LeaseUsage.__table__
    statement = dialect.insert(table).values(
        license_pk=bindparam("license_pk"), day=bindparam("day"), peak=bindparam("peak")
    )
    return statement.on_conflict_do_update(
        index_elements=[table.c.license_pk, table.c.day],
        set_={"peak": statement.excluded.peak},
        where=table.c.peak < statement.excluded.peak,
    )


_PEAK = {"postgresql": _peak_upsert(postgresql), "sqlite": _peak_upsert(sqlite)}


def _lease_insert(dialect: Any) -> Any:
    """`add_lease`'s insert, built once per dialect (its values bound per call): a conflict
    on the lease ID alone is let go, as the caller draws another."""
    statement = dialect.insert(_LEASES).on_conflict_do_nothing(index_elements=[_LEASES.c.lease_id])
    return statement.returning(_LEASES.c.id)


_NEW_LEASE = {"postgresql": _lease_insert(postgresql), "sqlite": _lease_insert(sqlite)}


@dataclass
class LeaseFacts:
    """A lease and the facts of its license that a heartbeat or a check-in needs."""

    lease: Lease
    license_id: str
    customer_id: str
    seats: int
    license_expires_at: datetime | None
    suspended_at: datetime | None
    lease_seconds: int
    product_code: str
    product_name: str
    features: list[str]


def _codes(text: str | None) -> list[str]:
    """Feature codes as `aggregate_strings` joins them (codes hold no comma), sorted."""
    return sorted(text.split(",")) if text else []


def _live(now: datetime) -> Any:
    """The condition of a lease holding its seat at `now` (domain.lease_is_live)."""
    return (Lease.status == domain.LEASE_LIVE) & (Lease.expires_at > now)


def _values(entity: LicensingBase) -> dict[str, Any]:
    """The column values a transient entity was given (None: left to the database)."""
    return {
        column.key: getattr(entity, column.key)
        for column in type(entity).__table__.columns
        if getattr(entity, column.key) is not None
    }


class LicensingRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, entity: LicensingBase) -> None:
        self.session.add(entity)
        self.session.flush()

    def add_later(self, entity: LicensingBase) -> None:
        """Written with the commit (nothing needs its id now)."""
        self.session.add(entity)

    def insert(self, entity: LicensingBase) -> None:
        """A plain INSERT of a new row from a transient entity, without the unit of work
        (cheaper on the hot path; the entity stays detached, its id unknown)."""
        # the values as parameters, not in the statement: compiled once per set of columns
        self.session.execute(insert(type(entity).__table__), _values(entity))

    def add_unique(self, entity: LicensingBase) -> bool:
        """Insert unless a row with one of its unique keys exists (a concurrent insert
        included); True when this call inserted it."""
        return add_unique(self.session, entity)

    def add_lease(self, lease: Lease) -> bool:
        """Insert a new lease unless its lease ID is taken (False); True, with its `id`.
        Only that key is let go (ON CONFLICT (lease_id) DO NOTHING): a token hash already
        taken, or a second live lease of one installation, raises IntegrityError."""
        statement = _NEW_LEASE[self.session.get_bind().dialect.name]
        pk = self.session.execute(statement, _values(lease)).scalar()
        if pk is None:
            return False
        lease.id = pk
        return True

    def reload(self, entity: LicensingBase, *attributes: str) -> None:
        """Read `attributes` of `entity` again (a collection that rows were added to)."""
        self.session.expire(entity, list(attributes))

    # products
    def product_by_code(self, code: str, lock: bool = False, share: bool = False) -> Product | None:
        """The product of a canonical code. `lock`: its row is held until the transaction
        ends (archiving); `share`: held against that, not against other readers (issuing a
        license: an archive commits before the check or after the license, never between)."""
        query = select(Product).where(Product.code == code)
        if lock or share:
            query = query.with_for_update(read=not lock)
        return self.session.scalar(query)

    def products(self, include_archived: bool = False) -> list[Product]:
        query = select(Product).options(selectinload(Product.features)).order_by(Product.code)
        if not include_archived:
            query = query.where(Product.archived_at.is_(None))
        return list(self.session.scalars(query))

    # licenses
    def license(self, license_id: str, lock: bool = False) -> License | None:
        """The license with its product and feature codes, in one query; `lock` holds its
        row (only its row: `of=License`) until the transaction ends.

        Every activation of one license takes this lock first, so the seat count and the
        insert that follows are one atomic step, whichever instance runs them. The feature
        codes come joined, as the certificate needs them: no second query on the hot path.

        The lock is FOR NO KEY UPDATE: it excludes every other locker and writer of the row
        as FOR UPDATE would, but not the key share that inserting a row which refers to the
        license takes. A check-in or the lapse scan locks a lease row, then inserts its
        history row; a check-out holds this lock, then waits for lease rows (its sweep, its
        current lease): under FOR UPDATE each would wait for the other.
        """
        query = (
            select(License)
            .options(joinedload(License.features))
            .where(License.license_id == license_id)
        )
        if lock:
            query = query.with_for_update(of=License, key_share=True)
        # unique(): the joined collection repeats the license once per feature
        return self.session.execute(query).unique().scalar_one_or_none()

    def attempt_facts(
        self,
        key: str,
        address: str,
        since: datetime,
        license_pk: int | None = None,
        installation_id: str | None = None,
    ) -> tuple[int, int, tuple[int, int | None] | None]:
        """Failed attempts since `since` on `key` from `address`, and from `address` on any
        key, with, for an installation of a license, the seat facts (seats in use, this
        installation's active row): one round trip on the hot path."""
        recent = ActivationFailure.at > since
        from_address = ActivationFailure.client_address == address
        on_key = (
            select(func.count())
            .select_from(ActivationFailure)
            .where(ActivationFailure.key == key, from_address, recent)
            .scalar_subquery()
        )
        anywhere = (
            select(func.count())
            .select_from(ActivationFailure)
            .where(from_address, recent)
            .scalar_subquery()
        )
        if license_pk is None or installation_id is None:
            row = self.session.execute(select(on_key, anywhere)).one()
            return row[0], row[1], None
        active = (Installation.license_pk == license_pk) & (
            Installation.status == domain.INSTALLATION_ACTIVE
        )
        in_use = select(func.count()).select_from(Installation).where(active)
        current = select(func.max(Installation.id)).where(
            active, Installation.installation_id == installation_id
        )
        row = self.session.execute(
            select(on_key, anywhere, in_use.scalar_subquery(), current.scalar_subquery())
        ).one()
        return row[0], row[1], (row[2], row[3])

    def license_id_exists(self, license_id: str) -> bool:
        return (
            self.session.scalar(
                select(func.count()).select_from(License).where(License.license_id == license_id)
            )
            > 0
        )

    def licenses_of(self, customer_id: str) -> list[License]:
        return list(
            self.session.scalars(
                select(License)
                .options(
                    selectinload(License.features),
                    selectinload(License.product, Product.features),
                )
                .where(License.customer_id == customer_id)
                .order_by(License.created_at, License.id)
            )
        )

    def seats_in_use(self, license_pks: list[int]) -> dict[int, int]:
        if not license_pks:
            return {}
        rows = self.session.execute(
            select(Installation.license_pk, func.count())
            .where(
                Installation.license_pk.in_(license_pks),
                Installation.status == domain.INSTALLATION_ACTIVE,
            )
            .group_by(Installation.license_pk)
        )
        return {pk: count for pk, count in rows}

    def expiring(self, now: datetime, horizon: datetime, limit: int = 500) -> list[License]:
        return list(
            self.session.scalars(
                select(License)
                .where(
                    License.expires_at.is_not(None),
                    License.expires_at > now,
                    License.expires_at <= horizon,
                    License.suspended_at.is_(None),
                )
                .order_by(License.expires_at)
                .limit(limit)
            )
        )

    def claim_expiry_notice(
        self, license_pk: int, expires_at: datetime, threshold: int, now: datetime
    ) -> bool:
        """Record the notice unless someone already did; True when this call recorded it."""
        values = {
            "license_pk": license_pk,
            "expires_at": expires_at,
            "threshold": threshold,
            "sent_at": now,
        }
        return insert_ignore(self.session, ExpiryNotice.__table__, values)

    # installations
    def installations(self, license_pk: int) -> list[Installation]:
        return list(
            self.session.scalars(
                select(Installation)
                .where(Installation.license_pk == license_pk)
                .order_by(Installation.activated_at.desc(), Installation.id.desc())
            )
        )

    def seat_facts(self, license_pk: int, installation_id: str) -> tuple[int, int | None]:
        """Seats in use, and the row of this installation if it is one of them (one query)."""
        row = self.session.execute(
            select(
                func.count(),
                func.max(case((Installation.installation_id == installation_id, Installation.id))),
            ).where(
                Installation.license_pk == license_pk,
                Installation.status == domain.INSTALLATION_ACTIVE,
            )
        ).one()
        return row[0], row[1]

    def touch_installation(
        self, pk: int, machine_name: str, now: datetime, offline_secret_hash: str | None = None
    ) -> Installation:
        """Re-activation: the machine name may have changed, and the offline deactivation
        secret is the new response's (None: activated online, no proof frees it now); one
        UPDATE … RETURNING."""
        return self.session.scalars(
            update(Installation)
            .where(Installation.id == pk)
            .values(
                machine_name=machine_name,
                last_seen_at=now,
                offline_secret_hash=offline_secret_hash,
            )
            .returning(Installation),
            execution_options={"synchronize_session": False},
        ).one()

    def seats_in_use_of(self, license_pk: int) -> int:
        return self.session.scalar(
            select(func.count())
            .select_from(Installation)
            .where(
                Installation.license_pk == license_pk,
                Installation.status == domain.INSTALLATION_ACTIVE,
            )
        )

    def machines_in_use(self, license_pk: int) -> list[str]:
        return list(
            self.session.scalars(
                select(Installation.machine_name)
                .where(
                    Installation.license_pk == license_pk,
                    Installation.status == domain.INSTALLATION_ACTIVE,
                )
                .order_by(Installation.activated_at, Installation.id)
            )
        )

    def latest_installation(self, license_pk: int, installation_id: str) -> Installation | None:
        """The active installation with this ID, else its most recent deactivated one."""
        return self.session.scalar(
            select(Installation)
            .where(
                Installation.license_pk == license_pk,
                Installation.installation_id == installation_id,
            )
            .order_by((Installation.status == domain.INSTALLATION_ACTIVE).desc())
            .order_by(Installation.id.desc())
            .limit(1)
        )

    def validation_facts(
        self, license_id: str, installation_id: str
    ) -> tuple[datetime | None, datetime | None, int | None, datetime | None, list[str]] | None:
        """For an online validation, in one query: the license's expiry and suspension, the
        installation's row id and `last_seen_at` if it is active on the license (else None,
        None), and the license's feature codes, sorted (columns only: this path is hot)."""
        row = self.session.execute(
            _VALIDATION_FACTS, {"license_id": license_id, "installation_id": installation_id}
        ).first()
        if row is None:
            return None
        return row[0], row[1], row[2], row[3], _codes(row[4])

    def refusal_facts(
        self, license_id: str, installation_id: str
    ) -> tuple[datetime | None, str | None, str | None]:
        """For a validation that is not VALID (a second query, only then): when and by whom
        (`deactivated_by`) the installation was last deactivated on the license (None, None
        if never), and the license's suspension reason (the customer's words, or None)."""
        row = self.session.execute(
            select(
                Installation.deactivated_at,
                Installation.deactivated_by,
                License.suspension_reason,
            )
            .select_from(License)
            .outerjoin(
                Installation,
                (Installation.license_pk == License.id)
                & (Installation.installation_id == installation_id)
                & (Installation.status == domain.INSTALLATION_DEACTIVATED),
            )
            .where(License.license_id == license_id)
            .order_by(Installation.id.desc())
            .limit(1)
        ).first()
        return (row[0], row[1], row[2]) if row is not None else (None, None, None)

    def mark_seen(self, pk: int, now: datetime) -> None:
        """The installation `pk` was seen at `now`: its `last_seen_at` is written unless it
        is younger than domain.LAST_SEEN_RESOLUTION (`_MARK_SEEN`)."""
        pg = self.session.get_bind().dialect.name == "postgresql"
        params = {"m_pk": pk, "m_cutoff": domain.last_seen_cutoff(now), "now": now}
        self.session.connection().execute(_MARK_SEEN_PG if pg else _MARK_SEEN, params)

    # leases of floating licenses
    def lease_seats(
        self, license_pk: int, installation_id: str, now: datetime
    ) -> tuple[int, Lease | None]:
        """Leases live at `now`, and this installation's live lease if it holds one (its
        row locked: `current_lease`)."""
        row = self.session.execute(
            select(
                func.count(),
                func.max(case((Lease.installation_id == installation_id, Lease.id))),
            ).where(Lease.license_pk == license_pk, _live(now))
        ).one()
        return row[0], self.current_lease(row[1])

    def current_lease(self, pk: int | None) -> Lease | None:
        """The lease a check-out counted as its installation's, its row locked and read
        after the lock. The license row lock does not keep a lease live: a check-in and the
        scan lock the lease row only, and may have ended it since the count (the caller
        checks it is still live)."""
        if pk is None:
            return None
        query = select(Lease).where(Lease.id == pk).with_for_update()
        return self.session.scalar(query, execution_options={"populate_existing": True})

    def sweep_and_count(
        self, license_pk: int, installation_id: str, now: datetime
    ) -> tuple[list[Lease], int, Lease | None]:
        """A check-out's first step under the license row lock: `expire_lapsed`, then
        `lease_seats` → (the leases marked expired, leases live at `now`, this
        installation's lease counted live, its row locked: `current_lease`). On PostgreSQL
        one statement (`_SWEEP_AND_COUNT`), and a second only when a heartbeat, check-in or
        scan changed a lapsed lease under it."""
        if self.session.get_bind().dialect.name != "postgresql":
            lapsed = self.expire_lapsed(license_pk, now)
            return (lapsed, *self.lease_seats(license_pk, installation_id, now))
        params = {"s_license_pk": license_pk, "s_installation_id": installation_id, "now": now}
        rows = self.session.connection().execute(_SWEEP_AND_COUNT, params).all()
        live, seen_lapsed, current_pk = rows[0][:3]
        lapsed = [
            Lease(**{column.key: value for column, value in zip(_LEASES.c, row[3:], strict=True)})
            for row in rows
            if row[3] is not None
        ]
        if len(lapsed) != seen_lapsed:
            return (lapsed, *self.lease_seats(license_pk, installation_id, now))
        return lapsed, live, self.current_lease(current_pk)

    def expire_lapsed(self, license_pk: int, now: datetime) -> list[Lease]:
        """Mark the license's lapsed live leases `expired` (ended at their expiry); the ones
        this call marked. Under the license row lock (a check-out): a heartbeat racing it
        either committed first (then its lease is not lapsed any more: the UPDATE re-reads
        the row it waited for) or finds the lease expired."""
        return list(
            self.session.scalars(
                update(Lease)
                .where(
                    Lease.license_pk == license_pk,
                    Lease.status == domain.LEASE_LIVE,
                    Lease.expires_at <= now,
                )
                .values(status=domain.LEASE_EXPIRED, ended_at=Lease.expires_at)
                .returning(Lease),
                execution_options={"synchronize_session": False},
            )
        )

    def expire_lapsed_batch(self, now: datetime, limit: int) -> list[Lease]:
        """Mark up to `limit` lapsed live leases of any license `expired`; the ones marked.

        Rows another scanner (or a check-out) holds are skipped (SKIP LOCKED), and the
        UPDATE checks each row again, so every lease is marked exactly once however many
        instances scan at the same time.
        """
        lapsed = (
            select(Lease.id)
            .where(Lease.status == domain.LEASE_LIVE, Lease.expires_at <= now)
            .order_by(Lease.expires_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return list(
            self.session.scalars(
                update(Lease)
                .where(
                    Lease.id.in_(lapsed.scalar_subquery()),
                    Lease.status == domain.LEASE_LIVE,
                    Lease.expires_at <= now,
                )
                .values(status=domain.LEASE_EXPIRED, ended_at=Lease.expires_at)
                .returning(Lease),
                execution_options={"synchronize_session": False},
            )
        )

    def licenses_by_pk(self, pks: list[int]) -> dict[int, License]:
        if not pks:
            return {}
        licenses = self.session.scalars(select(License).where(License.id.in_(pks)))
        return {license.id: license for license in licenses}

    def live_leases(self, license_pk: int, now: datetime) -> list[Lease]:
        """The leases holding a seat at `now`, oldest first."""
        return list(
            self.session.scalars(
                select(Lease)
                .where(Lease.license_pk == license_pk, _live(now))
                .order_by(Lease.started_at, Lease.id)
            )
        )

    def ended_leases(self, license_pk: int, now: datetime, limit: int) -> list[Lease]:
        """Leases no longer holding a seat, the most recently started first."""
        return list(
            self.session.scalars(
                select(Lease)
                .where(
                    Lease.license_pk == license_pk,
                    (Lease.status != domain.LEASE_LIVE) | (Lease.expires_at <= now),
                )
                .order_by(Lease.started_at.desc(), Lease.id.desc())
                .limit(limit)
            )
        )

    def lease_of(self, license_pk: int, lease_id: str, lock: bool = False) -> Lease | None:
        """A lease of this license; `lock` holds its row (against a heartbeat or the scan)."""
        query = select(Lease).where(Lease.license_pk == license_pk, Lease.lease_id == lease_id)
        if lock:
            query = query.with_for_update()
        return self.session.scalar(query)

    def lease_facts(self, lease_id: str, lock: bool = False) -> LeaseFacts | None:
        """The lease with its license's facts, in one query (the heartbeat's read); `lock`
        holds the lease row only (a check-in), never the license's."""
        query = _LEASE_FACTS.with_for_update(of=Lease) if lock else _LEASE_FACTS
        row = self.session.execute(query, {"lease_id": lease_id}).first()
        if row is None:
            return None
        return self._facts(row[0], row[1:])

    @staticmethod
    def _facts(lease: Lease, row: Any) -> LeaseFacts:
        """`LeaseFacts` of a lease and its license's `_LICENSE_FACTS` (as `_LEASE_FACTS` and
        `_BEAT` read them after the lease)."""
        return LeaseFacts(
            lease=lease,
            license_id=row[0],
            customer_id=row[1],
            seats=row[2],
            license_expires_at=row[3],
            suspended_at=row[4],
            lease_seconds=row[5] or domain.LEASE_SECONDS_DEFAULT,
            product_code=row[6],
            product_name=row[7],
            features=_codes(row[8]),
        )

    def beat(self, lease_id: str, token_hash: str, now: datetime) -> LeaseFacts | None:
        """A heartbeat: the lease with this ID and token hash lives one more period (its
        expiry `domain.heartbeat_expiry`, `last_heartbeat_at` now) if it is live and its
        license neither suspended nor expired; the facts after it, else None (`lease_facts`
        says why). The hot path: on PostgreSQL one UPDATE … FROM … RETURNING, with no lock
        but the lease row's, whose transaction commits without waiting for the disk
        (`NOT_DURABLE`); elsewhere (SQLite, the unit tests) a read, then `extend_lease`.
        """
        if self.session.get_bind().dialect.name != "postgresql":
            return self._beat_in_two(lease_id, token_hash, now)
        params = {"b_lease_id": lease_id, "b_token_hash": token_hash, "now": now}
        # on the session's connection, not through the ORM: an ORM-enabled UPDATE is copied
        # per call and its cache key computed again (a third of the heartbeat's Python time)
        row = self.session.connection().execute(_BEAT, params).first()
        if row is None:
            return None
        width = len(_LEASES.c)
        lease = Lease(
            **{column.key: value for column, value in zip(_LEASES.c, row[:width], strict=True)}
        )
        return self._facts(lease, row[width:-1])

    def _beat_in_two(self, lease_id: str, token_hash: str, now: datetime) -> LeaseFacts | None:
        facts = self.lease_facts(lease_id)
        if facts is None or facts.lease.token_hash != token_hash:
            return None
        lease = facts.lease
        status = domain.license_status(facts.license_expires_at, facts.suspended_at, now)
        if status != domain.ACTIVE or not domain.lease_is_live(lease.status, lease.expires_at, now):
            return None
        expires_at = domain.heartbeat_expiry(
            lease.expires_at, now, facts.lease_seconds, facts.license_expires_at
        )
        if self.extend_lease(lease.id, expires_at, now) is None:
            return None
        return facts

    def extend_lease(self, pk: int, expires_at: datetime, now: datetime) -> Lease | None:
        """A heartbeat: the lease's new expiry, if it is still live at `now`; one UPDATE …
        RETURNING, conditional on the row itself (no other lock: a check-out's sweep or a
        revocation that got there first leaves it unmatched, None)."""
        return self.session.scalars(
            update(Lease)
            .where(Lease.id == pk, _live(now))
            .values(expires_at=expires_at, last_heartbeat_at=now)
            .returning(Lease),
            # the lease read before is in the session: refresh it with what was written
            execution_options={"synchronize_session": False, "populate_existing": True},
        ).one_or_none()

    def live_counts(self, license_pks: list[int], now: datetime) -> dict[int, int]:
        """Leases live at `now` per license (licenses without any are absent)."""
        if not license_pks:
            return {}
        rows = self.session.execute(
            select(Lease.license_pk, func.count())
            .where(Lease.license_pk.in_(license_pks), _live(now))
            .group_by(Lease.license_pk)
        )
        return {pk: count for pk, count in rows}

    def licenses_with_live_leases(self, now: datetime) -> dict[int, int]:
        """Every license with leases live at `now`, and how many (the usage scan)."""
        rows = self.session.execute(
            select(Lease.license_pk, func.count()).where(_live(now)).group_by(Lease.license_pk)
        )
        return {pk: count for pk, count in rows}

    def record_peak(self, license_pk: int, day: date, live: int) -> None:
        """The day's peak of the license becomes `live` if that is higher (one upsert that
        writes nothing when it is not: most check-outs of a day stay below its peak)."""
        statement = _PEAK[self.session.get_bind().dialect.name]
        self.session.execute(statement, {"license_pk": license_pk, "day": day, "peak": live})

    def usage(self, license_pk: int, since: date) -> list[tuple[date, int]]:
        """The license's daily peaks from `since` on, oldest first."""
        rows = self.session.execute(
            select(LeaseUsage.day, LeaseUsage.peak)
            .where(LeaseUsage.license_pk == license_pk, LeaseUsage.day >= since)
            .order_by(LeaseUsage.day)
        )
        return [(day, peak) for day, peak in rows]

    def lease_validation_facts(
        self, lease_id: str
    ) -> tuple[str, datetime, str, str, datetime | None, datetime | None, list[str]] | None:
        """For validating a lease certificate, in one query: the lease's status, expiry and
        installation, its license's ID, expiry and suspension, and feature codes."""
        row = self.session.execute(_LEASE_VALIDATION_FACTS, {"lease_id": lease_id}).first()
        if row is None:
            return None
        return row[0], row[1], row[2], row[3], row[4], row[5], _codes(row[6])

    # history
    def history(self, license_pk: int, limit: int, before: int | None = None) -> list[HistoryEvent]:
        query = select(HistoryEvent).where(HistoryEvent.license_pk == license_pk)
        if before is not None:
            query = query.where(HistoryEvent.id < before)
        return list(self.session.scalars(query.order_by(HistoryEvent.id.desc()).limit(limit)))

    # the audit trail
    def audit_page(self, query: audit.AuditQuery) -> list[dict[str, Any]]:
        """A page of the company's licensing trail, newest first (common/audit.py)."""
        return audit.page(self.session, AuditEvent, query)

    # failed attempts
    def lock_attempts(self, key: str) -> None:
        """Serialise attempts on a license ID that has no row to lock (PostgreSQL only)."""
        advisory_xact_lock(self.session, "activation", key)

    def failures(self, address: str, since: datetime, key: str | None = None) -> list[datetime]:
        """When the failed attempts from `address` since `since` were, on `key` if given."""
        query = select(ActivationFailure.at).where(
            ActivationFailure.client_address == address, ActivationFailure.at > since
        )
        if key is not None:
            query = query.where(ActivationFailure.key == key)
        return list(self.session.scalars(query))

    def record_failure(self, key: str, address: str, now: datetime) -> int:
        failure = ActivationFailure(key=key, client_address=address, at=now)
        self.add(failure)
        return failure.id

    def forget_failure(self, failure_id: int) -> None:
        self.session.execute(delete(ActivationFailure).where(ActivationFailure.id == failure_id))

    def prune_failures(self, before: datetime) -> None:
        self.session.execute(delete(ActivationFailure).where(ActivationFailure.at < before))

    # payments from billing
    def record_payment(
        self, event_id: str, receipt_number: str, customer_id: str, kind: str, now: datetime
    ) -> bool:
        """Claim a `payment_succeeded` as applied; False when this event or this receipt was
        seen before (the claim and the license change commit together)."""
        values = {
            "event_id": event_id,
            "receipt_number": receipt_number,
            "customer_id": customer_id,
            "kind": kind,
            "status": domain.PAYMENT_APPLIED,
            "received_at": now,
        }
        return insert_ignore(self.session, PaymentEvent.__table__, values)

    def set_payment_not_applied(self, event_id: str, reason: str) -> None:
        """The claimed payment names what cannot be delivered: kept with why."""
        self.session.execute(
            update(PaymentEvent)
            .where(PaymentEvent.event_id == event_id)
            .values(status=domain.PAYMENT_NOT_APPLIED, error=reason[:ERROR_MAX]),
            execution_options={"synchronize_session": False},
        )

    def set_payment_license(self, event_id: str, license_id: str) -> None:
        self.session.execute(
            update(PaymentEvent)
            .where(PaymentEvent.event_id == event_id)
            .values(license_id=license_id),
            execution_options={"synchronize_session": False},
        )

    def park_payment(self, event_id: str | None, reason: str, payload: Any, now: datetime) -> None:
        """Keep an event that can never be applied, for staff (once per `event_id`).

        `event_id` None (the payload had no usable one): the row gets an ID of its own, as
        the column is NOT NULL and unique, so no two such payloads ever take each other's.
        """
        values = {
            "event_id": event_id or f"unidentified-{uuid.uuid4().hex}",
            "status": domain.PAYMENT_PARKED,
            "error": reason[:ERROR_MAX],
            "payload": json.dumps(payload, default=str)[:100_000],
            "received_at": now,
        }
        insert_ignore(self.session, PaymentEvent.__table__, values)

    def license_paid_by(self, receipt_number: str, customer_id: str) -> str | None:
        """The license ID an applied payment of this company issued or extended."""
        return self.session.scalar(
            select(PaymentEvent.license_id).where(
                PaymentEvent.receipt_number == receipt_number,
                PaymentEvent.customer_id == customer_id,
                PaymentEvent.status == domain.PAYMENT_APPLIED,
            )
        )

    # payments disputed
    def open_dispute(
        self, receipt_number: str, customer_id: str, license_id: str | None, now: datetime
    ) -> bool:
        """Claim a `payment_disputed` (one per receipt); False when its receipt's dispute was
        seen before, open or already closed (the claim and the suspension commit together)."""
        values = {
            "receipt_number": receipt_number,
            "customer_id": customer_id,
            "license_id": license_id,
            "status": domain.DISPUTE_OPEN,
            "opened_at": now,
        }
        return insert_ignore(self.session, PaymentDispute.__table__, values)

    def close_dispute(
        self,
        receipt_number: str,
        customer_id: str,
        license_id: str | None,
        outcome: str,
        now: datetime,
    ) -> bool:
        """Close the receipt's open dispute as `outcome` (won | lost), or record it closed
        when its opening was never seen; False when it was closed before (nothing to do)."""
        closed = self.session.execute(
            update(PaymentDispute)
            .where(
                PaymentDispute.receipt_number == receipt_number,
                PaymentDispute.status == domain.DISPUTE_OPEN,
            )
            .values(status=outcome, closed_at=now),
            execution_options={"synchronize_session": False},
        )
        if closed.rowcount == 1:
            return True
        values = {
            "receipt_number": receipt_number,
            "customer_id": customer_id,
            "license_id": license_id,
            "status": outcome,
            "closed_at": now,
        }
        return insert_ignore(self.session, PaymentDispute.__table__, values)

    def open_disputes(self, license_id: str) -> int:
        """How many disputes of payments of this license are still open."""
        return self.session.scalar(
            select(func.count()).where(
                PaymentDispute.license_id == license_id,
                PaymentDispute.status == domain.DISPUTE_OPEN,
            )
        )
