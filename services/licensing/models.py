"""The licensing database: products and their features, licenses (with the company's
nickname and note) and the features they hold, installations, a floating license's leases
and their daily peak use, history, throttling, notices, payments applied, payments disputed,
the requests handled (common/idempotency.py) and the company's audit trail of licensing
(common/audit.py)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from common.audit import AuditEventColumns
from common.idempotency import HandledRequestColumns
from common.outbox import outbox_table
from common.timeutil import UTCDateTime


class LicensingBase(DeclarativeBase):
    """The licensing service's own metadata: no table is shared with another service."""


class Product(LicensingBase):
    __tablename__ = "products"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # set: off sale (no new licenses, no new purchases); its licenses go on working
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    # loaded when read (not on the activation hot path, which names only codes); lists
    # load them for every product at once (repository)
    features: Mapped[list[ProductFeature]] = relationship(
        order_by="ProductFeature.code", viewonly=True
    )


class ProductFeature(LicensingBase):
    """A module of a product (`steel`, "Steel design") that a license may unlock."""

    __tablename__ = "product_features"
    __table_args__ = (
        UniqueConstraint("product_id", "code", name="uq_product_features_product_code"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    code: Mapped[str] = mapped_column(String(64))  # lower case, like product codes
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class License(LicensingBase):
    __tablename__ = "licenses"

    id: Mapped[int] = mapped_column(primary_key=True)
    license_id: Mapped[str] = mapped_column(String(32), unique=True)
    customer_id: Mapped[str] = mapped_column(String(32), index=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    seats: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # None: perpetual
    suspended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    suspension_reason: Mapped[str | None] = mapped_column(String(500))  # while suspended
    # why, for the machine: staff (their words in `suspension_reason`) | payment_disputed
    # (a chargeback: won, it is lifted by itself); while suspended
    suspension_cause: Mapped[str | None] = mapped_column(String(32))
    # Fernet token of the activation password (see crypto.PasswordBox); never the plain text
    activation_password: Mapped[str] = mapped_column(String(255))
    password_rotated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # node_locked (a seat per activated machine) | floating (a seat per live lease)
    model: Mapped[str] = mapped_column(String(16), server_default=text("'node_locked'"))
    # floating only (None when node-locked): one lease period, and the longest borrowing
    lease_seconds: Mapped[int | None] = mapped_column(Integer)
    max_borrow_days: Mapped[int | None] = mapped_column(Integer)
    # the last `seats_exhausted` published for it: at most one a day
    seats_exhausted_notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # the company's own words for it (portal): a name to tell it from its siblings, a note;
    # trimmed, None when empty (domain.label)
    nickname: Mapped[str | None] = mapped_column(String(60))
    note: Mapped[str | None] = mapped_column(String(500))

    product: Mapped[Product] = relationship(lazy="joined", innerjoin=True)
    # the codes of the product's features this license unlocks (views add their names)
    features: Mapped[list[LicenseFeature]] = relationship(
        order_by="LicenseFeature.code", cascade="all, delete-orphan"
    )


class LicenseFeature(LicensingBase):
    """A feature of its product that a license unlocks (a code of `product_features`)."""

    __tablename__ = "license_features"
    __table_args__ = (UniqueConstraint("license_pk", "code", name="uq_license_features_code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    license_pk: Mapped[int] = mapped_column(ForeignKey("licenses.id"))
    code: Mapped[str] = mapped_column(String(64))


class Installation(LicensingBase):
    """One activation of a license on a machine; deactivated rows stay for the record."""

    __tablename__ = "installations"
    __table_args__ = (
        # at most one *active* installation per (license, installation ID): the seat rule's
        # last line of defence under the license row lock
        Index(
            "uq_installations_active",
            "license_pk",
            "installation_id",
            unique=True,
            postgresql_where=text("status = 'active'"),
            sqlite_where=text("status = 'active'"),
        ),
        Index("ix_installations_license_status", "license_pk", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    license_pk: Mapped[int] = mapped_column(ForeignKey("licenses.id"))
    installation_id: Mapped[str] = mapped_column(String(128))
    machine_name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))  # active | deactivated
    activated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # the last activation, or an online validation (to within domain.LAST_SEEN_RESOLUTION:
    # a validation writes it only when it is older than that)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    deactivated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # product | portal | staff | offline
    deactivated_by: Mapped[str | None] = mapped_column(String(16))
    # SHA-256 (hex) of the deactivation secret of its latest offline activation: a proof
    # carrying that secret frees the seat once. None: activated online (or proof used)
    offline_secret_hash: Mapped[str | None] = mapped_column(String(64))


class Lease(LicensingBase):
    """A floating license's seat held by a machine until `expires_at`, unless it ends first.

    A lease is live while `status` is live *and* `expires_at` is still ahead: a lapsed one
    frees its seat at that instant, before anything marks it `expired`. Ended rows stay for
    the record.
    """

    __tablename__ = "leases"
    __table_args__ = (
        # at most one live lease per (license, installation): the last line of defence of
        # "the same installation gets its lease back" under the license row lock
        Index(
            "uq_leases_live_installation",
            "license_pk",
            "installation_id",
            unique=True,
            postgresql_where=text("status = 'live'"),
            sqlite_where=text("status = 'live'"),
        ),
        # the seat count of a check-out and the lapse scan read live rows only (at most the
        # seats sold). No index holds `expires_at`: a heartbeat, which changes only that and
        # `last_heartbeat_at`, is then a HOT update that touches no index at all
        Index(
            "ix_leases_live_license",
            "license_pk",
            postgresql_where=text("status = 'live'"),
            sqlite_where=text("status = 'live'"),
        ),
        Index("ix_leases_license_started", "license_pk", "started_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    lease_id: Mapped[str] = mapped_column(String(16), unique=True)  # LS-7KQX-M2PD
    license_pk: Mapped[int] = mapped_column(ForeignKey("licenses.id"))
    installation_id: Mapped[str] = mapped_column(String(128))
    machine_name: Mapped[str] = mapped_column(String(200))
    # SHA-256 (hex) of the lease token; the token itself is answered once, never stored
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(16))  # live | checked_in | revoked | expired
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # a borrowed lease needs no heartbeat until then (None: an ordinary lease)
    borrowed_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class LeaseUsage(LicensingBase):
    """The most leases of a floating license live at once on a day (UTC)."""

    __tablename__ = "lease_usage"
    __table_args__ = (UniqueConstraint("license_pk", "day", name="uq_lease_usage_day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    license_pk: Mapped[int] = mapped_column(ForeignKey("licenses.id"))
    day: Mapped[date] = mapped_column(Date)
    peak: Mapped[int] = mapped_column(Integer)


class HistoryEvent(LicensingBase):
    """activated | reactivated | deactivated | activation_refused, and a floating license's
    lease_checked_out | lease_checked_in | lease_revoked | lease_expired | lease_refused
    (`installation_id`: the lease's machine); newest = highest id."""

    __tablename__ = "history"
    __table_args__ = (Index("ix_history_license_id", "license_pk", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    license_pk: Mapped[int] = mapped_column(ForeignKey("licenses.id"))
    type: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    installation_id: Mapped[str] = mapped_column(String(128))
    machine_name: Mapped[str | None] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(64))
    # who acted (common/audit.py Actor). Rows older than the audit trail have what their
    # `source` implied (migration 0006); a row an older instance writes during an upgrade
    # has none, and is read as its source implies (views.history_actor)
    actor_type: Mapped[str | None] = mapped_column(String(16))
    actor_user_id: Mapped[str | None] = mapped_column(String(32))
    actor_email: Mapped[str | None] = mapped_column(String(254))


class ActivationFailure(LicensingBase):
    """One row per failed activation credential: the (normalised) license ID and the client
    address it came from (`unknown` when the gateway did not say)."""

    __tablename__ = "activation_failures"
    __table_args__ = (
        Index("ix_activation_failures_key_address_at", "key", "client_address", "at"),
        Index("ix_activation_failures_address_at", "client_address", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(80))
    client_address: Mapped[str] = mapped_column(String(45), server_default=text("'unknown'"))
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class ExpiryNotice(LicensingBase):
    """`license_expiring` sent for (license, expiry, threshold): the unique key makes it once."""

    __tablename__ = "expiry_notices"
    __table_args__ = (
        UniqueConstraint("license_pk", "expires_at", "threshold", name="uq_expiry_notices"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    license_pk: Mapped[int] = mapped_column(ForeignKey("licenses.id"))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    threshold: Mapped[int] = mapped_column(Integer)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime())


class PaymentEvent(LicensingBase):
    """A `payment_succeeded` from billing, recorded with the license it issued or extended.

    Written in the same transaction as the license change: the unique `event_id` makes a
    redelivered event change nothing twice, and `receipt_number` lets the portal find the
    license of a purchase. A payment naming what cannot be delivered is kept as
    `not_applied` (with the `payment_not_applied` that tells billing, in one transaction);
    malformed payloads are kept as `parked`.
    """

    __tablename__ = "payment_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[str] = mapped_column(String(100), unique=True)
    receipt_number: Mapped[str | None] = mapped_column(String(32), unique=True)
    customer_id: Mapped[str | None] = mapped_column(String(32))
    kind: Mapped[str | None] = mapped_column(String(16))  # new | renewal
    license_id: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))  # applied | not_applied | parked
    error: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())


class PaymentDispute(LicensingBase):
    """A dispute (chargeback) of a payment, from billing's `payment_disputed` and
    `payment_dispute_closed`: one row per receipt, so each is applied once whatever the
    redeliveries and their order. `license_id` is the company's license it concerns (None:
    the payment named none, or one that is not the company's); while a dispute of a license
    is `open`, a dispute of it won does not lift the suspension."""

    __tablename__ = "payment_disputes"
    __table_args__ = (Index("ix_payment_disputes_license_status", "license_id", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    receipt_number: Mapped[str] = mapped_column(String(32), unique=True)
    customer_id: Mapped[str] = mapped_column(String(32))
    license_id: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))  # open | won | lost
    # None: closed before it was known to be open (its events came out of order)
    opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class HandledRequest(HandledRequestColumns, LicensingBase):
    """A state-changing request and its answer: a redelivery answers the same."""


class AuditEvent(AuditEventColumns, LicensingBase):
    """One fact of a company's audit trail, written in the transaction of its change."""


# events staged with the change that made them true (common/outbox.py)
EventOutbox = outbox_table(LicensingBase.metadata)
