"""The lineage service's own tables: the run events it applied (each once), the jobs, the
datasets and the edges between them (services/lineage, flowforge_lineage/graph/models.py).

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "lineage_events",
        sa.Column("event_id", sa.String(64), primary_key=True),
        sa.Column("event_type", sa.String(20), nullable=False),
        sa.Column("event_time", TS, nullable=False),
        sa.Column("job_run_id", sa.String(36), nullable=True),
        sa.Column("applied_at", TS, nullable=False),
    )
    op.create_table(
        "lineage_jobs",
        sa.Column("job_id", sa.String(36), primary_key=True),
        sa.Column("job_name", sa.String(300), nullable=False),
        sa.Column("workflow_id", sa.String(36), nullable=True),
        sa.Column("last_run_id", sa.String(36), nullable=True),
        sa.Column("last_status", sa.String(20), nullable=True),
        sa.Column("last_event_time", TS, nullable=True),
        sa.Column("status_key", sa.String(160), nullable=False),
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
        sa.Column("producer_job_id", sa.String(36), nullable=True),
        sa.Column("workflow_id", sa.String(36), nullable=True, index=True),
        sa.Column("state_key", sa.String(160), nullable=False),
    )
    op.create_table(
        "lineage_edges",
        sa.Column("source_namespace", sa.String(255), primary_key=True),
        sa.Column("source_name", sa.String(500), primary_key=True),
        sa.Column("target_namespace", sa.String(255), primary_key=True),
        sa.Column("target_name", sa.String(500), primary_key=True),
        sa.Column("job_id", sa.String(36), primary_key=True),
        sa.Column("job_name", sa.String(300), nullable=False),
        sa.Column("workflow_id", sa.String(36), nullable=True, index=True),
        sa.Column("seen_key", sa.String(160), nullable=False),
    )
    op.create_index("ix_lineage_edges_target", "lineage_edges", ["target_namespace", "target_name"])


def downgrade() -> None:
    op.drop_index("ix_lineage_edges_target", table_name="lineage_edges")
    op.drop_table("lineage_edges")
    op.drop_table("lineage_datasets")
    op.drop_table("lineage_jobs")
    op.drop_table("lineage_events")
