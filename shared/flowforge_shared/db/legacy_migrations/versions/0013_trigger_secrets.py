"""Webhook and dependency triggers (issue 15, second slice): a trigger's secret, stored
encrypted; a firing's key (a webhook request's signature, a dependency's upstream
execution), unique per trigger so the same cause records no second firing; and a firing's
cause (the upstream executions), handed to the run it starts.

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("triggers", sa.Column("secret", sa.Text(), nullable=True))
    op.add_column("trigger_firings", sa.Column("firing_key", sa.String(200), nullable=True))
    op.add_column("trigger_firings", sa.Column("cause", sa.JSON(), nullable=True))
    op.create_index(
        "uq_trigger_firings_key", "trigger_firings", ["trigger_id", "firing_key"], unique=True
    )


def downgrade() -> None:
    op.drop_index("uq_trigger_firings_key", table_name="trigger_firings")
    with op.batch_alter_table("trigger_firings") as batch:
        batch.drop_column("cause")
        batch.drop_column("firing_key")
    with op.batch_alter_table("triggers") as batch:
        batch.drop_column("secret")
