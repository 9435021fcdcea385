"""The queries billing needs, behind one small class per unit of work, the sandbox ledger and
the store of companies' Stripe customers."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from common import audit
from common.db import Db, add_unique, insert_ignore
from common.timeutil import utcnow
from services.billing import domain
from services.billing.models import (
    AuditEvent,
    BillingBase,
    BillingDetails,
    BillingInstance,
    Charge,
    HandledRequest,
    Invoice,
    LicenseEvent,
    ParkedEvent,
    Payment,
    PaymentMethod,
    Plan,
    ProviderCustomer,
    ReceiptCounter,
    RecurringPayment,
    SandboxCharge,
    WebhookEvent,
)


def _locked(query: Any) -> Any:
    """`query` FOR UPDATE, its rows read afresh: a row this session loaded before the lock
    was granted (a webhook finds its charge, then settles it) shows what the instance that
    held the lock committed, not what was loaded before."""
    return query.with_for_update().execution_options(populate_existing=True)


class BillingRepository:
    """Billing's queries in one transaction; `vendor` is the seller a new receipt names
    (`{name, address, vat_id}`, from the settings)."""

    def __init__(self, session: Session, vendor: Mapping[str, Any] | None = None) -> None:
        self.session = session
        self.vendor = vendor or {}

    def add(self, entity: BillingBase) -> None:
        self.session.add(entity)
        self.session.flush()

    def add_unique(self, entity: BillingBase) -> bool:
        """Add `entity` unless a unique key is taken (a concurrent twin won): whether it was."""
        return add_unique(self.session, entity)

    # plans
    def plan_by_code(self, code: str, lock: bool = False) -> Plan | None:
        query = select(Plan).where(Plan.code == code)
        if lock:
            query = _locked(query)
        return self.session.scalar(query)

    def plans(self, active_only: bool = True) -> list[Plan]:
        query = select(Plan).order_by(Plan.product_code, Plan.amount, Plan.code)
        if active_only:
            query = query.where(Plan.active.is_(True))
        return list(self.session.scalars(query))

    # receipts
    def next_receipt_sequence(self, year: int) -> int:
        """The next number of `year`, atomically: the counter row stays locked until commit."""
        bump = (
            update(ReceiptCounter)
            .where(ReceiptCounter.year == year)
            .values(last_value=ReceiptCounter.last_value + 1)
            .returning(ReceiptCounter.last_value)
        )
        value = self.session.execute(bump).scalar()
        if value is None:
            insert_ignore(self.session, ReceiptCounter.__table__, {"year": year, "last_value": 0})
            value = self.session.execute(bump).scalar()
        return int(value)

    # payments
    def portal_payments(
        self, customer_id: str, limit: int, before: Payment | None = None
    ) -> list[Payment]:
        """A page of the company's portal payments, newest first, after `before`."""
        query = select(Payment).where(
            Payment.customer_id == customer_id, Payment.channel == "portal"
        )
        return self._page(query, limit, before)

    def all_payments(
        self,
        limit: int,
        before: Payment | None = None,
        status: str | None = None,
        customer_id: str | None = None,
    ) -> list[Payment]:
        """A page of every payment (portal and offline), newest first, for staff."""
        query = select(Payment)
        if status is not None:
            query = query.where(Payment.status == status)
        if customer_id is not None:
            query = query.where(Payment.customer_id == customer_id)
        return self._page(query, limit, before)

    def _page(self, query: Any, limit: int, before: Payment | None) -> list[Payment]:
        if before is not None:
            query = query.where(
                (Payment.paid_at < before.paid_at)
                | ((Payment.paid_at == before.paid_at) & (Payment.id < before.id))
            )
        query = query.order_by(Payment.paid_at.desc(), Payment.id.desc()).limit(limit)
        return list(self.session.scalars(query))

    def payment_by_receipt(
        self, receipt_number: str, customer_id: str | None, lock: bool = False
    ) -> Payment | None:
        query = select(Payment).where(Payment.receipt_number == receipt_number)
        if customer_id is not None:
            query = query.where(Payment.customer_id == customer_id)
        if lock:
            query = _locked(query)
        return self.session.scalar(query)

    def payment_by_provider_charge(self, provider_charge_id: str) -> Payment | None:
        """The payment of the provider's charge (Stripe's `pi_…`), locked."""
        return self.session.scalar(
            select(Payment)
            .where(Payment.provider_charge_id == provider_charge_id)
            .order_by(Payment.id)
            .limit(1)
            .with_for_update()
        )

    def payment(self, payment_id: int, lock: bool = False) -> Payment | None:
        query = select(Payment).where(Payment.id == payment_id)
        if lock:
            query = _locked(query)
        return self.session.scalar(query)

    # billing details
    def billing_details(self, customer_id: str) -> BillingDetails | None:
        return self.session.get(BillingDetails, customer_id)

    def save_billing_details(self, values: dict[str, Any]) -> BillingDetails:
        """Insert or replace a company's billing details (a concurrent first save: one wins,
        the other replaces it)."""
        insert_ignore(self.session, BillingDetails.__table__, values)
        details = self.session.get(BillingDetails, values["customer_id"], with_for_update=True)
        for key, value in values.items():
            setattr(details, key, value)
        self.session.flush()
        return details

    def has_payments(self, customer_id: str) -> bool:
        return (
            self.session.scalar(select(Payment.id).where(Payment.customer_id == customer_id))
            is not None
        )

    def payment_method(self, method_id: int) -> PaymentMethod | None:
        return self.session.get(PaymentMethod, method_id)

    # recurring payments
    def recurring_payments(self, customer_id: str) -> list[RecurringPayment]:
        return list(
            self.session.scalars(
                select(RecurringPayment)
                .where(RecurringPayment.customer_id == customer_id)
                .order_by(RecurringPayment.next_charge_at, RecurringPayment.id)
            )
        )

    def recurring_by_reference(
        self, reference: str, customer_id: str | None = None, lock: bool = False
    ) -> RecurringPayment | None:
        query = select(RecurringPayment).where(RecurringPayment.reference == reference)
        if customer_id is not None:
            query = query.where(RecurringPayment.customer_id == customer_id)
        if lock:
            query = _locked(query)
        return self.session.scalar(query)

    def recurring(self, recurring_id: int, lock: bool = False) -> RecurringPayment | None:
        query = select(RecurringPayment).where(RecurringPayment.id == recurring_id)
        if lock:
            query = _locked(query)
        return self.session.scalar(query)

    def recurring_for_license(self, customer_id: str, license_id: str) -> RecurringPayment | None:
        return self.session.scalar(
            select(RecurringPayment)
            .where(
                RecurringPayment.customer_id == customer_id,
                RecurringPayment.license_id == license_id,
            )
            .order_by(RecurringPayment.id.desc())
            .with_for_update()
        )

    def due_recurring(self, now: datetime, limit: int) -> list[RecurringPayment]:
        return list(
            self.session.scalars(
                select(RecurringPayment)
                .where(RecurringPayment.status == "active", RecurringPayment.next_charge_at <= now)
                .order_by(RecurringPayment.next_charge_at)
                .limit(limit)
            )
        )

    # invoices
    def open_invoice(self, values: dict[str, Any]) -> bool:
        """Create the invoice of one (recurring payment, period) unless it exists."""
        return insert_ignore(self.session, Invoice.__table__, values)

    def claim_due_invoice(self, now: datetime) -> Invoice | None:
        """One due invoice, locked; rows another instance holds are skipped, not waited for."""
        return self.session.scalar(
            select(Invoice)
            .where(Invoice.status == "open", Invoice.next_attempt_at <= now)
            .order_by(Invoice.next_attempt_at, Invoice.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        )

    def invoice(self, invoice_id: int, lock: bool = False) -> Invoice | None:
        query = select(Invoice).where(Invoice.id == invoice_id)
        if lock:
            query = _locked(query)
        return self.session.scalar(query)

    def invoices_of(self, recurring_id: int, statuses: tuple[str, ...]) -> list[Invoice]:
        return list(
            self.session.scalars(
                select(Invoice).where(
                    Invoice.recurring_payment_id == recurring_id, Invoice.status.in_(statuses)
                )
            )
        )

    # the audit trail
    def audit_page(self, query: audit.AuditQuery) -> list[dict[str, Any]]:
        """A page of the company's billing trail, newest first (common/audit.py)."""
        return audit.page(self.session, AuditEvent, query)

    # handled requests (common/idempotency.py)
    def handled_fingerprint(self, scope: str, key: str, operation: str) -> str | None:
        """The fingerprint of the request already handled under this key, if any."""
        return self.session.scalar(
            select(HandledRequest.fingerprint).where(
                HandledRequest.scope == scope,
                HandledRequest.key == key,
                HandledRequest.operation == operation,
            )
        )

    # charges
    def charge(self, charge_id: int, lock: bool = False) -> Charge | None:
        query = select(Charge).where(Charge.id == charge_id)
        if lock:
            query = _locked(query)
        return self.session.scalar(query)

    def charge_by_request_key(self, customer_id: str, request_key: str) -> Charge | None:
        return self.session.scalar(
            select(Charge).where(
                Charge.customer_id == customer_id, Charge.request_key == request_key
            )
        )

    def charge_by_purchase_id(
        self, purchase_id: str, customer_id: str | None = None
    ) -> Charge | None:
        query = select(Charge).where(Charge.purchase_id == purchase_id)
        if customer_id is not None:
            query = query.where(Charge.customer_id == customer_id)
        return self.session.scalar(query)

    def charge_of_provider(self, provider_charge_id: str | None, key: str | None) -> Charge | None:
        """The charge the provider knows as `provider_charge_id`, or made with our `key`."""
        if provider_charge_id:
            found = self.session.scalar(
                select(Charge)
                .where(Charge.provider_charge_id == provider_charge_id)
                .order_by(Charge.id)
                .limit(1)
            )
            if found is not None:
                return found
        if key:
            return self.session.scalar(select(Charge).where(Charge.idempotency_key == key))
        return None

    def charges_awaiting_action(self, created_before: datetime, skip: set[int]) -> Charge | None:
        """A purchase charge still waiting for its customer's authentication since before
        `created_before`, locked (rows another instance holds are skipped)."""
        waiting = (Charge.status == "requires_action") & (Charge.created_at < created_before)
        return self._claim_charge(waiting, skip)

    def claim_unsettled_charge(self, stale_before: datetime, skip: set[int]) -> Charge | None:
        """A charge whose answer was lost (`unknown`), or left `pending` by a crash."""
        lost = (Charge.status == "unknown") | (
            (Charge.status == "pending") & (Charge.created_at < stale_before)
        )
        return self._claim_charge(lost, skip)

    def _claim_charge(self, condition: Any, skip: set[int]) -> Charge | None:
        """The first charge matching `condition` and not in `skip`, locked; rows another
        instance holds are skipped, not waited for."""
        query = (
            select(Charge)
            .where(condition)
            .order_by(Charge.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        if skip:
            query = query.where(Charge.id.not_in(skip))
        return self.session.scalar(query)

    # licensing events
    def record_license_event(self, values: dict[str, Any]) -> bool:
        """Remember a licensing event by `event_id`; False if it was applied before."""
        return insert_ignore(self.session, LicenseEvent.__table__, values)

    def park(self, values: dict[str, Any]) -> None:
        """Keep an event that can never be applied (once per `event_id`)."""
        insert_ignore(self.session, ParkedEvent.__table__, values)

    # the provider's webhooks
    def record_webhook_event(self, event_id: str, event_type: str, now: datetime) -> bool:
        """Remember a webhook event by its ID; False if it was applied before."""
        values = {"event_id": event_id, "type": event_type[:100], "received_at": now}
        return insert_ignore(self.session, WebhookEvent.__table__, values)

    def billing_name(self, customer_id: str) -> str | None:
        """The company's name on its receipts, if it gave one (the provider's customer name)."""
        details = self.billing_details(customer_id)
        return details.company_name if details is not None else None


class SqlLedger:
    """The sandbox provider's ledger in the billing database (one transaction per call)."""

    def __init__(self, db: Db) -> None:
        self.db = db

    def get(self, idempotency_key: str) -> dict[str, Any] | None:
        with self.db.transaction() as session:
            row = session.get(SandboxCharge, idempotency_key)
            return None if row is None else self._record(row)

    def find(self, charge_id: str) -> dict[str, Any] | None:
        with self.db.transaction() as session:
            row = session.scalar(select(SandboxCharge).where(SandboxCharge.charge_id == charge_id))
            return None if row is None else self._record(row)

    def refund_of(self, charge_id: str) -> dict[str, Any] | None:
        with self.db.transaction() as session:
            row = session.scalar(
                select(SandboxCharge).where(SandboxCharge.refunded_charge_id == charge_id)
            )
            return None if row is None else self._record(row)

    def put_if_absent(self, idempotency_key: str, record: dict[str, Any]) -> dict[str, Any]:
        with self.db.transaction() as session:
            added = insert_ignore(
                session,
                SandboxCharge.__table__,
                {"idempotency_key": idempotency_key, "created_at": utcnow(), **record},
            )
        found = self.get(idempotency_key)
        if found is None and not added and record.get("refunded_charge_id"):
            # another key refunded this charge first (a refund per charge)
            return self.refund_of(record["refunded_charge_id"])
        return found

    @staticmethod
    def _record(row: SandboxCharge) -> dict[str, Any]:
        return {
            "kind": row.kind,
            "charge_id": row.charge_id,
            "status": row.status,
            "amount": row.amount,
            "currency": row.currency,
            "decline_code": row.decline_code,
            "refunded_charge_id": row.refunded_charge_id,
        }


class SqlCustomerStore:
    """Companies' customers at `provider` in the billing database (`provider_customers`)."""

    def __init__(self, db: Db, provider: str = "stripe") -> None:
        self.db = db
        self.provider = provider
        self._instance_id: str | None = None

    def instance_id(self) -> str:
        """The billing database's own random ID (`billing_instance`, drawn by migration
        0008; drawn here, once, in a database made without migrations)."""
        if self._instance_id is None:
            with self.db.transaction() as session:
                found = session.get(BillingInstance, 1)
                if found is None:
                    drawn = {"slot": 1, "instance_id": domain.new_instance_id()}
                    insert_ignore(session, BillingInstance.__table__, drawn)
                    found = session.get(BillingInstance, 1)
                self._instance_id = found.instance_id
        return self._instance_id

    def get(self, customer_id: str) -> str | None:
        with self.db.transaction() as session:
            return session.scalar(
                select(ProviderCustomer.provider_customer_id).where(
                    ProviderCustomer.customer_id == customer_id,
                    ProviderCustomer.provider == self.provider,
                )
            )

    def put_if_absent(self, customer_id: str, provider_customer_id: str) -> str:
        with self.db.transaction() as session:
            insert_ignore(
                session,
                ProviderCustomer.__table__,
                {
                    "customer_id": customer_id,
                    "provider": self.provider,
                    "provider_customer_id": provider_customer_id,
                    "created_at": utcnow(),
                },
            )
        return self.get(customer_id) or provider_customer_id
