"""payment disputes: why a license is suspended (staff | payment_disputed), and the disputes

Revision ID: 5b1e9d4c7a20
Revises: 3f9d2c7b8a15
Create Date: 2026-12-03 08:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

import common.timeutil

revision = '5b1e9d4c7a20'
down_revision = '3f9d2c7b8a15'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('licenses', schema=None) as batch_op:
        batch_op.add_column(sa.Column('suspension_cause', sa.String(length=32), nullable=True))
    # every suspension so far was staff's
    op.execute(
        "UPDATE licenses SET suspension_cause = 'staff' "
        "WHERE suspended_at IS NOT NULL AND suspension_cause IS NULL"
    )
    op.create_table(
        'payment_disputes',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('receipt_number', sa.String(length=32), nullable=False),
        sa.Column('customer_id', sa.String(length=32), nullable=False),
        sa.Column('license_id', sa.String(length=32), nullable=True),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('opened_at', common.timeutil.UTCDateTime(timezone=True), nullable=True),
        sa.Column('closed_at', common.timeutil.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('receipt_number'),
    )
    with op.batch_alter_table('payment_disputes', schema=None) as batch_op:
        batch_op.create_index(
            'ix_payment_disputes_license_status', ['license_id', 'status'], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table('payment_disputes', schema=None) as batch_op:
        batch_op.drop_index('ix_payment_disputes_license_status')
    op.drop_table('payment_disputes')
    with op.batch_alter_table('licenses', schema=None) as batch_op:
        batch_op.drop_column('suspension_cause')
