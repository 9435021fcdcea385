"""floating licenses: a license's model and lease terms, leases, and their daily peak use

Revision ID: 3f9d2c7b8a15
Revises: 8c2f4a6d1e07
Create Date: 2026-12-09 10:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

import common.timeutil

revision = '3f9d2c7b8a15'
down_revision = '8c2f4a6d1e07'
branch_labels = None
depends_on = None

LIVE = sa.text("status = 'live'")


def upgrade() -> None:
    # every license so far is node-locked; the lease terms are a floating license's only
    with op.batch_alter_table('licenses', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                'model',
                sa.String(length=16),
                server_default=sa.text("'node_locked'"),
                nullable=False,
            )
        )
        batch_op.add_column(sa.Column('lease_seconds', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('max_borrow_days', sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column(
                'seats_exhausted_notified_at',
                common.timeutil.UTCDateTime(timezone=True),
                nullable=True,
            )
        )
    op.create_table(
        'leases',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('lease_id', sa.String(length=16), nullable=False),
        sa.Column('license_pk', sa.Integer(), nullable=False),
        sa.Column('installation_id', sa.String(length=128), nullable=False),
        sa.Column('machine_name', sa.String(length=200), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('started_at', common.timeutil.UTCDateTime(timezone=True), nullable=False),
        sa.Column('expires_at', common.timeutil.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            'last_heartbeat_at', common.timeutil.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column('borrowed_until', common.timeutil.UTCDateTime(timezone=True), nullable=True),
        sa.Column('ended_at', common.timeutil.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['license_pk'], ['licenses.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('lease_id'),
        sa.UniqueConstraint('token_hash'),
    )
    with op.batch_alter_table('leases', schema=None) as batch_op:
        batch_op.create_index(
            'uq_leases_live_installation',
            ['license_pk', 'installation_id'],
            unique=True,
            postgresql_where=LIVE,
            sqlite_where=LIVE,
        )
        # no index holds expires_at: a heartbeat is a HOT update (models.Lease)
        batch_op.create_index(
            'ix_leases_live_license',
            ['license_pk'],
            unique=False,
            postgresql_where=LIVE,
            sqlite_where=LIVE,
        )
        batch_op.create_index(
            'ix_leases_license_started', ['license_pk', 'started_at'], unique=False
        )
    op.create_table(
        'lease_usage',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('license_pk', sa.Integer(), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('peak', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['license_pk'], ['licenses.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('license_pk', 'day', name='uq_lease_usage_day'),
    )


def downgrade() -> None:
    op.drop_table('lease_usage')
    with op.batch_alter_table('leases', schema=None) as batch_op:
        batch_op.drop_index('ix_leases_license_started')
        batch_op.drop_index('ix_leases_live_license', postgresql_where=LIVE, sqlite_where=LIVE)
        batch_op.drop_index(
            'uq_leases_live_installation', postgresql_where=LIVE, sqlite_where=LIVE
        )
    op.drop_table('leases')
    with op.batch_alter_table('licenses', schema=None) as batch_op:
        batch_op.drop_column('seats_exhausted_notified_at')
        batch_op.drop_column('max_borrow_days')
        batch_op.drop_column('lease_seconds')
        batch_op.drop_column('model')
