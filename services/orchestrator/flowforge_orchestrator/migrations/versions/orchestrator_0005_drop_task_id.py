"""``job_runs.task_id`` goes: it was never written (a job's Celery task id is the job run's
own id, which a cancel revokes).

Revision ID: orchestrator_0005
Revises: orchestrator_0004
"""

import sqlalchemy as sa
from alembic import op

revision = "orchestrator_0005"
down_revision = "orchestrator_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("job_runs") as batch:
        batch.drop_column("task_id")


def downgrade() -> None:
    with op.batch_alter_table("job_runs") as batch:
        batch.add_column(sa.Column("task_id", sa.String(64), nullable=True))
