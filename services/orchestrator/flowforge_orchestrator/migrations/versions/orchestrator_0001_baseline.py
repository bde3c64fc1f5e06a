"""The orchestrator's tables: executions, job runs, run events, job watermarks, triggers and
their firings (as the one chain of before left them at its revision 0013, which a database
made by it keeps: adopted, not created).

Revision ID: orchestrator_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from flowforge_shared.db.migrate import adopting

revision = "orchestrator_0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
ACTIVE = "status IN ('queued', 'running', 'cancelling')"


def upgrade() -> None:
    if adopting(op.get_bind()):
        return
    op.create_table(
        "executions",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(36), nullable=False, unique=True),
        sa.Column("workflow_id", sa.String(36), nullable=False, index=True),
        sa.Column("workflow_name", sa.String(200), nullable=False),
        sa.Column("status", sa.String(20), nullable=False, index=True),
        sa.Column("trigger", sa.String(40), nullable=False),
        sa.Column("requested_by", sa.String(200), nullable=True),
        sa.Column("trace_id", sa.String(32), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("started_at", TS, nullable=True),
        sa.Column("finished_at", TS, nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("cause", sa.JSON(), nullable=True),
    )
    # One active execution per workflow.
    op.create_index(
        "uq_executions_one_active",
        "executions",
        ["workflow_id"],
        unique=True,
        sqlite_where=sa.text(ACTIVE),
        postgresql_where=sa.text(ACTIVE),
    )
    op.create_table(
        "job_runs",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column(
            "execution_id",
            sa.String(36),
            sa.ForeignKey("executions.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("job_id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("needs", sa.JSON(), nullable=False),
        sa.Column("queue", sa.String(40), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("dispatched", sa.Boolean(), nullable=False),
        sa.Column("task_id", sa.String(64), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("started_at", TS, nullable=True),
        sa.Column("finished_at", TS, nullable=True),
        sa.Column("rows_read", sa.BigInteger(), nullable=False),
        sa.Column("rows_written", sa.BigInteger(), nullable=False),
        sa.Column("outputs", sa.JSON(), nullable=False),
        sa.Column("error", sa.JSON(), nullable=True),
        sa.Column("quarantined_rows", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("dispatched_at", TS, nullable=True),
        sa.Column("sent_at", TS, nullable=True),
        sa.Column("sent_epoch", sa.String(64), nullable=True),
        sa.Column("owner", sa.String(200), nullable=True),
        sa.Column("heartbeat_at", TS, nullable=True),
        sa.Column("inputs", sa.JSON(), nullable=True),
        sa.Column("connection", sa.JSON(), nullable=True),
    )
    op.create_table(
        "run_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(36), nullable=False, unique=True),
        sa.Column("execution_id", sa.String(36), nullable=False, index=True),
        sa.Column("job_run_id", sa.String(36), nullable=True),
        sa.Column("event_type", sa.String(20), nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
    )
    op.create_table(
        "job_watermarks",
        sa.Column("job_id", sa.String(36), primary_key=True),
        sa.Column("workflow_id", sa.String(36), nullable=False, index=True),
        sa.Column("column_name", sa.String(256), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("execution_id", sa.String(36), nullable=True),
        sa.Column("run_sequence", sa.Integer(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
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
        sa.Column("secret", sa.Text(), nullable=True),
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
        sa.Column("firing_key", sa.String(200), nullable=True),
        sa.Column("cause", sa.JSON(), nullable=True),
        sa.UniqueConstraint("trigger_id", "fire_time", name="uq_trigger_firings_time"),
    )
    op.create_index(
        "uq_trigger_firings_key", "trigger_firings", ["trigger_id", "firing_key"], unique=True
    )


def downgrade() -> None:
    for table in (
        "trigger_firings",
        "triggers",
        "job_watermarks",
        "run_events",
        "job_runs",
        "executions",
    ):
        op.drop_table(table)
