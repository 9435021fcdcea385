"""archived products, suspension reasons, handled requests, canonical customer IDs

Revision ID: 34564771c437
Revises: e437c7bd5aea
Create Date: 2026-12-02 09:25:13.161563
"""

import sqlalchemy as sa
from alembic import op

import common.timeutil

revision = '34564771c437'
down_revision = 'e437c7bd5aea'
branch_labels = None
depends_on = None


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

    with op.batch_alter_table('licenses', schema=None) as batch_op:
        batch_op.add_column(sa.Column('suspension_reason', sa.String(length=500), nullable=True))

    with op.batch_alter_table('products', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('archived_at', common.timeutil.UTCDateTime(timezone=True), nullable=True)
        )

    # licenses issued with a customer ID typed in lower case (or with spaces) belong to the
    # company whose canonical ID that is: its portal now shows them. Product codes were
    # always refused unless lower case, so they are canonical already.
    op.execute(
        "UPDATE licenses SET customer_id = UPPER(TRIM(customer_id)) "
        "WHERE customer_id <> UPPER(TRIM(customer_id))"
    )
    op.execute(
        "UPDATE payment_events SET customer_id = UPPER(TRIM(customer_id)) "
        "WHERE customer_id <> UPPER(TRIM(customer_id))"
    )


def downgrade() -> None:
    # canonical customer IDs stay canonical: the previous release reads them as well
    with op.batch_alter_table('products', schema=None) as batch_op:
        batch_op.drop_column('archived_at')

    with op.batch_alter_table('licenses', schema=None) as batch_op:
        batch_op.drop_column('suspension_reason')

    with op.batch_alter_table('handled_requests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_handled_requests_created_at'))

    op.drop_table('handled_requests')
