"""product names, archived plans, refunds, billing details, handled requests, canonical IDs

Revision ID: 6d42dd746948
Revises: ed3d0c2d365b
Create Date: 2026-12-02 10:05:00.000000
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import common.timeutil

revision = '6d42dd746948'
down_revision = 'ed3d0c2d365b'
branch_labels = None
depends_on = None

# tables with customer IDs (canonical: upper case, no spaces around)
CUSTOMER_TABLES = (
    'payment_methods', 'payments', 'recurring_payments', 'invoices', 'charges', 'license_events'
)


def upgrade() -> None:
    # the request ledger (common/idempotency.py HandledRequestColumns)
    op.create_table(
        'handled_requests',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('scope', sa.String(length=64), nullable=False),
        sa.Column('key', sa.String(length=128), nullable=False),
        sa.Column('operation', sa.String(length=128), nullable=False),
        sa.Column('fingerprint', sa.String(length=64), nullable=False),
        sa.Column('answer', sa.Text(), nullable=True),
        sa.Column('created_at', common.timeutil.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('scope', 'key', 'operation', name='uq_handled_request'),
    )
    with op.batch_alter_table('handled_requests', schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f('ix_handled_requests_created_at'), ['created_at'], unique=False
        )

    op.create_table(
        'billing_details',
        sa.Column('customer_id', sa.String(length=32), nullable=False),
        sa.Column('company_name', sa.String(length=200), nullable=False),
        sa.Column('address', sa.String(length=500), nullable=False),
        sa.Column('vat_id', sa.String(length=32), nullable=True),
        sa.Column('updated_at', common.timeutil.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('customer_id'),
    )

    with op.batch_alter_table('plans', schema=None) as batch_op:
        batch_op.add_column(sa.Column('product_name', sa.String(length=200), nullable=True))
        batch_op.add_column(
            sa.Column('archived_at', common.timeutil.UTCDateTime(timezone=True), nullable=True)
        )

    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('product_name', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('vendor_name', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('vendor_address', sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column('vendor_vat_id', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('buyer_company_name', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('buyer_address', sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column('buyer_vat_id', sa.String(length=32), nullable=True))
        batch_op.add_column(
            sa.Column('refunded_at', common.timeutil.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column('refund_reason', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('provider_refund_id', sa.String(length=255), nullable=True))

    with op.batch_alter_table('recurring_payments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('product_name', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('cancelled_by', sa.String(length=16), nullable=True))

    with op.batch_alter_table('charges', schema=None) as batch_op:
        batch_op.add_column(sa.Column('fingerprint', sa.String(length=64), nullable=True))

    with op.batch_alter_table('sandbox_charges', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('kind', sa.String(length=16), server_default='charge', nullable=False)
        )
        batch_op.add_column(sa.Column('refunded_charge_id', sa.String(length=64), nullable=True))
    op.create_index(
        'uq_sandbox_refunded_charge', 'sandbox_charges', ['refunded_charge_id'], unique=True
    )

    # request keys are up to 128 characters now (common/idempotency.py KEY_MAX); SQLite does
    # not enforce a VARCHAR's length, so only PostgreSQL's column changes
    if op.get_context().dialect.name == 'postgresql':
        op.alter_column(
            'charges',
            'request_key',
            existing_type=sa.String(length=64),
            type_=sa.String(length=128),
            existing_nullable=True,
        )

    _canonical_identifiers()
    _end_duplicate_recurring_payments()


def _canonical_identifiers() -> None:
    """Customer and license IDs upper case, plan and product codes lower case (as every
    service stores them now, common/identifiers.py)."""
    for table in CUSTOMER_TABLES:
        op.execute(
            f"UPDATE {table} SET customer_id = UPPER(TRIM(customer_id)) "
            "WHERE customer_id <> UPPER(TRIM(customer_id))"
        )
    for table in ('payments', 'recurring_payments', 'license_events'):
        op.execute(
            f"UPDATE {table} SET license_id = UPPER(TRIM(license_id)) "
            "WHERE license_id IS NOT NULL AND license_id <> UPPER(TRIM(license_id))"
        )
    # plan codes are unique: a code that differs from an older plan's only by case keeps
    # its own row under `<code>-<id>`, renamed before the others are lowered
    op.execute(
        "UPDATE plans SET code = SUBSTR(LOWER(TRIM(code)), 1, 50) || '-' || CAST(id AS VARCHAR(20)) "
        "WHERE EXISTS (SELECT 1 FROM plans older WHERE older.id < plans.id "
        "AND LOWER(TRIM(older.code)) = LOWER(TRIM(plans.code)))"
    )
    op.execute(
        "UPDATE plans SET code = LOWER(TRIM(code)) WHERE code <> LOWER(TRIM(code))"
    )
    op.execute(
        "UPDATE plans SET product_code = LOWER(TRIM(product_code)) "
        "WHERE product_code <> LOWER(TRIM(product_code))"
    )
    for table in ('payments', 'recurring_payments'):
        op.execute(
            f"UPDATE {table} SET plan_code = LOWER(TRIM(plan_code)) "
            "WHERE plan_code IS NOT NULL AND plan_code <> LOWER(TRIM(plan_code))"
        )
        op.execute(
            f"UPDATE {table} SET product_code = LOWER(TRIM(product_code)) "
            "WHERE product_code IS NOT NULL AND product_code <> LOWER(TRIM(product_code))"
        )


def _end_duplicate_recurring_payments() -> None:
    """A renewal that named its license in another case started a second recurring payment
    for one license, and every renewal pass charged both. Of a license's recurring payments
    still running, the one paid furthest ahead goes on; the others end (`duplicate`)."""
    now = sa.bindparam('now', datetime.now(UTC), type_=common.timeutil.UTCDateTime())
    op.get_bind().execute(
        sa.text(
            "UPDATE recurring_payments SET status = 'cancelled', cancelled_by = 'duplicate', "
            "cancelled_at = :now "
            "WHERE status <> 'cancelled' AND license_id IS NOT NULL AND EXISTS ("
            "SELECT 1 FROM recurring_payments keep "
            "WHERE keep.customer_id = recurring_payments.customer_id "
            "AND keep.license_id = recurring_payments.license_id "
            "AND keep.status <> 'cancelled' "
            "AND (keep.next_charge_at > recurring_payments.next_charge_at "
            "OR (keep.next_charge_at = recurring_payments.next_charge_at "
            "AND keep.id > recurring_payments.id)))"
        ).bindparams(now)
    )
    op.execute(
        "UPDATE invoices SET status = 'cancelled', next_attempt_at = NULL "
        "WHERE status = 'open' AND recurring_payment_id IN ("
        "SELECT id FROM recurring_payments WHERE cancelled_by = 'duplicate')"
    )
    # the cancellations so far were the customers' own (the portal's button)
    op.execute(
        "UPDATE recurring_payments SET cancelled_by = 'customer' "
        "WHERE status = 'cancelled' AND cancelled_by IS NULL"
    )


def downgrade() -> None:
    # canonical identifiers stay canonical: the previous release reads them as well
    if op.get_context().dialect.name == 'postgresql':
        op.alter_column(
            'charges',
            'request_key',
            existing_type=sa.String(length=128),
            type_=sa.String(length=64),
            existing_nullable=True,
        )
    op.drop_index('uq_sandbox_refunded_charge', table_name='sandbox_charges')
    with op.batch_alter_table('sandbox_charges', schema=None) as batch_op:
        batch_op.drop_column('refunded_charge_id')
        batch_op.drop_column('kind')
    with op.batch_alter_table('charges', schema=None) as batch_op:
        batch_op.drop_column('fingerprint')
    with op.batch_alter_table('recurring_payments', schema=None) as batch_op:
        batch_op.drop_column('cancelled_by')
        batch_op.drop_column('product_name')
    with op.batch_alter_table('payments', schema=None) as batch_op:
        for column in (
            'provider_refund_id', 'refund_reason', 'refunded_at', 'buyer_vat_id',
            'buyer_address', 'buyer_company_name', 'vendor_vat_id', 'vendor_address',
            'vendor_name', 'product_name',
        ):
            batch_op.drop_column(column)
    with op.batch_alter_table('plans', schema=None) as batch_op:
        batch_op.drop_column('archived_at')
        batch_op.drop_column('product_name')
    op.drop_table('billing_details')
    with op.batch_alter_table('handled_requests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_handled_requests_created_at'))
    op.drop_table('handled_requests')
