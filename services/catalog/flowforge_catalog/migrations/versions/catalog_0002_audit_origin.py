"""Audit entries other services send carry the id they gave them (``origin_id``), unique,
so an entry delivered twice is recorded once.

Added in place (no table rebuild, which on SQLite would drop the append-only triggers).

Revision ID: catalog_0002
Revises: catalog_0001
"""

from alembic import op

revision = "catalog_0002"
down_revision = "catalog_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE audit_log ADD COLUMN origin_id VARCHAR(36)")
    op.create_index("uq_audit_log_origin", "audit_log", ["origin_id"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_audit_log_origin", table_name="audit_log")
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_column("origin_id")
