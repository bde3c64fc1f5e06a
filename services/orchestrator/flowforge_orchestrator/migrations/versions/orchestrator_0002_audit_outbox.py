"""The orchestrator's audit outbox: entries kept with the change they tell of, until they
are sent to the catalog's audit log.

Revision ID: orchestrator_0002
Revises: orchestrator_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "orchestrator_0002"
down_revision = "orchestrator_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_outbox",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(60), nullable=False),
        sa.Column("entity_type", sa.String(60), nullable=False),
        sa.Column("entity_id", sa.String(64), nullable=False),
        sa.Column("diff", sa.JSON(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("audit_outbox")
