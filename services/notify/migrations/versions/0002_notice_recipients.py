"""one delivery per recipient of a notice: deliveries.user_id, unique (event_id, user_id)

Revision ID: 7c2f9a41d0b3
Revises: dd8dc77d8939
Create Date: 2026-12-02 13:50:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "7c2f9a41d0b3"
down_revision = "dd8dc77d8939"
branch_labels = None
depends_on = None

# 0001 left the unique key on event_id unnamed: PostgreSQL called it this, and the naming
# convention gives SQLite's (reflected, nameless) copy the same name so that batch mode can
# drop it
OLD_KEY = "deliveries_event_id_key"
NEW_KEY = "uq_deliveries_event_user"
CONVENTION = {"uq": "%(table_name)s_%(column_0_name)s_key"}


def upgrade() -> None:
    with op.batch_alter_table("deliveries", naming_convention=CONVENTION) as batch_op:
        # rows already queued are their event's own row ("")
        batch_op.add_column(
            sa.Column("user_id", sa.String(length=32), server_default="", nullable=False)
        )
        batch_op.drop_constraint(OLD_KEY, type_="unique")
        batch_op.create_unique_constraint(NEW_KEY, ["event_id", "user_id"])


def downgrade() -> None:
    # a notice's per-recipient rows share their event's event_id: only the event's own row
    # can stay under the old key
    op.execute("DELETE FROM deliveries WHERE user_id <> ''")
    with op.batch_alter_table("deliveries", naming_convention=CONVENTION) as batch_op:
        batch_op.drop_constraint(NEW_KEY, type_="unique")
        batch_op.create_unique_constraint(OLD_KEY, ["event_id"])
        batch_op.drop_column("user_id")
