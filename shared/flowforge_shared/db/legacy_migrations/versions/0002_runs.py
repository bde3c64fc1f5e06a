"""Run engine: executions, job runs, run events, catalog assets.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
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
        "catalog_assets",
        sa.Column("table_name", sa.String(128), primary_key=True),
        sa.Column("layer", sa.String(20), nullable=False, index=True),
        sa.Column("location", sa.Text(), nullable=True),
        sa.Column("version", sa.BigInteger(), nullable=True),
        sa.Column("row_count", sa.BigInteger(), nullable=True),
        sa.Column("columns", sa.JSON(), nullable=False),
        sa.Column("last_updated", TS, nullable=False),
        sa.Column("producing_job_id", sa.String(36), nullable=True),
        sa.Column("producing_job_name", sa.String(200), nullable=True),
        sa.Column("producing_execution_id", sa.String(36), nullable=True),
        sa.Column("workflow_id", sa.String(36), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("catalog_assets")
    op.drop_table("run_events")
    op.drop_table("job_runs")
    op.drop_table("executions")
