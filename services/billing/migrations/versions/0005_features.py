"""features: what a plan grants, and what a payment bought (plans.features, payments.features)

Revision ID: 9f4e2b7a1c05
Revises: c3a8f1e05d72
Create Date: 2026-12-02 14:25:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = '9f4e2b7a1c05'
down_revision = 'c3a8f1e05d72'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # NULL in both: plans made and payments paid before features grant none
    with op.batch_alter_table('plans', schema=None) as batch_op:
        batch_op.add_column(sa.Column('features', sa.JSON(), nullable=True))
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('features', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.drop_column('features')
    with op.batch_alter_table('plans', schema=None) as batch_op:
        batch_op.drop_column('features')
