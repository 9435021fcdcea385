"""handled requests: the request ledger (common/idempotency.py)

Revision ID: 2f6c0d9e4a71
Revises: 8e4b6f0a2d17
Create Date: 2026-12-02 10:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

import common.timeutil

revision = '2f6c0d9e4a71'
down_revision = '8e4b6f0a2d17'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # the columns of common.idempotency.HandledRequestColumns
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


def downgrade() -> None:
    with op.batch_alter_table('handled_requests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_handled_requests_created_at'))
    op.drop_table('handled_requests')
