"""File versions and the file a run read: an upload under a name already uploaded is its
next version, and each job run keeps the exact file (id, sha256) its snapshot names.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("uploaded_files") as batch:
        batch.add_column(sa.Column("version", sa.Integer(), nullable=True))
    # Uploads made before: numbered per name in upload order.
    op.execute(
        sa.text(
            """
            UPDATE uploaded_files SET version = (
                SELECT COUNT(*) FROM uploaded_files AS earlier
                WHERE earlier.original_name = uploaded_files.original_name
                  AND (earlier.created_at < uploaded_files.created_at
                       OR (earlier.created_at = uploaded_files.created_at
                           AND earlier.id <= uploaded_files.id))
            )
            """
        )
    )
    op.create_index(
        "ix_uploaded_files_name_version", "uploaded_files", ["original_name", "version"]
    )
    with op.batch_alter_table("job_runs") as batch:
        batch.add_column(sa.Column("inputs", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("job_runs") as batch:
        batch.drop_column("inputs")
    op.drop_index("ix_uploaded_files_name_version", table_name="uploaded_files")
    with op.batch_alter_table("uploaded_files") as batch:
        batch.drop_column("version")
