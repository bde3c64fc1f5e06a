"""Orchestrator records written straight into a test database."""

from __future__ import annotations

from flowforge_orchestrator.runs.models import Execution, JobRun
from flowforge_shared.db.engine import Database


def add_active_writer(
    database: Database, *, table: str, workflow_id: str, workflow_name: str
) -> str:
    """A running execution whose one job writes bronze ``table`` (as a run stuck waiting for
    a worker would be); returns the execution's id."""
    with database.session() as session:
        execution = Execution(
            workflow_id=workflow_id, workflow_name=workflow_name, status="running", trigger="manual"
        )
        session.add(execution)
        session.flush()
        session.add(
            JobRun(
                execution_id=execution.id,
                job_id="job",
                name="Ingest",
                position=0,
                config={"destinationConfig": {"bronzeConfig": {"tableName": table}}},
                needs=[],
                queue="ingest",
                status="running",
            )
        )
        return execution.id
