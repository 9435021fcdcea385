"""stripe: companies' provider customers, webhook events, purchases awaiting 3-D Secure,
refunds and disputes reported by the provider

Revision ID: 7c1e5a9d3b07
Revises: 4b7d2e9a6f06
Create Date: 2026-12-03 08:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

import common.timeutil

revision = '7c1e5a9d3b07'
down_revision = '4b7d2e9a6f06'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # each company's customer at the provider (Stripe's cus_…), made once
    op.create_table(
        'provider_customers',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('customer_id', sa.String(length=32), nullable=False),
        sa.Column('provider', sa.String(length=32), nullable=False),
        sa.Column('provider_customer_id', sa.String(length=255), nullable=False),
        sa.Column('created_at', common.timeutil.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('customer_id', 'provider', name='uq_provider_customers_customer'),
    )
    # the provider's webhook events applied, by their ID
    op.create_table(
        'webhook_events',
        sa.Column('event_id', sa.String(length=255), nullable=False),
        sa.Column('type', sa.String(length=100), nullable=False),
        sa.Column('received_at', common.timeutil.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('event_id'),
    )
    # NULL everywhere: sandbox methods have no provider customer, charges made before had no
    # purchase ID, payments paid before were never refunded or disputed from the provider
    with op.batch_alter_table('payment_methods', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('provider_customer_id', sa.String(length=255), nullable=True)
        )
    with op.batch_alter_table('charges', schema=None) as batch_op:
        batch_op.add_column(sa.Column('purchase_id', sa.String(length=32), nullable=True))
        batch_op.create_index('uq_charges_purchase_id', ['purchase_id'], unique=True)
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('refunded_amount', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('dispute_status', sa.String(length=32), nullable=True))
        batch_op.add_column(
            sa.Column('disputed_at', common.timeutil.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.drop_column('disputed_at')
        batch_op.drop_column('dispute_status')
        batch_op.drop_column('refunded_amount')
    with op.batch_alter_table('charges', schema=None) as batch_op:
        batch_op.drop_index('uq_charges_purchase_id')
        batch_op.drop_column('purchase_id')
    with op.batch_alter_table('payment_methods', schema=None) as batch_op:
        batch_op.drop_column('provider_customer_id')
    op.drop_table('webhook_events')
    op.drop_table('provider_customers')
