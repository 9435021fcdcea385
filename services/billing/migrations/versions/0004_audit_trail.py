"""the audit trail (audit_events)

Revision ID: c3a8f1e05d72
Revises: 6d42dd746948
Create Date: 2026-12-02 13:45:00.000000
"""

import sqlalchemy as sa
from alembic import op

import common.timeutil

revision = 'c3a8f1e05d72'
down_revision = '6d42dd746948'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # the company's audit trail of billing (common/audit.py AuditEventColumns)
    op.create_table(
        'audit_events',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('event_id', sa.String(length=32), nullable=False),
        sa.Column('customer_id', sa.String(length=32), nullable=False),
        sa.Column('at', common.timeutil.UTCDateTime(timezone=True), nullable=False),
        sa.Column('action', sa.String(length=48), nullable=False),
        sa.Column('actor_type', sa.String(length=16), nullable=False),
        sa.Column('actor_user_id', sa.String(length=32), nullable=True),
        sa.Column('actor_email', sa.String(length=254), nullable=True),
        sa.Column('actor_name', sa.String(length=254), nullable=True),
        sa.Column('target_type', sa.String(length=32), nullable=False),
        sa.Column('target_id', sa.String(length=255), nullable=True),
        sa.Column('details', sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('event_id'),
    )
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.create_index(
            'ix_audit_events_customer_at', ['customer_id', 'at', 'event_id'], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_events_customer_at')

    op.drop_table('audit_events')
