"""Upgrading a catalog that the old race left with two active executions of one workflow,
and a job stuck in flight: the upgrade settles both, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

from flowforge.app import upgrade_all
from flowforge_shared.db.migrate import legacy_upgrade


@pytest.fixture(params=["sqlite", "postgres"])
def url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'old.db'}"
    return request.getfixturevalue("fresh_postgres_url")


def test_the_upgrade_keeps_the_newest_active_run_and_dates_what_is_in_flight(url):
    legacy_upgrade(url, "0005")  # a database the one chain of before made
    engine = create_engine(url)
    with engine.begin() as conn:
        for seq, status in ((1, "running"), (2, "running"), (3, "succeeded"), (4, "queued")):
            conn.execute(
                text(
                    "INSERT INTO executions (seq, id, workflow_id, workflow_name, status, "
                    "trigger, created_at) VALUES (:seq, :id, 'w1', 'w1', :status, 'manual', "
                    "CURRENT_TIMESTAMP)"
                ),
                {"seq": seq, "id": f"e{seq}", "status": status},
            )
        conn.execute(
            text(
                "INSERT INTO job_runs (id, execution_id, job_id, name, position, config, needs, "
                "queue, status, dispatched, attempt, rows_read, rows_written, outputs, "
                "quarantined_rows) VALUES ('r4', 'e4', 'j', 'j', 0, '{}', '[]', 'ingest', "
                "'running', :yes, 1, 0, 0, '[]', 0)"
            ),
            {"yes": True},
        )
    upgrade_all(url)
    with engine.begin() as conn:
        rows = dict(conn.execute(text("SELECT id, status FROM executions ORDER BY seq")).all())
        error = conn.execute(text("SELECT error FROM executions WHERE id = 'e1'")).scalar()
        dispatched_at = conn.execute(
            text("SELECT dispatched_at FROM job_runs WHERE id = 'r4'")
        ).scalar()
    assert rows == {"e1": "failed", "e2": "failed", "e3": "succeeded", "e4": "queued"}
    assert error.startswith("superseded: another execution of this workflow was active")
    assert dispatched_at is not None
    with pytest.raises(Exception, match="uq_executions_one_active|UNIQUE"):
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO executions (seq, id, workflow_id, workflow_name, status, "
                    "trigger, created_at) VALUES (5, 'e5', 'w1', 'w1', 'running', 'manual', "
                    "CURRENT_TIMESTAMP)"
                )
            )
    engine.dispose()
