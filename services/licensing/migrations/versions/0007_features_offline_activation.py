"""features of products and licenses; the offline deactivation secret's hash

Revision ID: 8c2f4a6d1e07
Revises: 5b0e7d3a91c4
Create Date: 2026-12-02 14:20:00.000000
"""

import sqlalchemy as sa
from alembic import op

import common.timeutil

revision = '8c2f4a6d1e07'
down_revision = '5b0e7d3a91c4'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'product_features',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('product_id', sa.Integer(), nullable=False),
        sa.Column('code', sa.String(length=64), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('created_at', common.timeutil.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['product_id'], ['products.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('product_id', 'code', name='uq_product_features_product_code'),
    )
    op.create_table(
        'license_features',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('license_pk', sa.Integer(), nullable=False),
        sa.Column('code', sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(['license_pk'], ['licenses.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('license_pk', 'code', name='uq_license_features_code'),
    )
    # nullable: every installation so far was activated online
    with op.batch_alter_table('installations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('offline_secret_hash', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('installations', schema=None) as batch_op:
        batch_op.drop_column('offline_secret_hash')
    op.drop_table('license_features')
    op.drop_table('product_features')
