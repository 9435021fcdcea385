"""stripe, after review: the billing database's own random ID (kept in the keys billing
sends the provider), and when billing asked the provider for a refund

Revision ID: 2e8b6c4f1a08
Revises: 7c1e5a9d3b07
Create Date: 2026-12-03 09:00:00.000000
"""

import secrets

import sqlalchemy as sa
from alembic import op

import common.timeutil

revision = '2e8b6c4f1a08'
down_revision = '7c1e5a9d3b07'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # one row: drawn here, once per database, so that two deployments sharing a provider
    # account never send the same idempotency key for different things
    instance = op.create_table(
        'billing_instance',
        sa.Column('slot', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('instance_id', sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint('slot'),
    )
    op.bulk_insert(instance, [{'slot': 1, 'instance_id': secrets.token_hex(8)}])
    # NULL for payments paid before: billing never asked for their refund
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                'refund_requested_at', common.timeutil.UTCDateTime(timezone=True), nullable=True
            )
        )


def downgrade() -> None:
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.drop_column('refund_requested_at')
    op.drop_table('billing_instance')
