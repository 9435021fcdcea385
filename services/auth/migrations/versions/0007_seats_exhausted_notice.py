"""the notice seats_exhausted (users.notify_seats_exhausted): on for every owner, off for
everyone else (a license admin may turn it on), as for a new user of the role

Revision ID: 8c1f5a3e7b07
Revises: 6d2b8e51c3a9
Create Date: 2026-12-02 16:45:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = '8c1f5a3e7b07'
down_revision = '6d2b8e51c3a9'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('notify_seats_exhausted', sa.Boolean(), nullable=True))
    users = sa.table('users', sa.column('role', sa.String()),
                     sa.column('notify_seats_exhausted', sa.Boolean()))
    # services.auth.domain.ROLE_DEFAULT_NOTICES when this was written: owners only
    op.execute(users.update().values(notify_seats_exhausted=users.c.role == 'owner'))
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.alter_column('notify_seats_exhausted', existing_type=sa.Boolean(),
                              nullable=False)


def downgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('notify_seats_exhausted')
