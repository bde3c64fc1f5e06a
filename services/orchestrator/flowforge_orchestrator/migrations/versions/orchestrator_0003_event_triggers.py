"""Event triggers (issue 15, last slice): the time from which an event trigger's files
count. Each arrived file is a firing keyed by its path, size and modification time through
the existing ``uq_trigger_firings_key`` (trigger_id, firing_key), so no new table.

Revision ID: orchestrator_0003
Revises: orchestrator_0002
"""

import sqlalchemy as sa
from alembic import op

revision = "orchestrator_0003"
down_revision = "orchestrator_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("triggers", sa.Column("watch_from", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("triggers") as batch:
        batch.drop_column("watch_from")
