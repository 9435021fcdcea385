"""reset requests counted per client address

Revision ID: 8e4b6f0a2d17
Revises: 5a1d2e7b9c40
Create Date: 2026-12-04 09:12:31.512208
"""

import sqlalchemy as sa
from alembic import op

import common.timeutil

revision = '8e4b6f0a2d17'
down_revision = '5a1d2e7b9c40'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('reset_request_addresses',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('address', sa.String(length=64), nullable=False),
    sa.Column('at', common.timeutil.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('reset_request_addresses', schema=None) as batch_op:
        batch_op.create_index('ix_reset_request_addresses_address_at', ['address', 'at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('reset_request_addresses', schema=None) as batch_op:
        batch_op.drop_index('ix_reset_request_addresses_address_at')

    op.drop_table('reset_request_addresses')
