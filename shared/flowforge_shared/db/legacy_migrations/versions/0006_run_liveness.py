"""Runs never lie: one active execution per workflow enforced by a partial unique index, and
the job-run columns the reaper needs (dispatch and send times, broker epoch, owner,
heartbeat) plus a note for the user.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
ACTIVE = "status IN ('queued', 'running', 'cancelling')"


def upgrade() -> None:
    # Before the index can exist, settle what the old race left: of several active executions
    # of one workflow only the newest stays active; the others are marked failed, saying why.
    op.execute(
        sa.text(
            """
            UPDATE executions SET status = 'failed',
                error = 'superseded: another execution of this workflow was active at the '
                        || 'same time (settled by the upgrade to one active run per workflow)'
            WHERE status IN ('queued', 'running') AND seq < (
                SELECT MAX(newer.seq) FROM executions AS newer
                WHERE newer.workflow_id = executions.workflow_id
                  AND newer.status IN ('queued', 'running')
            )
            """
        )
    )
    op.create_index(
        "uq_executions_one_active",
        "executions",
        ["workflow_id"],
        unique=True,
        sqlite_where=sa.text(ACTIVE),
        postgresql_where=sa.text(ACTIVE),
    )
    with op.batch_alter_table("job_runs") as batch:
        batch.add_column(sa.Column("note", sa.Text(), nullable=True))
        batch.add_column(sa.Column("dispatched_at", TS, nullable=True))
        batch.add_column(sa.Column("sent_at", TS, nullable=True))
        batch.add_column(sa.Column("sent_epoch", sa.String(64), nullable=True))
        batch.add_column(sa.Column("owner", sa.String(200), nullable=True))
        batch.add_column(sa.Column("heartbeat_at", TS, nullable=True))
    # Job runs in flight before the upgrade have no dispatch time: give them the upgrade's, so
    # the reaper settles them like any other (sends what was never sent, retries what lost
    # its worker) instead of leaving them stuck as before.
    op.execute(
        sa.text(
            "UPDATE job_runs SET dispatched_at = CURRENT_TIMESTAMP "
            "WHERE dispatched AND status IN ('queued', 'running')"
        )
    )


def downgrade() -> None:
    with op.batch_alter_table("job_runs") as batch:
        for column in ("heartbeat_at", "owner", "sent_epoch", "sent_at", "dispatched_at", "note"):
            batch.drop_column(column)
    op.drop_index("uq_executions_one_active", table_name="executions")
