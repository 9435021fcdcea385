"""The billing database: plans, payment methods, payments (receipts), recurring payments,
renewal invoices and the charges made for them, companies' billing details, the sandbox
provider's own ledger, the licensing events billing applied or parked, the requests it
handled (common/idempotency.py) and the company's audit trail of billing (common/audit.py).

Identifiers are stored in their canonical form (common/identifiers.py): customer and license
IDs upper case, plan and product codes lower case.

Money columns are integers of minor units next to an ISO 4217 currency; never floats.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from common.audit import AuditEventColumns
from common.idempotency import HandledRequestColumns
from common.outbox import outbox_table
from common.parking import ParkedEventColumns
from common.timeutil import UTCDateTime


class BillingBase(DeclarativeBase):
    """The billing service's own metadata: no table is shared with another service."""


class Plan(BillingBase):
    __tablename__ = "plans"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    product_code: Mapped[str] = mapped_column(String(64), index=True)
    # licensing's name of the product when the plan was made (NULL for older plans)
    product_name: Mapped[str | None] = mapped_column(String(200))
    amount: Mapped[int] = mapped_column(BigInteger)  # per seat and interval, minor units
    currency: Mapped[str] = mapped_column(String(3))
    interval: Mapped[str] = mapped_column(String(8))  # month | year
    active: Mapped[bool] = mapped_column(Boolean, default=True)  # false: archived, off sale
    # the product's feature codes (licensing's) the plan grants, sorted; NULL for older plans
    features: Mapped[list[str] | None] = mapped_column(JSON)
    # node_locked | floating (domain.MODELS; NULL for older plans: node-locked); a floating
    # plan's lease period and borrowing limit, NULL for node-locked
    model: Mapped[str | None] = mapped_column(String(16))
    lease_seconds: Mapped[int | None] = mapped_column(Integer)
    max_borrow_days: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class PaymentMethod(BillingBase):
    """A tokenized card of a customer: the provider's token, brand and last four digits."""

    __tablename__ = "payment_methods"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(32), index=True)
    provider: Mapped[str] = mapped_column(String(32))
    token: Mapped[str] = mapped_column(String(255))
    brand: Mapped[str] = mapped_column(String(32))
    last4: Mapped[str] = mapped_column(String(4))
    exp_month: Mapped[int] = mapped_column(Integer)
    exp_year: Mapped[int] = mapped_column(Integer)
    # the provider's customer the method is attached to (Stripe's `cus_…`): renewals charge
    # it off-session (NULL: the sandbox's, which has no customers)
    provider_customer_id: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ProviderCustomer(BillingBase):
    """A company's customer at a payment provider (Stripe's `cus_…`), made once."""

    __tablename__ = "provider_customers"
    __table_args__ = (
        UniqueConstraint("customer_id", "provider", name="uq_provider_customers_customer"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(32))
    provider: Mapped[str] = mapped_column(String(32))
    provider_customer_id: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class BillingInstance(BillingBase):
    """This billing database's own random ID (one row, `slot` 1), made by its migration: it
    keeps the keys billing sends a provider apart from another deployment's."""

    __tablename__ = "billing_instance"

    slot: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    instance_id: Mapped[str] = mapped_column(String(32))


class WebhookEvent(BillingBase):
    """A provider's webhook event applied once: a redelivery (same `event_id`) changes nothing."""

    __tablename__ = "webhook_events"

    event_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    type: Mapped[str] = mapped_column(String(100))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ReceiptCounter(BillingBase):
    """One row per year; `UPDATE … RETURNING` hands out receipt sequence numbers atomically."""

    __tablename__ = "receipt_counters"

    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_value: Mapped[int] = mapped_column(Integer, default=0)


class Payment(BillingBase):
    """A sales receipt: a successful portal charge (purchase or renewal) or an offline sale."""

    __tablename__ = "payments"
    __table_args__ = (Index("ix_payments_customer_paid", "customer_id", "paid_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    receipt_number: Mapped[str] = mapped_column(String(32), unique=True)
    customer_id: Mapped[str] = mapped_column(String(32))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    description: Mapped[str] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(16))  # paid | refunded | disputed
    channel: Mapped[str] = mapped_column(String(16))  # portal | offline
    kind: Mapped[str] = mapped_column(String(16))  # new | renewal | offline
    plan_code: Mapped[str | None] = mapped_column(String(64))
    product_code: Mapped[str | None] = mapped_column(String(64))
    product_name: Mapped[str | None] = mapped_column(String(200))
    seats: Mapped[int | None] = mapped_column(Integer)
    # the plan's feature codes when paid: a plan changed later does not change what was
    # bought (NULL: paid before features, or no plan)
    features: Mapped[list[str] | None] = mapped_column(JSON)
    # the plan's license model when paid, like its features (NULL: node-locked)
    model: Mapped[str | None] = mapped_column(String(16))
    lease_seconds: Mapped[int | None] = mapped_column(Integer)
    max_borrow_days: Mapped[int | None] = mapped_column(Integer)
    unit_amount: Mapped[int | None] = mapped_column(BigInteger)
    period_start: Mapped[datetime | None] = mapped_column(UTCDateTime())
    period_end: Mapped[datetime | None] = mapped_column(UTCDateTime())
    license_id: Mapped[str | None] = mapped_column(String(64))
    recurring_payment_id: Mapped[int | None] = mapped_column(ForeignKey("recurring_payments.id"))
    card_brand: Mapped[str | None] = mapped_column(String(32))
    card_last4: Mapped[str | None] = mapped_column(String(4))
    provider_charge_id: Mapped[str | None] = mapped_column(String(255))
    paid_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # the seller (settings) and the buyer's billing details when paid: a receipt is an
    # invoice, it never changes afterwards
    vendor_name: Mapped[str | None] = mapped_column(String(200))
    vendor_address: Mapped[str | None] = mapped_column(String(500))
    vendor_vat_id: Mapped[str | None] = mapped_column(String(32))
    buyer_company_name: Mapped[str | None] = mapped_column(String(200))
    buyer_address: Mapped[str | None] = mapped_column(String(500))
    buyer_vat_id: Mapped[str | None] = mapped_column(String(32))
    # a paid payment that licensing could not apply is refunded through the provider
    refunded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    refund_reason: Mapped[str | None] = mapped_column(String(64))
    provider_refund_id: Mapped[str | None] = mapped_column(String(255))
    # what the provider reports refunded from its side (its dashboard): the whole amount
    # makes the payment refunded, less leaves it paid
    refunded_amount: Mapped[int | None] = mapped_column(BigInteger)
    # when billing asked the provider to refund it (its own refund, `payment_not_applied`):
    # the provider's `charge.refunded` of that refund is then left to billing's flow
    refund_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # a chargeback: needs_response while open, then won | lost (NULL: never disputed)
    dispute_status: Mapped[str | None] = mapped_column(String(32))
    disputed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class RecurringPayment(BillingBase):
    """What is charged automatically, and when; `license_id` is learnt from licensing's events."""

    __tablename__ = "recurring_payments"
    __table_args__ = (Index("ix_recurring_due", "status", "next_charge_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(String(40), unique=True)  # the public ID
    customer_id: Mapped[str] = mapped_column(String(32), index=True)
    license_id: Mapped[str | None] = mapped_column(String(64), index=True)
    # the receipt of the purchase that started it: licensing issues the license for it
    origin_receipt: Mapped[str | None] = mapped_column(String(32))
    plan_code: Mapped[str] = mapped_column(String(64))
    product_code: Mapped[str] = mapped_column(String(64))
    product_name: Mapped[str | None] = mapped_column(String(200))
    seats: Mapped[int] = mapped_column(Integer)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    interval: Mapped[str] = mapped_column(String(8))
    payment_method_id: Mapped[int] = mapped_column(ForeignKey("payment_methods.id"))
    next_charge_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16))  # active | cancelled | past_due
    failures: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # customer | staff | refund | duplicate | dispute: only a customer's cancellation can be
    # resumed
    cancelled_by: Mapped[str | None] = mapped_column(String(16))


class Invoice(BillingBase):
    """One renewal period of a recurring payment; at most one per (recurring payment, period)."""

    __tablename__ = "invoices"
    __table_args__ = (
        UniqueConstraint("recurring_payment_id", "period_start", name="uq_invoice_period"),
        Index("ix_invoices_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    recurring_payment_id: Mapped[int] = mapped_column(ForeignKey("recurring_payments.id"))
    customer_id: Mapped[str] = mapped_column(String(32))
    period_start: Mapped[datetime] = mapped_column(UTCDateTime())
    period_end: Mapped[datetime] = mapped_column(UTCDateTime())
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    # open (due at next_attempt_at) | charging | paid | failed | cancelled
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    first_failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(String(64))
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("payments.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Charge(BillingBase):
    """One call to the provider; its idempotency key is derived from this row's ID.

    A declined purchase leaves only this row behind (never listed). At most one charge per
    invoice is in flight (`pending`, or `unknown` after a lost answer) at a time.
    """

    __tablename__ = "charges"
    __table_args__ = (
        Index(
            "uq_charges_one_in_flight_per_invoice",
            "invoice_id",
            unique=True,
            postgresql_where=text("status IN ('pending', 'unknown')"),
            sqlite_where=text("status IN ('pending', 'unknown')"),
        ),
        Index("ix_charges_status_created", "status", "created_at"),
        # a purchase's `Idempotency-Key`: the same request never makes a second charge
        UniqueConstraint("customer_id", "request_key", name="uq_charges_request_key"),
        Index("uq_charges_purchase_id", "purchase_id", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # new | renewal (a purchase), or invoice
    request_key: Mapped[str | None] = mapped_column(String(128))
    # what the purchase asked (domain.purchase_fingerprint): the same key with another
    # request is refused, not answered with this one's receipt
    fingerprint: Mapped[str | None] = mapped_column(String(64))
    customer_id: Mapped[str] = mapped_column(String(32), index=True)
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id"))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    payment_method_id: Mapped[int | None] = mapped_column(ForeignKey("payment_methods.id"))
    # what a purchase buys, kept so that a charge confirmed later can still be completed
    order_json: Mapped[str | None] = mapped_column(Text)
    # pending | requires_action (the customer authenticates) | succeeded | declined | unknown
    # | abandoned
    status: Mapped[str] = mapped_column(String(16))
    decline_code: Mapped[str | None] = mapped_column(String(64))
    provider_charge_id: Mapped[str | None] = mapped_column(String(255))
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("payments.id"))
    # a purchase's public ID (`pur_…`): what the customer confirms after authenticating
    purchase_id: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class SandboxCharge(BillingBase):
    """The sandbox provider's ledger, by idempotency key: its charges, refunds and card checks
    (zero-amount authorizations)."""

    __tablename__ = "sandbox_charges"
    # a refund's charge: at most one refund per charge
    __table_args__ = (Index("uq_sandbox_refunded_charge", "refunded_charge_id", unique=True),)

    idempotency_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    # charge | refund | authorization
    kind: Mapped[str] = mapped_column(String(16), server_default="charge")
    charge_id: Mapped[str] = mapped_column(String(64), unique=True)  # ch_… | re_… | au_…
    status: Mapped[str] = mapped_column(String(16))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    decline_code: Mapped[str | None] = mapped_column(String(64))
    refunded_charge_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class BillingDetails(BillingBase):
    """What a company's receipts name as the buyer; each receipt keeps a copy of its own."""

    __tablename__ = "billing_details"

    customer_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    company_name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str] = mapped_column(String(500))
    vat_id: Mapped[str | None] = mapped_column(String(32))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class LicenseEvent(BillingBase):
    """A licensing event that named a receipt, applied once: its `event_id` is the key."""

    __tablename__ = "license_events"

    event_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    event_type: Mapped[str] = mapped_column(String(64))
    customer_id: Mapped[str] = mapped_column(String(32))
    receipt_number: Mapped[str] = mapped_column(String(32))
    license_id: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ParkedEvent(ParkedEventColumns, BillingBase):
    """An event that can never be applied: kept for staff to look at, never retried."""


class HandledRequest(HandledRequestColumns, BillingBase):
    """A state-changing request already answered: a redelivery gets the same answer."""


class AuditEvent(AuditEventColumns, BillingBase):
    """One fact of a company's audit trail, written in the transaction of its change."""


# events staged with the change that made them true (common/outbox.py): a paid purchase
# whose `payment_succeeded` was lost in a crash would never get its license
EventOutbox = outbox_table(BillingBase.metadata)
