"""users of a company, sessions and password links per user, the audit trail

Every existing company gets its contact user (role owner; `active` if the company has a
password, else `invited`), and its sessions, password requests and tokens become the contact
user's.

Revision ID: 6d2b8e51c3a9
Revises: 2f6c0d9e4a71
Create Date: 2026-12-02 13:45:00.000000
"""

import secrets

import sqlalchemy as sa
from alembic import op

import common.timeutil

revision = '6d2b8e51c3a9'
down_revision = '2f6c0d9e4a71'
branch_labels = None
depends_on = None

# services.auth.domain.new_user_id, as it was when this migration was written (a migration
# must not change when the code it once called does)
ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"


def _user_id() -> str:
    return "U-" + "-".join(
        "".join(secrets.choice(ALPHABET) for _ in range(4)) for _ in range(2)
    )


def upgrade() -> None:
    op.create_table('users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.String(length=16), nullable=False),
    sa.Column('company_id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=True),
    sa.Column('password_changed_at', common.timeutil.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', common.timeutil.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_login_at', common.timeutil.UTCDateTime(timezone=True), nullable=True),
    sa.Column('is_contact', sa.Boolean(), nullable=False),
    sa.Column('notify_installation_activated', sa.Boolean(), nullable=False),
    sa.Column('notify_license_expiring', sa.Boolean(), nullable=False),
    sa.Column('notify_receipts', sa.Boolean(), nullable=False),
    sa.Column('notify_payment_failed', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['company_id'], ['companies.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('email'),
    sa.UniqueConstraint('user_id')
    )
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_users_company_id'), ['company_id'], unique=False)

    # the columns of common.audit.AuditEventColumns
    op.create_table('audit_events',
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
    sa.UniqueConstraint('event_id')
    )
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.create_index('ix_audit_events_customer_at', ['customer_id', 'at', 'event_id'], unique=False)

    for table in ('sessions', 'password_requests', 'password_tokens'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('user_pk', sa.Integer(), nullable=True))
            batch_op.create_index(batch_op.f(f'ix_{table}_user_pk'), ['user_pk'], unique=False)
            batch_op.create_foreign_key(f'fk_{table}_user_pk', 'users', ['user_pk'], ['id'])

    _contact_users()

    # every session and token belongs to a user now (a queued reset request names none yet)
    for table in ('sessions', 'password_tokens'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column('user_pk', existing_type=sa.Integer(), nullable=False)


def _contact_users() -> None:
    """A contact user per company, and its company's sessions, requests and tokens."""
    companies = sa.table(
        'companies',
        sa.column('id', sa.Integer()),
        sa.column('contact_name', sa.String()),
        sa.column('contact_email', sa.String()),
        sa.column('password_hash', sa.String()),
        sa.column('password_changed_at', common.timeutil.UTCDateTime(timezone=True)),
        sa.column('created_at', common.timeutil.UTCDateTime(timezone=True)),
    )
    users = sa.table(
        'users',
        sa.column('id', sa.Integer()),
        sa.column('user_id', sa.String()),
        sa.column('company_id', sa.Integer()),
        sa.column('email', sa.String()),
        sa.column('name', sa.String()),
        sa.column('role', sa.String()),
        sa.column('status', sa.String()),
        sa.column('password_hash', sa.String()),
        sa.column('password_changed_at', common.timeutil.UTCDateTime(timezone=True)),
        sa.column('created_at', common.timeutil.UTCDateTime(timezone=True)),
        sa.column('last_login_at', common.timeutil.UTCDateTime(timezone=True)),
        sa.column('is_contact', sa.Boolean()),
        sa.column('notify_installation_activated', sa.Boolean()),
        sa.column('notify_license_expiring', sa.Boolean()),
        sa.column('notify_receipts', sa.Boolean()),
        sa.column('notify_payment_failed', sa.Boolean()),
    )
    connection = op.get_bind()
    taken: set[str] = set()
    rows = []
    for company in connection.execute(sa.select(companies).order_by(companies.c.id)):
        user_id = _user_id()
        while user_id in taken:
            user_id = _user_id()
        taken.add(user_id)
        rows.append(
            {
                'user_id': user_id,
                'company_id': company.id,
                # the company-wide password stays the company's: the contact's own is null
                'email': company.contact_email,
                'name': company.contact_name,
                'role': 'owner',
                'status': 'active' if company.password_hash is not None else 'invited',
                'password_hash': None,
                'password_changed_at': company.password_changed_at,
                'created_at': company.created_at,
                'last_login_at': None,
                'is_contact': True,
                # an owner hears every notice, as the company's contact did
                'notify_installation_activated': True,
                'notify_license_expiring': True,
                'notify_receipts': True,
                'notify_payment_failed': True,
            }
        )
    if rows:
        connection.execute(users.insert(), rows)
    for table in ('sessions', 'password_requests', 'password_tokens'):
        target = sa.table(table, sa.column('company_id', sa.Integer()), sa.column('user_pk', sa.Integer()))
        contact = (
            sa.select(users.c.id)
            .where(users.c.company_id == target.c.company_id, users.c.is_contact.is_(True))
            .scalar_subquery()
        )
        connection.execute(
            target.update().where(target.c.company_id.is_not(None)).values(user_pk=contact)
        )


def downgrade() -> None:
    for table in ('password_tokens', 'password_requests', 'sessions'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(f'fk_{table}_user_pk', type_='foreignkey')
            batch_op.drop_index(batch_op.f(f'ix_{table}_user_pk'))
            batch_op.drop_column('user_pk')

    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_events_customer_at')
    op.drop_table('audit_events')

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_users_company_id'))
    op.drop_table('users')
