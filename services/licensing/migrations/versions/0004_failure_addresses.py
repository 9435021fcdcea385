"""activation failures per client address

Revision ID: e437c7bd5aea
Revises: 6873180f3429
Create Date: 2026-12-02 08:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = 'e437c7bd5aea'
down_revision = '6873180f3429'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # failures recorded before this revision came from an address nobody knew
    with op.batch_alter_table('activation_failures', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                'client_address',
                sa.String(length=45),
                server_default=sa.text("'unknown'"),
                nullable=False,
            )
        )
        batch_op.drop_index('ix_activation_failures_key_at')
        batch_op.create_index(
            'ix_activation_failures_key_address_at', ['key', 'client_address', 'at'], unique=False
        )
        batch_op.create_index(
            'ix_activation_failures_address_at', ['client_address', 'at'], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table('activation_failures', schema=None) as batch_op:
        batch_op.drop_index('ix_activation_failures_address_at')
        batch_op.drop_index('ix_activation_failures_key_address_at')
        batch_op.create_index('ix_activation_failures_key_at', ['key', 'at'], unique=False)
        batch_op.drop_column('client_address')
