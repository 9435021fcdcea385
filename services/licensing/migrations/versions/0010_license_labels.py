"""license labels: the company's nickname and note of a license

Revision ID: 9a4e6c2d8b31
Revises: 5b1e9d4c7a20
Create Date: 2026-12-03 08:30:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = '9a4e6c2d8b31'
down_revision = '5b1e9d4c7a20'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # nullable, without a default: adding them rewrites no row of a large table
    with op.batch_alter_table('licenses', schema=None) as batch_op:
        batch_op.add_column(sa.Column('nickname', sa.String(length=60), nullable=True))
        batch_op.add_column(sa.Column('note', sa.String(length=500), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('licenses', schema=None) as batch_op:
        batch_op.drop_column('note')
        batch_op.drop_column('nickname')
