"""The workflow status "scheduled" (issue 15): the catalog records, from the orchestrator's
``WORKFLOW_SCHEDULE`` messages, whether a workflow has an enabled time (cron) trigger, with
the sequence of the message it applied (an older or repeated message changes nothing).
"scheduled" is derived from that record, no longer stored as a status a client sets: a
stored "scheduled" becomes "active" (with a cron trigger it is shown "scheduled" again once
the orchestrator's message arrives).

Revision ID: catalog_0003
Revises: catalog_0002
"""

import sqlalchemy as sa
from alembic import op

revision = "catalog_0003"
down_revision = "catalog_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("workflows") as batch:
        batch.add_column(
            sa.Column("scheduled", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(
            sa.Column("schedule_sequence", sa.BigInteger(), nullable=False, server_default="0")
        )
    op.execute("UPDATE workflows SET status = 'active' WHERE status = 'scheduled'")
    op.execute(
        "UPDATE workflows SET status_before_pause = 'active' "
        "WHERE status_before_pause = 'scheduled'"
    )


def downgrade() -> None:
    with op.batch_alter_table("workflows") as batch:
        batch.drop_column("schedule_sequence")
        batch.drop_column("scheduled")
