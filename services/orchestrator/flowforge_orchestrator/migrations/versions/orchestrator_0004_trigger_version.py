"""Triggers carry a version (issue 15): a change names the version it read and a stale one
is refused (409), as for workflows and jobs; the scheduler's own bookkeeping (next_fire_at)
does not change it. A trigger disabled by FlowForge says why (``disabled_reason``: its
upstream workflow was deleted, its workflow no longer exists). ``workflow_schedules``: per
workflow, the sequence of the last ``WORKFLOW_SCHEDULE`` message (whether it has an enabled
time trigger), taken under the row's lock so two changes of one workflow's triggers are
numbered in the order they committed, and the last sequence the bus took (``sent_sequence``):
the scheduler sends again what was not taken, and the state of workflows whose cron triggers
predate this migration (no row yet).

Revision ID: orchestrator_0004
Revises: orchestrator_0003
"""

import sqlalchemy as sa
from alembic import op

revision = "orchestrator_0004"
down_revision = "orchestrator_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("triggers") as batch:
        batch.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="1"))
        batch.add_column(sa.Column("disabled_reason", sa.Text(), nullable=True))
    op.create_table(
        "workflow_schedules",
        sa.Column("workflow_id", sa.String(36), primary_key=True),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("scheduled", sa.Boolean(), nullable=False),
        sa.Column("sent_sequence", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("workflow_schedules")
    with op.batch_alter_table("triggers") as batch:
        batch.drop_column("disabled_reason")
        batch.drop_column("version")
