"""The orchestrator's triggers and their firings (issue 15, first slice: manual and cron), and
the cause of an execution a trigger started.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("executions", sa.Column("cause", sa.JSON(), nullable=True))
    op.create_table(
        "triggers",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("workflow_id", sa.String(36), nullable=False, index=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("name", sa.String(200), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("next_fire_at", TS, nullable=True),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_index("ix_triggers_due", "triggers", ["enabled", "next_fire_at"])
    op.create_table(
        "trigger_firings",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column(
            "trigger_id",
            sa.String(36),
            sa.ForeignKey("triggers.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("workflow_id", sa.String(36), nullable=False, index=True),
        sa.Column("fire_time", TS, nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False, index=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("execution_id", sa.String(36), nullable=False),
        sa.Column("recorded_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.UniqueConstraint("trigger_id", "fire_time", name="uq_trigger_firings_time"),
    )


def downgrade() -> None:
    op.drop_table("trigger_firings")
    op.drop_index("ix_triggers_due", table_name="triggers")
    op.drop_table("triggers")
    with op.batch_alter_table("executions") as batch:
        batch.drop_column("cause")
