"""The active runs that write a table (the catalog asks before it changes a table)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from flowforge_orchestrator.runs.models import ACTIVE_STATUSES, Execution, JobRun
from flowforge_shared.contracts.tables import TableWriter, TableWriters


def writers(session: Session, table: str) -> TableWriters:
    rows = session.execute(
        select(Execution.id, Execution.workflow_name, JobRun.name, JobRun.config)
        .join(JobRun, JobRun.execution_id == Execution.id)
        .where(Execution.status.in_(ACTIVE_STATUSES))
    ).all()
    found = []
    for execution_id, workflow_name, job_name, config in rows:
        destination = (config or {}).get("destinationConfig") or {}
        if any(
            isinstance(layer, dict) and layer.get("tableName") == table
            for layer in destination.values()
        ):
            found.append(
                TableWriter(
                    execution_id=execution_id, workflow_name=workflow_name, job_name=job_name
                )
            )
    return TableWriters(table=table, writers=found)
