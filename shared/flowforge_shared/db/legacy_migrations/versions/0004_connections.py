"""Connections, job watermarks, quarantined row counts.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "connections",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("type", sa.String(20), nullable=False),
        sa.Column("host", sa.String(255), nullable=True),
        sa.Column("port", sa.Integer(), nullable=True),
        sa.Column("database", sa.String(1024), nullable=True),
        sa.Column("username", sa.String(255), nullable=True),
        sa.Column("password_encrypted", sa.Text(), nullable=True),
        sa.Column("authentication", sa.String(40), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
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
    with op.batch_alter_table("job_runs") as batch:
        batch.add_column(
            sa.Column("quarantined_rows", sa.BigInteger(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("job_runs") as batch:
        batch.drop_column("quarantined_rows")
    op.drop_table("job_watermarks")
    op.drop_table("connections")
