"""password requests, failures by client address, no links in published events

Revision ID: 5a1d2e7b9c40
Revises: 3c1c53cce5e4
Create Date: 2026-12-02 07:34:10.369220
"""

import json

import sqlalchemy as sa
from alembic import op

import common.timeutil

revision = '5a1d2e7b9c40'
down_revision = '3c1c53cce5e4'
branch_labels = None
depends_on = None

# the links (with raw tokens) that events carried before: published ones are kept a week
LINK_KEYS = {"company_created": "set_password_url", "password_reset_requested": "reset_url"}


def upgrade() -> None:
    op.create_table('password_requests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('request_id', sa.String(length=32), nullable=False),
    sa.Column('purpose', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('login', sa.String(length=254), nullable=True),
    sa.Column('company_id', sa.Integer(), nullable=True),
    sa.Column('created_at', common.timeutil.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', common.timeutil.UTCDateTime(timezone=True), nullable=False),
    sa.Column('closed_at', common.timeutil.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['company_id'], ['companies.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('request_id')
    )
    with op.batch_alter_table('password_requests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_password_requests_company_id'), ['company_id'], unique=False)
        batch_op.create_index('ix_password_requests_status_created_at', ['status', 'created_at'], unique=False)

    with op.batch_alter_table('login_failures', schema=None) as batch_op:
        batch_op.add_column(sa.Column('address', sa.String(length=64), server_default='unknown', nullable=False))
        batch_op.create_index('ix_login_failures_address_at', ['address', 'at'], unique=False)

    with op.batch_alter_table('password_tokens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('request_pk', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_password_tokens_request_pk'), ['request_pk'], unique=False)
        batch_op.create_foreign_key('fk_password_tokens_request_pk', 'password_requests', ['request_pk'], ['id'])

    _scrub_published_links()


def _scrub_published_links() -> None:
    """Drop the links from events already published (unpublished ones are still in flight:
    notify needs them once; it keeps accepting the old shape)."""
    outbox = sa.table(
        'event_outbox',
        sa.column('id', sa.Integer()),
        sa.column('event_type', sa.String()),
        sa.column('payload', sa.Text()),
        sa.column('published_at', common.timeutil.UTCDateTime(timezone=True)),
    )
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(outbox.c.id, outbox.c.event_type, outbox.c.payload).where(
            outbox.c.event_type.in_(list(LINK_KEYS)), outbox.c.published_at.is_not(None)
        )
    ).all()
    for row in rows:
        payload = json.loads(row.payload)
        if payload.pop(LINK_KEYS[row.event_type], None) is not None:
            connection.execute(
                outbox.update()
                .where(outbox.c.id == row.id)
                .values(payload=json.dumps(payload, ensure_ascii=False))
            )


def downgrade() -> None:
    with op.batch_alter_table('password_tokens', schema=None) as batch_op:
        batch_op.drop_constraint('fk_password_tokens_request_pk', type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_password_tokens_request_pk'))
        batch_op.drop_column('request_pk')

    with op.batch_alter_table('login_failures', schema=None) as batch_op:
        batch_op.drop_index('ix_login_failures_address_at')
        batch_op.drop_column('address')

    with op.batch_alter_table('password_requests', schema=None) as batch_op:
        batch_op.drop_index('ix_password_requests_status_created_at')
        batch_op.drop_index(batch_op.f('ix_password_requests_company_id'))

    op.drop_table('password_requests')
