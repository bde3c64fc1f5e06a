"""The lineage service, second step: column lineage, runs (durations), dataset schemas and
aliases, and job ids of other producers (``<namespace>/<name>``, longer than a uuid).

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None
TS = sa.DateTime(timezone=True)
JOB_ID = sa.String(500)


def upgrade() -> None:
    with op.batch_alter_table("lineage_jobs") as batch:
        batch.alter_column("job_id", type_=JOB_ID, existing_nullable=False)
        batch.alter_column("last_run_id", type_=sa.String(64), existing_nullable=True)
        batch.add_column(sa.Column("job_namespace", sa.String(255), nullable=True))
    with op.batch_alter_table("lineage_edges") as batch:
        batch.alter_column("job_id", type_=JOB_ID, existing_nullable=False)
    with op.batch_alter_table("lineage_events") as batch:
        batch.alter_column("job_run_id", type_=sa.String(64), existing_nullable=True)
    with op.batch_alter_table("lineage_datasets") as batch:
        batch.alter_column("producer_job_id", type_=JOB_ID, existing_nullable=True)
        batch.add_column(sa.Column("alias", sa.String(500), nullable=True))
        batch.add_column(sa.Column("label", sa.String(500), nullable=True))
        batch.add_column(sa.Column("schema_json", sa.Text(), nullable=True))
        batch.create_index("ix_lineage_datasets_alias", ["alias"])
    op.create_table(
        "lineage_runs",
        sa.Column("run_id", sa.String(64), primary_key=True),
        sa.Column("job_id", JOB_ID, nullable=False, index=True),
        sa.Column("started_at", TS, nullable=True),
        sa.Column("ended_at", TS, nullable=True),
        sa.Column("status", sa.String(20), nullable=True),
        sa.Column("status_key", sa.String(160), nullable=False),
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
        sa.Column("seen_key", sa.String(160), nullable=False),
    )
    op.create_index(
        "ix_lineage_column_edges_source",
        "lineage_column_edges",
        ["source_namespace", "source_name", "source_column"],
    )


def downgrade() -> None:
    op.drop_index("ix_lineage_column_edges_source", table_name="lineage_column_edges")
    op.drop_table("lineage_column_edges")
    op.drop_table("lineage_runs")
    with op.batch_alter_table("lineage_datasets") as batch:
        batch.drop_index("ix_lineage_datasets_alias")
        batch.drop_column("schema_json")
        batch.drop_column("label")
        batch.drop_column("alias")
        batch.alter_column("producer_job_id", type_=sa.String(36), existing_nullable=True)
    with op.batch_alter_table("lineage_events") as batch:
        batch.alter_column("job_run_id", type_=sa.String(36), existing_nullable=True)
    with op.batch_alter_table("lineage_edges") as batch:
        batch.alter_column("job_id", type_=sa.String(36), existing_nullable=False)
    with op.batch_alter_table("lineage_jobs") as batch:
        batch.drop_column("job_namespace")
        batch.alter_column("last_run_id", type_=sa.String(36), existing_nullable=True)
        batch.alter_column("job_id", type_=sa.String(36), existing_nullable=False)
