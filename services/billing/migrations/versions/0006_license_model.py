"""license model: what a plan sells and a payment bought (plans/payments.model, lease_seconds,
max_borrow_days)

Revision ID: 4b7d2e9a6f06
Revises: 9f4e2b7a1c05
Create Date: 2026-12-02 16:40:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = '4b7d2e9a6f06'
down_revision = '9f4e2b7a1c05'
branch_labels = None
depends_on = None

TABLES = ('plans', 'payments')


def upgrade() -> None:
    # NULL everywhere: plans made and payments paid before floating licenses are node-locked
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('model', sa.String(length=16), nullable=True))
            batch_op.add_column(sa.Column('lease_seconds', sa.Integer(), nullable=True))
            batch_op.add_column(sa.Column('max_borrow_days', sa.Integer(), nullable=True))


def downgrade() -> None:
    for table in reversed(TABLES):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column('max_borrow_days')
            batch_op.drop_column('lease_seconds')
            batch_op.drop_column('model')
