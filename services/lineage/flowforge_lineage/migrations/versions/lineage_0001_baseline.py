"""The lineage service's tables: the run events it applied (each once), its jobs, runs,
datasets, and the table- and column-level edges between them (as the one chain of before
left them at its revision 0013, which a database made by it keeps: adopted, not created).

Revision ID: lineage_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from flowforge_shared.db.migrate import adopting

revision = "lineage_0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
JOB_ID = sa.String(500)  # other producers' jobs are "<namespace>/<name>", longer than a uuid
ORDER_KEY = sa.String(160)


def upgrade() -> None:
    if adopting(op.get_bind()):
        return
    op.create_table(
        "lineage_events",
        sa.Column("event_id", sa.String(64), primary_key=True),
        sa.Column("event_type", sa.String(20), nullable=False),
        sa.Column("event_time", TS, nullable=False),
        sa.Column("job_run_id", sa.String(64), nullable=True),
        sa.Column("applied_at", TS, nullable=False),
    )
    op.create_table(
        "lineage_jobs",
        sa.Column("job_id", JOB_ID, primary_key=True),
        sa.Column("job_name", sa.String(300), nullable=False),
        sa.Column("workflow_id", sa.String(36), nullable=True),
        sa.Column("last_run_id", sa.String(64), nullable=True),
        sa.Column("last_status", sa.String(20), nullable=True),
        sa.Column("last_event_time", TS, nullable=True),
        sa.Column("status_key", ORDER_KEY, nullable=False),
        sa.Column("job_namespace", sa.String(255), nullable=True),
    )
    op.create_table(
        "lineage_datasets",
        sa.Column("namespace", sa.String(255), primary_key=True),
        sa.Column("name", sa.String(500), primary_key=True),
        sa.Column("layer", sa.String(20), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=True),
        sa.Column("row_count", sa.BigInteger(), nullable=True),
        sa.Column("last_updated", TS, nullable=True),
        sa.Column("status", sa.String(20), nullable=True),
        sa.Column("producer_job_id", JOB_ID, nullable=True),
        sa.Column("workflow_id", sa.String(36), nullable=True, index=True),
        sa.Column("state_key", ORDER_KEY, nullable=False),
        sa.Column("alias", sa.String(500), nullable=True),
        sa.Column("label", sa.String(500), nullable=True),
        sa.Column("schema_json", sa.Text(), nullable=True),
        sa.Column("count_key", ORDER_KEY, nullable=True),
        sa.Column("schema_key", ORDER_KEY, nullable=True),
        sa.Column("writer_key", ORDER_KEY, nullable=True),
    )
    op.create_index("ix_lineage_datasets_alias", "lineage_datasets", ["alias"])
    op.create_table(
        "lineage_edges",
        sa.Column("source_namespace", sa.String(255), primary_key=True),
        sa.Column("source_name", sa.String(500), primary_key=True),
        sa.Column("target_namespace", sa.String(255), primary_key=True),
        sa.Column("target_name", sa.String(500), primary_key=True),
        sa.Column("job_id", JOB_ID, primary_key=True),
        sa.Column("job_name", sa.String(300), nullable=False),
        sa.Column("workflow_id", sa.String(36), nullable=True, index=True),
        sa.Column("seen_key", ORDER_KEY, nullable=False),
    )
    op.create_index("ix_lineage_edges_target", "lineage_edges", ["target_namespace", "target_name"])
    op.create_table(
        "lineage_runs",
        sa.Column("run_id", sa.String(64), primary_key=True),
        sa.Column("job_id", JOB_ID, nullable=False, index=True),
        sa.Column("started_at", TS, nullable=True),
        sa.Column("ended_at", TS, nullable=True),
        sa.Column("status", sa.String(20), nullable=True),
        sa.Column("status_key", ORDER_KEY, nullable=False),
        sa.Column("error_message", sa.Text(), nullable=True),
    )
    op.create_table(
        "lineage_column_edges",
        sa.Column("target_namespace", sa.String(255), primary_key=True),
        sa.Column("target_name", sa.String(500), primary_key=True),
        sa.Column("target_column", sa.String(255), primary_key=True),
        sa.Column("source_namespace", sa.String(255), primary_key=True),
        sa.Column("source_name", sa.String(500), primary_key=True),
        sa.Column("source_column", sa.String(255), primary_key=True),
        sa.Column("job_id", JOB_ID, primary_key=True),
        sa.Column("how", sa.String(30), primary_key=True),
        sa.Column("transformation_type", sa.String(20), nullable=False),
        sa.Column("subtype", sa.String(30), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("workflow_id", sa.String(36), nullable=True, index=True),
        sa.Column("seen_key", ORDER_KEY, nullable=False),
    )
    op.create_index(
        "ix_lineage_column_edges_source",
        "lineage_column_edges",
        ["source_namespace", "source_name", "source_column"],
    )


def downgrade() -> None:
    for table in (
        "lineage_column_edges",
        "lineage_runs",
        "lineage_edges",
        "lineage_datasets",
        "lineage_jobs",
        "lineage_events",
    ):
        op.drop_table(table)
