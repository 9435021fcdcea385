"""the audit trail (audit_events) and who acted on each history row

Revision ID: 5b0e7d3a91c4
Revises: 34564771c437
Create Date: 2026-12-02 13:45:00.000000
"""

import sqlalchemy as sa
from alembic import op

import common.timeutil

revision = '5b0e7d3a91c4'
down_revision = '34564771c437'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # the company's audit trail of licensing (common/audit.py AuditEventColumns)
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

    # who acted on each history row; older rows get what their source implied: the product,
    # a portal user (not known by name then), staff, or the system. Nullable: an instance of
    # the previous release writes rows without it while the upgrade rolls out
    with op.batch_alter_table('history', schema=None) as batch_op:
        batch_op.add_column(sa.Column('actor_type', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('actor_user_id', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('actor_email', sa.String(length=254), nullable=True))
    op.execute(
        "UPDATE history SET actor_type = CASE source "
        "WHEN 'product' THEN 'product' WHEN 'portal' THEN 'user' WHEN 'staff' THEN 'staff' "
        "ELSE 'system' END"
    )


def downgrade() -> None:
    with op.batch_alter_table('history', schema=None) as batch_op:
        batch_op.drop_column('actor_email')
        batch_op.drop_column('actor_user_id')
        batch_op.drop_column('actor_type')

    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_events_customer_at')

    op.drop_table('audit_events')
