"""The lineage service, third step: a dataset's row count, schema and writer each keep the
order key of the event that set them, so a newer event that does not carry them (a START)
no longer hides an older one that does, whatever order the events arrive in.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None
KEYS = ("count_key", "schema_key", "writer_key")


def upgrade() -> None:
    with op.batch_alter_table("lineage_datasets") as batch:
        for name in KEYS:
            batch.add_column(sa.Column(name, sa.String(160), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("lineage_datasets") as batch:
        for name in reversed(KEYS):
            batch.drop_column(name)
