"""The queries the licensing rules need, behind one small class per unit of work."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, case, delete, func, insert, select, update
from sqlalchemy.orm import Session, joinedload, selectinload

from common import audit
from common.db import add_unique, advisory_xact_lock, insert_ignore
from common.parking import ERROR_MAX
from services.licensing import domain
from services.licensing.models import (
    ActivationFailure,
    AuditEvent,
    ExpiryNotice,
    HistoryEvent,
    Installation,
    License,
    LicenseFeature,
    LicensingBase,
    PaymentEvent,
    Product,
)

# built once: the statement of the hottest query, with its parameters bound per call
_VALIDATION_FACTS = select(
    License.expires_at,
    License.suspended_at,
    select(Installation.id)
    .where(
        Installation.license_pk == License.id,
        Installation.installation_id == bindparam("installation_id"),
        Installation.status == domain.INSTALLATION_ACTIVE,
    )
    .exists(),
    # the feature codes in the same round trip (codes hold no comma: common.schemas.Code)
    select(func.aggregate_strings(LicenseFeature.code, ","))
    .where(LicenseFeature.license_pk == License.id)
    .scalar_subquery(),
).where(License.license_id == bindparam("license_id"))


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
        self.session.execute(insert(type(entity).__table__).values(_values(entity)))

    def add_unique(self, entity: LicensingBase) -> bool:
        """Insert unless a row with one of its unique keys exists (a concurrent insert
        included); True when this call inserted it."""
        return add_unique(self.session, entity)

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
        """
        query = (
            select(License)
            .options(joinedload(License.features))
            .where(License.license_id == license_id)
        )
        if lock:
            query = query.with_for_update(of=License)
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
    ) -> tuple[datetime | None, datetime | None, bool, list[str]] | None:
        """For an online validation, in one query: the license's expiry and suspension,
        whether the installation is active on it, and the license's feature codes, sorted
        (columns only: this path is hot)."""
        row = self.session.execute(
            _VALIDATION_FACTS, {"license_id": license_id, "installation_id": installation_id}
        ).first()
        if row is None:
            return None
        return row[0], row[1], bool(row[2]), sorted(row[3].split(",")) if row[3] else []

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
